// One step (vector README, "Running a vector" 3): one event delivered at an instruction boundary,
// or one instruction — completed, or faulted with the delivery of its fault (and any #DF it
// escalates to) in the same step. `run` repeats it. The boundary rules (priority, shadows, HLT,
// single-step) are spec/transitions/boundary.ts; delivery is spec/transitions/deliver.ts.
import { decode } from "../decode/decode.ts";
import { rememberedInstruction, rememberInstruction } from "../decode/memo.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { AccessMode } from "../paging/access.ts";
import { isFault, type Fault } from "../fault.ts";
import { patchMachine, type Machine } from "../machine/machine.ts";
import { canonical, cpl, in64BitMode, MASK64, RFLAGS } from "../machine/registers.ts";
import { INTEL, type Profile } from "../../contract/profile.ts";
import { defineRules, type RuleId } from "../rules/registry.ts";
import {
  canWake as canWakeAt, leavesSingleStepTrap, loadsSs, pendingBoundaryEvent, type BoundaryEvent,
} from "../transitions/boundary.ts";
import { deliverWithNesting, type DeliveryOutcome } from "../transitions/double-fault.ts";
import { exceptionEvent, pushesErrorCode, softwareEvent, type EventSource } from "../transitions/exception-classes.ts";
import { unblockNmi } from "../transitions/iret.ts";
import type { RunResult, StepEvent, StepResult } from "./events.ts";
import { executorFor } from "./execute.ts";
import type { ExecEnv, SoftwareInterrupt } from "./executor.ts";
import { Transaction } from "./transaction.ts";

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
}

const DEFAULT_PORT_IN = (_port: number, size: 1 | 2 | 4): bigint => (1n << BigInt(8 * size)) - 1n;

/** Linear address of the instruction pointer: CS.base applies outside 64-bit mode. */
function fetchAddress(m: Machine, offset: number): bigint {
  return in64BitMode(m) ? (m.rip + BigInt(offset)) & MASK64 : (m.cs.base + ((m.rip + BigInt(offset)) & 0xffff_ffffn)) & 0xffff_ffffn;
}

/**
 * The bytes of the instruction at RIP, fetched for the decoder one at a time. Each page they come
 * from is checked and translated once, when its first byte is needed: the bytes after it up to the
 * end of the page are at consecutive linear addresses, canonical exactly when it is (the canonical
 * boundary is a page boundary), and walk the same entries (nothing is written between the fetches
 * of one instruction, and the first walk already set their A bits).
 */
class InstructionBytes {
  private readonly mode: AccessMode;
  /** Bytes first..end−1 are in physical page `page`, byte i at offset `i + shift`. */
  private first = 0;
  private end = 0;
  page = 0;
  shift = 0;

  constructor(private readonly t: Transaction, private readonly m: Machine) {
    this.mode = cpl(m) === 3 ? "user" : "supervisor";
  }

  byte(i: number): number | Fault {
    if (i < this.first || i >= this.end) {
      const address = fetchAddress(this.m, i);
      if (!canonical(address)) return this.t.fault("CANON-FETCH", 13, 0);
      const physical = this.t.translateFetch(address, this.mode);
      if (typeof physical !== "bigint") return physical;
      const offset = Number(address & 0xfffn);
      this.first = i;
      this.end = i + 4096 - offset;
      this.page = Number(physical >> 12n);
      this.shift = offset - i;
    }
    return this.t.physicalByte(this.page, i + this.shift);
  }
}

/** Decodes at RIP; fetch faults (#PF, #GP for non-canonical RIP) come back as faults. */
export function fetchAndDecode(t: Transaction) {
  const m = t.m;
  const mode64 = in64BitMode(m);
  const bytes = new InstructionBytes(t, m);
  // The first byte's fetch (its checks and walk) always happens; the bytes from there may have
  // been decoded before (spec/decode/memo.ts).
  const byte0 = bytes.byte(0);
  if (typeof byte0 !== "number") return byte0;
  const fixed = t.fixedPage(bytes.page);
  const known = fixed === undefined ? undefined : rememberedInstruction(fixed, bytes.shift, mode64);
  if (known !== undefined) return known;
  const decoded = decode((i) => bytes.byte(i), mode64);
  if (fixed !== undefined && decoded.kind === "instruction") rememberInstruction(fixed, bytes.shift, mode64, decoded);
  return decoded;
}

interface Context {
  readonly profile: Profile;
  readonly coverage: Set<RuleId> | null;
  readonly options: StepOptions;
}

export function step(state: Machine, options: StepOptions = {}): StepResult {
  const ctx: Context = { profile: options.profile ?? INTEL, coverage: options.coverage ?? null, options };
  if (state.cpu.shutdown) return { state, event: { kind: "shutdown", rip: state.rip } };
  // PRIO-01: an event pending at this boundary comes before the next instruction (and wakes HLT).
  const pending = pendingBoundaryEvent(state, ctx.profile);
  if (pending !== null) return takeBoundaryEvent(state, pending, ctx);
  if (state.cpu.halted) {
    ctx.coverage?.add("HLT-04");
    return { state, event: { kind: "halted", rip: state.rip } };
  }
  return executeInstruction(state, ctx);
}

/** One boundary event: consumed from the pending state, then delivered (RIP = next instruction). */
function takeBoundaryEvent(state: Machine, pending: BoundaryEvent, ctx: Context): StepResult {
  ctx.coverage?.add("PRIO-01");
  if (state.cpu.halted) ctx.coverage?.add(pending.kind === "single-step" ? "HLT-06" : "HLT-03");
  const cpu = state.cpu;
  let on: Machine;
  switch (pending.kind) {
    case "single-step":
      ctx.coverage?.add("TF-02");
      on = patchMachine(state, { cpu: { ...cpu, pendingDebugTrap: false } });
      break;
    case "nmi":
      // NMI-02: blocking starts with the delivery, even if the delivery itself faults.
      ctx.coverage?.add("NMI-01");
      on = patchMachine(state, { cpu: { ...cpu, pendingNmi: false, nmiBlocked: true } });
      break;
    case "external":
      // PRIO-02 / vector README: an external interrupt is delivered once.
      on = patchMachine(state, { cpu: { ...cpu, pendingIrq: null } });
      break;
  }
  const outcome = deliverWithNesting(on, on, pending.event, ctx.profile, ctx.coverage);
  return deliveredResult(outcome, state.rip, undefined);
}

function executeInstruction(state: Machine, ctx: Context): StepResult {
  const rip = state.rip;
  const t = new Transaction(state, ctx.profile, ctx.coverage);
  const decoded = fetchAndDecode(t);
  if (isFault(decoded)) return faulted(state, t, decoded, undefined, ctx);
  if (decoded.kind === "unsupported")
    return { state, event: { kind: "unsupported", rip, bytes: decoded.bytes, reason: decoded.reason } };
  const insn = decoded;
  const executor = executorFor(insn.mnemonic);
  if (executor === undefined)
    return { state, event: { kind: "unsupported", rip, bytes: insn.bytes, reason: `no semantics for ${insn.mnemonic}` } };

  // IRETQ-00 / NMI-03: IRET ends NMI blocking first, and that survives a fault of the IRET.
  const start = insn.mnemonic === "iret" ? unblockNmi(state) : state;
  if (start !== state) t.update("IRETQ-00", { cpu: start.cpu });
  const tfBefore = (state.rflags & RFLAGS.TF) !== 0n;
  // A single-step trap pending here was held by a MOV SS shadow (SHADOW-05): it stays pending
  // through this instruction, whatever it does (SHADOW-06).
  const heldTrap = state.cpu.pendingDebugTrap;
  if (heldTrap) t.hit("SHADOW-06");

  // RF-01: RF is cleared by every instruction that completes; RIP moves on unless it branches.
  const nextRip = in64BitMode(state) ? (rip + BigInt(insn.length)) & MASK64 : (rip + BigInt(insn.length)) & 0xffff_ffffn;
  t.update("RF-01", { rip: nextRip, rflags: t.m.rflags & ~RFLAGS.RF });
  // SHADOW-02: the shadow in force covered the boundary before this instruction and ends as it
  // starts (t.startShadow keeps it for STI / MOV SS, SHADOW-07); executors may open a new one.
  if (state.cpu.shadow !== "none") t.update("SHADOW-02", { cpu: { ...t.m.cpu, shadow: "none" } });
  const env: ExecEnv = { portIn: ctx.options.portIn ?? DEFAULT_PORT_IN };
  const outcome = executor(t, insn, env);
  if (isFault(outcome)) {
    if (state.cpu.shadow !== "none") t.hit("SHADOW-09");
    return faulted(start, t, outcome, insn, ctx);
  }
  if (outcome !== undefined && outcome.kind === "unsupported")
    return { state, event: { kind: "unsupported", rip, bytes: insn.bytes, reason: outcome.reason } };
  if (outcome !== undefined && outcome.kind === "software-interrupt") return softwareInterrupt(start, t, outcome, insn, heldTrap, ctx);

  // TF-01: the single-step trap this instruction leaves for the next boundary.
  const tfAfter = (t.m.rflags & RFLAGS.TF) !== 0n;
  const ownTrap = leavesSingleStepTrap(insn, tfBefore, tfAfter);
  // SYSCALL-10 / SYSRET-09: for these two the TF *after* the instruction decides (FMASK may have
  // cleared it; R11 may have set it, and then the trap comes at CPL 3 before the first user
  // instruction).
  if (insn.mnemonic === "syscall") t.hit("SYSCALL-10");
  if (insn.mnemonic === "sysret") t.hit("SYSRET-09");
  if (ownTrap) t.hit(loadsSs(insn) ? "SHADOW-05" : "TF-01");
  const trap = heldTrap || ownTrap;
  const cpuAfter = t.m.cpu;
  const after: Machine = cpuAfter.pendingDebugTrap === trap ? t.m : patchMachine(t.m, { cpu: { ...cpuAfter, pendingDebugTrap: trap } });
  if (outcome === undefined) return { state: after, event: { kind: "retired", rip, instruction: insn } };
  switch (outcome.kind) {
    case "halt":
      return { state: patchMachine(after, { cpu: { ...after.cpu, halted: true } }), event: { kind: "halted", rip, instruction: insn } };
    case "io":
      return { state: after, event: { kind: "io", rip, direction: outcome.direction, port: outcome.port, size: outcome.size, value: outcome.value, instruction: insn } };
  }
}

/**
 * INT n / INT3 / INT1 / INTO: delivered on the machine after the instruction (saved RIP = next,
 * EXC-03); a fault on the way is a fault of the INT instruction (saved RIP = the INT, RF = 1).
 * SWINT-06: the INT leaves no single-step trap of its own (delivery clears TF).
 */
function softwareInterrupt(start: Machine, t: Transaction, si: SoftwareInterrupt, insn: Instruction, heldTrap: boolean, ctx: Context): StepResult {
  t.hit("SWINT-06");
  const event = softwareEvent(si.vector, si.source === "int1" ? "int1" : "software");
  const after: Machine = patchMachine(t.m, { cpu: { ...t.m.cpu, pendingDebugTrap: heldTrap } });
  const atInstruction = t.machineAfterFault(start);
  const outcome = deliverWithNesting(after, atInstruction, event, ctx.profile, ctx.coverage);
  const first = outcome.nested[0];
  if (ctx.options.delivery === "stop" && first !== undefined)
    return { state: atInstruction, event: { kind: "fault", rip: start.rip, fault: first, instruction: insn } };
  return deliveredResult(outcome, start.rip, insn);
}

/** A faulting instruction: no effect but A/D bits (GLOBAL-05); its fault is delivered on the
 *  machine at the instruction (saved RIP = the faulting instruction, RF = 1). */
function faulted(start: Machine, t: Transaction, f: Fault, insn: Instruction | undefined, ctx: Context): StepResult {
  const atInstruction = t.machineAfterFault(start);
  if (ctx.options.delivery === "stop") return { state: atInstruction, event: { kind: "fault", rip: start.rip, fault: f, instruction: insn } };
  const outcome = deliverWithNesting(atInstruction, atInstruction, exceptionEvent(f), ctx.profile, ctx.coverage);
  return deliveredResult(outcome, start.rip, insn);
}

const STEP_SOURCE: Record<EventSource, "exception" | "software" | "external" | "nmi"> = {
  exception: "exception",
  software: "software",
  // SWINT-04: INT1 is delivered like a hardware exception (EXT = 1, no DPL check).
  int1: "exception",
  external: "external",
  nmi: "nmi",
};

function deliveredResult(outcome: DeliveryOutcome, rip: bigint, insn: Instruction | undefined): StepResult {
  const delivered = outcome.delivered;
  if (delivered === null) return { state: outcome.state, event: insn === undefined ? { kind: "shutdown", rip } : { kind: "shutdown", rip, instruction: insn } };
  const event: StepEvent = {
    kind: "delivered",
    rip,
    vector: delivered.vector,
    errorCode: pushesErrorCode(delivered) ? (delivered.errorCode ?? 0) : undefined,
    source: STEP_SOURCE[delivered.source],
    instruction: insn,
  };
  return { state: outcome.state, event };
}

export interface RunOptions extends StepOptions {
  readonly maxSteps: number;
  /** Wall-clock limit in milliseconds; checked every 1024 steps. */
  readonly timeoutMs?: number;
  /** Called after every step (traces). */
  readonly onStep?: (before: Machine, result: StepResult) => void;
}

const STOPPING: Partial<Record<StepEvent["kind"], RunResult["reason"]>> = {
  shutdown: "shutdown",
  unsupported: "unsupported",
  fault: "fault",
};

/** Steps until the CPU halts with nothing to wake it, shuts down, or a limit is reached
 *  (vector README, "Running a vector" 4). */
export function run(state: Machine, options: RunOptions): RunResult {
  const profile = options.profile ?? INTEL;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let m = state;
  let last: StepEvent | undefined;
  for (let steps = 0; ; steps++) {
    if (m.cpu.shutdown) return { state: m, reason: "shutdown", steps, last };
    if (m.cpu.halted && !canWakeAt(m, profile)) return { state: m, reason: "hlt", steps, last };
    if (steps >= options.maxSteps) return { state: m, reason: "limit", steps, last };
    if ((steps & 1023) === 1023 && Date.now() > deadline) return { state: m, reason: "timeout", steps, last };
    const result = step(m, options);
    options.onStep?.(m, result);
    last = result.event;
    const stop = STOPPING[result.event.kind];
    m = result.state;
    if (stop !== undefined) return { state: m, reason: stop, steps: steps + (stop === "unsupported" ? 0 : 1), last };
  }
}

/** HLT-03: whether something pending wakes a halted CPU (an unblocked NMI, or a maskable interrupt
 *  that IF, the shadow and CR8 let through). */
export function canWake(m: Machine, profile: Profile = INTEL): boolean {
  return canWakeAt(m, profile);
}

defineRules([
  { id: "RF-01", description: "RF is cleared when an instruction completes (IRET may load it again)", source: "SDM Vol. 3A §18.3.1.1" },
]);
