// One step (vector README, "Running a vector" 3): one event taken at an instruction boundary, or
// one instruction — completed, or faulted with the delivery of its fault (and any #DF it escalates
// to) in the same step. `run` repeats it. What happens at a boundary (which event, shadows, HLT, RF
// and TF) is spec/transitions/boundary.ts; an instruction's semantics come from the table
// (spec/semantics-table.ts); delivery is spec/transitions/deliver.ts and double-fault.ts.
import type { Instruction } from "../decode/instruction.ts";
import { isFault, type Fault } from "../fault.ts";
import { patchRegisters, withMemory, withOwnRegisters, type Machine, type MachineRegisters } from "../machine/machine.ts";
import { MemoryLimit, type MemoryDraft, type PhysicalMemory } from "../machine/physical-memory.ts";
import { PAGE_BUDGET } from "../../contract/limits.ts";
import { in64BitMode, MASK64, RFLAGS, smallBigInt, split64, splitLow } from "../machine/registers.ts";
import { INTEL, type Profile } from "../../contract/profile.ts";
import { recordImpliedRules } from "../rule-catalogue.ts";
import type { RuleId } from "../rules/rule.ts";
import { canWake as canWakeAt, loadsSs, pendingBoundaryEvent, takeBoundaryEvent } from "../transitions/boundary.ts";
import { countCompletedInstruction, deviceOut, jumpToTick, timerWouldWake } from "../devices/devices.ts";
import { deliverWithNestingOn, type DeliveryOutcome } from "../transitions/double-fault.ts";
import { exceptionEvent, pushesErrorCode, type EventSource } from "../transitions/exception-classes.ts";
import { deliverSoftwareInterrupt } from "../transitions/software-interrupt.ts";
import type { Environment, PortIo, SoftwareInterrupt } from "../transaction/semantics.ts";
import { Transaction } from "../transaction/transaction.ts";
import { RegisterJournal } from "../transaction/register-journal.ts";
import type { RunResult, StepEvent, StepResult } from "./events.ts";
import { fetchAndDecode } from "./fetch.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";

export interface StepOptions {
  readonly profile?: Profile;
  /** Collects the rule IDs the step exercises. */
  readonly coverage?: Set<RuleId>;
  /** `idt` (default): faults are delivered through the IDT (the architecture). `stop`: a fault an
   *  instruction raises — including one raised while delivering its INT n — ends the step with a
   *  `fault` event, the machine left at the faulting instruction (for unit tests). Events taken at
   *  a boundary are delivered through the IDT either way. */
  readonly delivery?: "idt" | "stop";
  /** Value read by IN (default all ones: nothing answers on the bus). */
  readonly portIn?: (port: number, size: 1 | 2 | 4) => bigint;
  /** The most pages of guest physical memory the machine may back (default the page budget,
   *  contract/limits.ts): a step that needs one more is taken back and ends with `memory-limit`. */
  readonly maxPages?: number;
}

/** RFLAGS with RF cleared: the mask, made once. */
const NOT_RF = ~RFLAGS.RF;
/** The least RFLAGS value with a bit at or above RF (bit 16) set. */
const RF_AND_ABOVE = RFLAGS.RF;

const DEFAULT_PORT_IN = (_port: number, size: 1 | 2 | 4): bigint => (1n << BigInt(8 * size)) - 1n;
/** The environment of a step without its own `portIn` (allocated once, not per step). */
const DEFAULT_ENV: Environment = { portIn: DEFAULT_PORT_IN };

interface Context {
  readonly profile: Profile;
  readonly coverage: Set<RuleId> | null;
  readonly delivery: "idt" | "stop";
  readonly env: Environment;
  /** The undo log of the step's in-place register writes: a step owns the record it starts on
   *  (its caller's working record, written by no one else) and writes it in place. */
  readonly journal: RegisterJournal;
}

/** One step's result inside a step or run: the registers after it (its memory is the draft). */
interface RegistersStep {
  readonly state: MachineRegisters;
  readonly event: StepEvent;
}

function context(options: StepOptions): Context {
  return {
    profile: options.profile ?? INTEL,
    coverage: options.coverage ?? null,
    delivery: options.delivery ?? "idt",
    env: options.portIn === undefined ? DEFAULT_ENV : { portIn: options.portIn },
    journal: new RegisterJournal(),
  };
}

/** One step on `state`, which it leaves untouched: the machine after the step and its event. */
export function step(state: Machine, options: StepOptions = {}): StepResult {
  const memory = state.memory.draft(options.maxPages ?? PAGE_BUDGET);
  // The step writes its start record in place: its own copy, not the caller's.
  const result = stepOn(withOwnRegisters(state), memory, context(options));
  return { state: withMemory(result.state, memory.snapshot()), event: result.event };
}

/** One step on `state`'s registers and `memory`, both owned by the caller and written in place
 *  (a step that is taken back leaves both as they were). */
function stepOn(state: MachineRegisters, memory: MemoryDraft, ctx: Context): RegistersStep {
  const mark = memory.mark();
  const registersMark = ctx.journal.mark();
  // (RIP and RFLAGS are not in the register journal: rollBackRecord sets them back from these.)
  const rip = state.rip;
  const rflags = state.rflags;
  let result: RegistersStep;
  try {
    result = boundaryOrInstruction(state, memory, ctx);
  } catch (e) {
    if (!(e instanceof MemoryLimit)) throw e;
    // The page budget: the step is taken back whole, as if it had not begun.
    memory.rollBack(mark);
    ctx.journal.rollBackRecord(registersMark, state, rip, rflags);
    return { state, event: { kind: "memory-limit", rip, reason: e.message } };
  }
  if (ctx.coverage !== null) recordImpliedRules(ctx.coverage);
  return result;
}

function boundaryOrInstruction(start: MachineRegisters, memory: MemoryDraft, ctx: Context): RegistersStep {
  // DEV-EXIT-02: nothing runs after the write to the exit port.
  const exitValue = start.devices.exitValue;
  if (exitValue !== null) {
    ctx.coverage?.add("DEV-EXIT-02");
    recordExecuted("DEV-EXIT-02");
    return { state: start, event: { kind: "exited", rip: start.rip, value: exitValue } };
  }
  if (start.cpu.shutdown) return { state: start, event: { kind: "shutdown", rip: start.rip } };
  // DEV-TMR-06: a halted CPU that nothing can wake jumps to the timer's tick when it could be taken.
  const state = start.cpu.halted && !canWakeAt(start, ctx.profile) ? jumpToTick(start, ctx.coverage) : start;
  // HLT-06: a single-step trap left by HLT waits until something wakes the CPU; a halted CPU that
  // nothing wakes takes no step (the trap stays pending).
  if (state.cpu.halted && !canWakeAt(state, ctx.profile)) {
    ctx.coverage?.add("HLT-04");
    recordExecuted("HLT-04");
    return { state, event: { kind: "halted", rip: state.rip } };
  }
  // PRIO-01: an event pending at this boundary comes before the next instruction (and wakes HLT).
  const pending = pendingBoundaryEvent(state, ctx.profile);
  if (pending !== null) return deliveredResult(takeBoundaryEvent(state, memory, pending, ctx.profile, ctx.coverage), state.rip, undefined);
  return executeInstruction(state, memory, ctx);
}

function executeInstruction(state: MachineRegisters, memory: MemoryDraft, ctx: Context): RegistersStep {
  // What the step reads of the machine as it starts, read now: the transaction writes `state` in
  // place (and takes the writes back if the instruction faults).
  const rip = state.rip;
  const rflags = state.rflags;
  const cpu = state.cpu;
  const t = new Transaction(state, ctx.profile, ctx.coverage, memory, ctx.journal);
  const decoded = fetchAndDecode(t);
  if (isFault(decoded)) {
    // The decoder raises its faults (#UD for reserved or absent encodings, #GP past 15 bytes) as
    // data, outside the transaction: record the rule that decided here.
    t.hit(decoded.rule);
    return faulted(state, t, decoded, undefined, ctx);
  }
  if (decoded.kind === "unsupported") {
    t.discardMemory();
    t.rollBackRegisters();
    return { state, event: { kind: "unsupported", rip, bytes: decoded.bytes, reason: decoded.reason } };
  }
  const insn = decoded.instruction;

  // (TF is bit 8: read from the low half of RFLAGS, split without allocating a BigInt.)
  split64(rflags);
  const tfBefore = (splitLow() & 0x100) !== 0;
  // A single-step trap pending here was held by a MOV SS shadow (SHADOW-05): it stays pending
  // through this instruction, whatever it does (SHADOW-06).
  const heldTrap = cpu.pendingDebugTrap;
  if (heldTrap) t.hit("SHADOW-06");
  // RF-01: RF is cleared by every instruction that completes; RIP moves on unless it branches.
  const end = rip + smallBigInt(insn.length);
  const nextRip = in64BitMode(state) ? (end > MASK64 ? BigInt.asUintN(64, end) : end) : BigInt.asUintN(32, end);
  // (RFLAGS below bit 16 has RF clear already: kept as it is, without a BigInt operation.)
  t.updateRipAndRflags("RF-01", nextRip, rflags < RF_AND_ABOVE ? rflags : rflags & NOT_RF);
  // SHADOW-02: the shadow in force covered the boundary before this instruction and ends as it
  // starts (t.startShadow keeps it for STI / MOV SS, SHADOW-07); the semantics may open a new one.
  if (cpu.shadow !== "none") {
    // SHADOW-04: an NMI the profile held back in an STI shadow (Profile.stiShadowBlocksNmi).
    if (cpu.shadow === "sti" && cpu.pendingNmi && !cpu.nmiBlocked) t.hit("SHADOW-04");
    t.update("SHADOW-02", { cpu: { ...cpu, shadow: "none" } });
  }
  // PRIO-TPR: a maskable interrupt that IF and the shadow let through still waits (no event was
  // taken at this boundary): CR8 holds its priority class back.
  if (cpu.pendingIrq !== null && cpu.shadow === "none" && (rflags & RFLAGS.IF) !== 0n) t.hit("PRIO-TPR");

  // The instruction's semantics from the table (spec/semantics-table.ts), found by the fetch.
  const outcome = decoded.semantics(t, insn, ctx.env);
  if (outcome === undefined) return completed(rip, t, insn, tfBefore, heldTrap, undefined);
  // A switch, not a ts-pattern match: this runs for every instruction that faults, interrupts or
  // does I/O (a match costs a few per cent of the interrupt loop). `unreachable` keeps it exhaustive.
  switch (outcome.kind) {
    case "fault":
      // SHADOW-09: the shadow holds back events, not the instruction's own faults.
      if (cpu.shadow !== "none") t.hit("SHADOW-09");
      return faulted(state, t, outcome, insn, ctx);
    case "unsupported":
      t.discardMemory();
      t.rollBackRegisters();
      return { state, event: { kind: "unsupported", rip, bytes: insn.bytes, reason: outcome.reason } };
    case "software-interrupt":
      return softwareInterrupt(rip, t, outcome, insn, heldTrap, ctx);
    case "io":
      return completed(rip, t, insn, tfBefore, heldTrap, outcome);
    default:
      return unreachable(outcome);
  }
}

/** A compile-time exhaustiveness check: only reachable if a case above is missing. */
function unreachable(x: never): never {
  throw new Error(`step: unhandled outcome ${JSON.stringify(x)}`);
}

/**
 * The instruction completed. TF-01: it leaves a single-step trap for the next boundary when it began
 * with TF = 1 — unless its own rule decided otherwise (`t.singleStepTrap`: SYSCALL-10, SYSRET-09).
 * So POPF or IRET setting TF trap only after the following instruction (FLAGS-03, IRETQ-17), and POPF
 * clearing it still traps after itself. MOV SS / POP SS leave the trap pending, but their shadow
 * holds it over the next instruction (SHADOW-05), where it merges with that one's own. INT n, INT3,
 * INT1 and INTO never get here: their delivery clears TF (SWINT-06, software-interrupt.ts).
 */
function completed(rip: bigint, t: Transaction, insn: Instruction, tfBefore: boolean, heldTrap: boolean, io: PortIo | undefined): RegistersStep {
  const ownTrap = t.singleStepTrap ?? tfBefore;
  if (ownTrap) t.hit(loadsSs(insn) ? "SHADOW-05" : "TF-01");
  const trap = heldTrap || ownTrap;
  // The devices (docs/devices.md): the completed instruction counts (DEV-TMR-04), then an OUT's
  // write reaches its device.
  countCompletedInstruction(t);
  const output = io !== undefined && io.direction === "out" ? deviceOut(t, io) : undefined;
  const m = t.m;
  const after = m.cpu.pendingDebugTrap === trap ? m : patchRegisters(m, { cpu: { ...m.cpu, pendingDebugTrap: trap } });
  if (io !== undefined) {
    const event = { kind: "io", rip, direction: io.direction, port: io.port, size: io.size, value: io.value, instruction: insn } as const;
    return { state: after, event: output === undefined ? event : { ...event, console: output } };
  }
  // HLT-02: HLT completed into the HALT state.
  if (after.cpu.halted) return { state: after, event: { kind: "halted", rip, instruction: insn } };
  return { state: after, event: { kind: "retired", rip, instruction: insn } };
}

/** INT n / INT3 / INT1 / INTO: their event is delivered in the same step (software-interrupt.ts);
 *  with delivery "stop", a fault raised on the way ends the step at the INT instead. The INT
 *  itself writes no memory: its transaction's memory stands, and a delivery attempt that faults
 *  takes back its own writes. */
function softwareInterrupt(rip: bigint, t: Transaction, si: SoftwareInterrupt, insn: Instruction, heldTrap: boolean, ctx: Context): RegistersStep {
  // The machine at the INT, made only if a fault is raised on the way (the INT's transaction can
  // still take its own writes back then: a failed delivery attempt takes back only its own).
  // Such a fault is delivered on it, in place when delivery is through the IDT; with delivery
  // "stop" the step ends on it as it is, so nothing writes it.
  let made: MachineRegisters | undefined;
  const atInstruction = (): MachineRegisters => (made ??= t.keptOnFaultFrom(t.startMachine()));
  const outcome = deliverSoftwareInterrupt(t, atInstruction, si, heldTrap, ctx.delivery === "stop" ? undefined : ctx.journal);
  const first = outcome.nested[0];
  if (ctx.delivery === "stop" && first !== undefined)
    return { state: atInstruction(), event: { kind: "fault", rip, fault: first, instruction: insn } };
  return deliveredResult(outcome, rip, insn);
}

/** A faulting instruction: no effect but A/D bits and the updates a fault keeps (GLOBAL-05); its
 *  fault is delivered on the machine at the instruction (saved RIP = the faulting instruction, RF = 1). */
function faulted(start: MachineRegisters, t: Transaction, f: Fault, insn: Instruction | undefined, ctx: Context): RegistersStep {
  t.rollBackMemory();
  t.rollBackRegisters();
  // Read before the delivery, which writes `start` in place.
  const rip = start.rip;
  const atInstruction = t.keptOnFaultFrom(start);
  if (ctx.delivery === "stop") return { state: atInstruction, event: { kind: "fault", rip, fault: f, instruction: insn } };
  const outcome = deliverWithNestingOn(atInstruction, atInstruction, t.workingMemory, exceptionEvent(f), ctx.profile, ctx.coverage, ctx.journal);
  return deliveredResult(outcome, rip, insn, f);
}

const STEP_SOURCE: Record<EventSource, "exception" | "software" | "external" | "nmi"> = {
  exception: "exception",
  software: "software",
  // SWINT-04: INT1 is delivered like a hardware exception (EXT = 1, no DPL check).
  int1: "exception",
  external: "external",
  nmi: "nmi",
};

function deliveredResult(outcome: DeliveryOutcome<MachineRegisters>, rip: bigint, insn: Instruction | undefined, instructionFault?: Fault): RegistersStep {
  const delivered = outcome.delivered;
  const faults = instructionFault === undefined && outcome.nested.length === 0 ? {} : { faults: { instruction: instructionFault, delivery: outcome.nested } };
  if (delivered === null) return { state: outcome.state, event: insn === undefined ? { kind: "shutdown", rip, ...faults } : { kind: "shutdown", rip, instruction: insn, ...faults } };
  const errorCode = pushesErrorCode(delivered) ? (delivered.errorCode ?? 0) : undefined;
  const source = STEP_SOURCE[delivered.source];
  // (Built without a spread when no fault was raised: INT n and boundary events, every step of
  // the interrupt loop's delivery.)
  const event: StepEvent = "faults" in faults
    ? { kind: "delivered", rip, vector: delivered.vector, errorCode, source, instruction: insn, faults: faults.faults }
    : { kind: "delivered", rip, vector: delivered.vector, errorCode, source, instruction: insn };
  return { state: outcome.state, event };
}

export interface RunOptions extends StepOptions {
  readonly maxSteps: number;
  /** Wall-clock limit in milliseconds; checked every 1024 steps. */
  readonly timeoutMs?: number;
  /** Called after every step (traces). */
  readonly onStep?: (before: Machine, result: StepResult) => void;
  /** Called with each byte an OUT appends to the debug console (DEV-CON-01). */
  readonly onConsole?: (byte: number) => void;
}

const STOPPING: Partial<Record<StepEvent["kind"], RunResult["reason"]>> = {
  "memory-limit": "memory-limit",
  shutdown: "shutdown",
  unsupported: "unsupported",
  fault: "fault",
};

/**
 * Steps until the kernel writes the exit port, the CPU halts with nothing to wake it, shuts down,
 * or a limit is reached (vector README, "Running a vector" 4). The run owns its working state:
 * one memory draft for all its steps (a page is copied once per run, not once per step that
 * writes it), and Machines are made only for the caller — the result, and `onStep`'s before and
 * after when it is given. `state` is left untouched.
 */
export function run(state: Machine, options: RunOptions): RunResult {
  const ctx = context(options);
  const profile = ctx.profile;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const memory = state.memory.draft(options.maxPages ?? PAGE_BUDGET);
  const onStep = options.onStep;
  /** The machine before this step, for onStep. */
  let before = state;
  /** The run's working record: its own copy of `state`'s registers, written in place by each
   *  step (a step that faults takes its writes back: Transaction.rollBackRegisters). */
  let m: MachineRegisters = withOwnRegisters(state);
  const journal = ctx.journal;
  let last: StepEvent | undefined;
  const result = (reason: RunResult["reason"], steps: number): RunResult => ({ state: onStep !== undefined ? before : withMemory(m, memory.snapshot()), reason, steps, last });
  for (let steps = 0; ; steps++) {
    const ended = stopBeforeStep(m, profile);
    if (ended !== null) return result(ended, steps);
    if (steps >= options.maxSteps) return result("limit", steps);
    if ((steps & 1023) === 1023 && Date.now() > deadline) return result("timeout", steps);
    const r = stepOn(m, memory, ctx);
    // The journals only serve a step that faults: past the step, nothing is rolled back.
    memory.forgetJournal();
    journal.forget();
    m = r.state;
    last = r.event;
    if (onStep !== undefined) {
      // A Machine of its own: the next step writes the working record and its registers in place.
      const after = withMemory(withOwnRegisters(m), memory.snapshot());
      onStep(before, { state: after, event: last });
      before = after;
    }
    // (Retired and delivered, the usual events, tested first by name: the table's keyed lookup
    // sees every kind.)
    if (last.kind === "retired" || last.kind === "delivered") continue;
    if (last.kind === "io" && last.console !== undefined) options.onConsole?.(last.console);
    const stop = STOPPING[last.kind];
    // An unsupported or memory-limit attempt is not a step (contract/engine.ts).
    if (stop !== undefined) return result(stop, steps + (stop === "unsupported" || stop === "memory-limit" ? 0 : 1));
  }
}

/**
 * Single steps on a working copy that lasts from step to step (what the Engine interface's `step`
 * drives): like `run`, it owns one memory draft and one working record across its steps, so a page
 * a step writes is copied once per Machine handed out, not once per step. `start` is left
 * untouched, and every Machine `machine()` hands out stays as it was handed out. The same steps
 * as `step` (test/spec/purity.test.ts compares the two).
 */
export class Stepper {
  /** The working record, written in place by each step. */
  private m: MachineRegisters;
  private readonly memory: MemoryDraft;
  private readonly ctx: Context;
  /** The Machine handed out since the last step, if any (made once between two steps). */
  private handedOut: Machine | null;

  constructor(start: Machine, options: StepOptions = {}) {
    this.ctx = context(options);
    this.memory = start.memory.draft(options.maxPages ?? PAGE_BUDGET);
    this.m = withOwnRegisters(start);
    this.handedOut = start;
  }

  /** What the next step starts from (read only: the next step writes it in place). */
  get registers(): MachineRegisters {
    return this.m;
  }

  /** One step; `coverage`, when given, collects this step's rules instead of the options'. */
  step(coverage?: Set<RuleId>): StepEvent {
    this.handedOut = null;
    const ctx = coverage === undefined ? this.ctx : { ...this.ctx, coverage };
    const r = stepOn(this.m, this.memory, ctx);
    // The journals only serve a step that faults: past the step, nothing is rolled back.
    this.memory.forgetJournal();
    ctx.journal.forget();
    this.m = r.state;
    return r.event;
  }

  /** The memory after the last step, to read at once (MemoryDraft.peek): unlike machine(), the
   *  working copy keeps its pages, so the next write to a page does not copy it again. */
  peekMemory(): PhysicalMemory {
    return this.memory.peek();
  }

  /** The working copy's generation (MemoryDraft.generation): it moves whenever a page object in
   *  its index is replaced. */
  memoryGeneration(): number {
    return this.memory.generation;
  }

  /** The machine after the last step, as a Machine of the caller's. */
  machine(): Machine {
    return (this.handedOut ??= withMemory(withOwnRegisters(this.m), this.memory.snapshot()));
  }
}

/** Why a run stops before stepping `m`, in run's order (exited, shut down, halted with nothing to
 *  wake it), or null when `m` would step. */
export function stopBeforeStep(m: MachineRegisters, profile: Profile): "exit" | "shutdown" | "hlt" | null {
  if (m.devices.exitValue !== null) return "exit";
  if (m.cpu.shutdown) return "shutdown";
  if (m.cpu.halted && !canWake(m, profile)) return "hlt";
  return null;
}

/** HLT-03: whether something wakes a halted CPU: an unblocked NMI, a maskable interrupt that IF,
 *  the shadow and CR8 let through, or the timer's tick that time jumps to (DEV-TMR-06). */
export function canWake(m: MachineRegisters, profile: Profile = INTEL): boolean {
  return canWakeAt(m, profile) || timerWouldWake(m);
}
