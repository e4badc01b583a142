// The spec behind the Engine interface (contract/engine.ts), so that the runner, the CLI, lockstep
// and benchmarks drive spec/ and impl/ the same way. Its events carry what a trace needs (the
// instruction's bytes, and on request the rule IDs each step exercised): nothing drives the
// model around this class.
import type { Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest, StepFault, StepInstruction } from "../contract/engine.ts";
import type { ProfileName } from "../contract/profile.ts";
import { PAGE_SIZE, type ArchState } from "../contract/state.ts";
import { PAGE_BUDGET } from "../contract/limits.ts";
import { modelScopeViolation } from "../contract/scope.ts";
import { machineFromState, patchMachine, stateFromMachine, withOwnRegisters, type Machine } from "./machine/machine.ts";
import { INTEL, profileByName, type Profile } from "../contract/profile.ts";
import type { Instruction } from "./decode/instruction.ts";
import type { RuleId } from "./rules/rule.ts";
import type { Fault } from "./fault.ts";
import type { RaisedFaults, StepEvent } from "./step/events.ts";
import { run, Stepper, stopBeforeStep } from "./step/step.ts";
import { pendingBoundaryEvent } from "./transitions/boundary.ts";

export interface SpecEngineOptions {
  /** Each step's event lists the rule IDs the step exercised (`rules`). */
  readonly rules?: boolean;
  /** Every rule ID exercised by the engine's steps and runs is added here. */
  readonly coverage?: Set<RuleId>;
  /** The most guest physical memory, in bytes (whole 4 KiB pages), a state may hold and a run
   *  may grow to; default the page budget (contract/limits.ts, 256 MiB). A step that needs one
   *  more page stops the run with `memory-limit`, the step taken back. */
  readonly maxMemoryBytes?: number;
}

/** What takeConsole hands out when nothing was written (most steps): one frozen empty array. */
const NO_CONSOLE = Object.freeze(new Uint8Array(0));

const NOT_FETCHED: StepInstruction = { bytes: new Uint8Array(0), length: 0 };

function fetched(insn: Instruction | undefined): StepInstruction {
  return insn === undefined ? NOT_FETCHED : { bytes: insn.bytes, length: insn.length };
}

/**
 * The step's event in the contract's terms. `instructionStep`: the step executed (or tried to
 * fetch) an instruction, rather than taking a boundary event or idling; an instruction the
 * model could not fetch or decode (fetch fault, #UD or #GP from the decoder) has no bytes.
 */
function engineEvent(e: StepEvent, instructionStep: boolean): EngineEvent {
  switch (e.kind) {
    case "retired":
      return { kind: "retired", rip: e.rip, instruction: fetched(e.instruction) };
    case "delivered": {
      const event = { kind: "delivered", rip: e.rip, vector: e.vector, errorCode: e.errorCode, source: e.source } as const;
      return instructionStep ? { ...event, instruction: fetched(e.instruction) } : event;
    }
    case "halted":
    case "shutdown":
      return instructionStep ? { kind: e.kind, rip: e.rip, instruction: fetched(e.instruction) } : { kind: e.kind, rip: e.rip };
    case "io":
      return {
        kind: "io", rip: e.rip, direction: e.direction, port: e.port, size: e.size, value: e.value,
        instruction: fetched(e.instruction),
      };
    case "unsupported":
      return { kind: "unsupported", rip: e.rip, bytes: e.bytes, reason: e.reason, instruction: { bytes: e.bytes, length: e.bytes.length } };
    case "exited":
      return { kind: "exited", rip: e.rip, value: e.value };
    case "memory-limit":
      return { kind: "memory-limit", rip: e.rip, reason: e.reason };
    case "fault":
      // Only with delivery "stop", which the engine never asks for.
      throw new Error("spec engine: undelivered fault");
  }
}

/** A step's rules for its trace: a Set (the model records rules with `add`) that also keeps every
 *  addition in order, repeats included, so that a trace can lay out the mode-transfer sequence
 *  (a #DF's second delivery repeats the first one's rules). */
class RuleLog extends Set<RuleId> {
  readonly order: RuleId[] = [];

  override add(rule: RuleId): this {
    this.order.push(rule);
    return super.add(rule);
  }
}

function stepFaults(raised: RaisedFaults | undefined): StepFault[] {
  if (raised === undefined) return [];
  const one = (f: Fault, during: StepFault["during"]): StepFault => ({ rule: f.rule, vector: f.vector, errorCode: f.errorCode, during });
  return [...(raised.instruction === undefined ? [] : [one(raised.instruction, "instruction")]), ...raised.delivery.map((f) => one(f, "delivery"))];
}

export class SpecEngine implements Engine {
  /** The machine, stepped in place one step at a time (spec/step/step.ts Stepper): single steps
   *  copy a page they write once per state handed out, not once per step. */
  private stepper: Stepper | null = null;
  private loaded: Machine | null = null;
  /** touched()'s last answer, for the working copy and generation it was read at. */
  private touchedMemo: { readonly stepper: Stepper; readonly generation: number; readonly ranges: readonly PhysicalRange[] } | null = null;
  private profile: Profile = INTEL;
  /** Console bytes not yet taken (DEV-CON-01). */
  private console: number[] = [];
  private readonly keepConsole = (byte: number): void => {
    this.console.push(byte);
  };

  /** The page budget of this engine's runs (SpecEngineOptions.maxMemoryBytes). */
  private readonly maxPages: number;

  constructor(private readonly options: SpecEngineOptions = {}) {
    const bytes = options.maxMemoryBytes ?? PAGE_BUDGET * PAGE_SIZE;
    if (!(bytes >= PAGE_SIZE)) throw new RangeError("maxMemoryBytes: at least one 4 KiB page (4096)");
    this.maxPages = Math.floor(bytes / PAGE_SIZE);
  }

  load(state: ArchState, profile: ProfileName): void {
    // The contract's one input domain: the same refusal as the loader's and impl's.
    const violation = modelScopeViolation(state);
    if (violation !== null) throw new RangeError(`state outside the model: ${violation}`);
    if (state.memory.size > this.maxPages) throw new RangeError(`memory: more than ${this.maxPages} pages`);
    this.profile = profileByName(profile);
    this.loaded = machineFromState(state);
    this.startFrom(this.loaded);
    this.console = [];
  }

  /** Steps from here on start from `m`. */
  private startFrom(m: Machine): void {
    // touched()'s memo holds the old working copy (its draft and pages): let it go with it.
    this.touchedMemo = null;
    const coverage = this.options.coverage;
    this.stepper = new Stepper(m, { profile: this.profile, maxPages: this.maxPages, ...(coverage === undefined ? {} : { coverage }) });
  }

  private steps(): Stepper {
    if (this.stepper === null) throw new Error("spec engine: load() a state first");
    return this.stepper;
  }

  private current(): Machine {
    return this.steps().machine();
  }

  step(): EngineEvent {
    const stepper = this.steps();
    // The step order of spec/step/step.ts: exited, shutdown, a boundary event, an idle HLT, an
    // instruction (read before the step writes the working record).
    const before = stepper.registers;
    const instructionStep = before.devices.exitValue === null && !before.cpu.shutdown && pendingBoundaryEvent(before, this.profile) === null && !before.cpu.halted;
    const stepRules = this.options.rules === true ? new RuleLog() : undefined;
    const stepEvent = stepper.step(stepRules);
    if (stepEvent.kind === "io" && stepEvent.console !== undefined) this.console.push(stepEvent.console);
    if (stepRules !== undefined) for (const id of stepRules) this.options.coverage?.add(id);
    const event = engineEvent(stepEvent, instructionStep);
    if (stepRules === undefined) return event;
    const faults = stepEvent.kind === "delivered" || stepEvent.kind === "shutdown" ? stepFaults(stepEvent.faults) : [];
    return { ...event, rules: stepRules.order, ...(faults.length === 0 ? {} : { faults }) };
  }

  run(maxSteps: number): EngineStop {
    // run(0) steps nothing: it only says whether the machine could step (the runner asks before
    // every step of an event-hooked run), with run()'s own tests in run()'s order, and without
    // making a working copy of the machine to leave it as it was.
    if (maxSteps === 0) {
      const m = this.steps().registers;
      const reason = stopBeforeStep(m, this.profile);
      if (reason === "exit") return { reason, steps: 0, exitValue: m.devices.exitValue! };
      return { reason: reason ?? "limit", steps: 0 };
    }
    const coverage = this.options.coverage;
    const result = run(this.current(), { profile: this.profile, maxSteps, maxPages: this.maxPages, onConsole: this.keepConsole, ...(coverage === undefined ? {} : { coverage }) });
    this.startFrom(result.state);
    const last = result.last;
    if (result.reason === "unsupported" && last?.kind === "unsupported")
      return { reason: "unsupported", steps: result.steps, event: engineEvent(last, true) as Extract<EngineEvent, { kind: "unsupported" }> };
    if (result.reason === "memory-limit" && last?.kind === "memory-limit")
      return { reason: "memory-limit", steps: result.steps, event: { kind: "memory-limit", rip: last.rip, reason: last.reason } };
    if (result.reason === "exit") return { reason: "exit", steps: result.steps, exitValue: result.state.devices.exitValue! };
    if (result.reason === "hlt" || result.reason === "shutdown" || result.reason === "limit") return { reason: result.reason, steps: result.steps };
    throw new Error(`spec engine: unexpected stop ${result.reason}`);
  }

  state(): ArchState {
    return stateFromMachine(this.current());
  }

  /** Engine.peekState: the state now, its pages those of the working copy (valid until the next
   *  load/step/run/raise), every backed page whatever `memory` says. Unlike state(), it leaves the
   *  working copy its pages: after a state() the next write to each page copies it again
   *  (persistent memory), and the fetch's code-page memo starts again, which costs the next step
   *  more than the state. */
  peekState(_memory: readonly PhysicalRange[]): ArchState {
    const stepper = this.steps();
    return { ...withOwnRegisters(stepper.registers), memory: stepper.peekMemory().pages() };
  }

  /** DEV-CON-01: the console bytes written since load() or the last call. */
  takeConsole(): Uint8Array {
    if (this.console.length === 0) return NO_CONSOLE;
    const bytes = Uint8Array.from(this.console);
    this.console = [];
    return bytes;
  }

  raise(event: RaiseRequest): void {
    const m = this.current();
    const cpu = "irq" in event ? { ...m.cpu, pendingIrq: event.irq } : { ...m.cpu, pendingNmi: true };
    this.startFrom(patchMachine(m, { cpu }));
  }

  /** Whole pages whose contents object changed since `load` (persistent memory copies a page on
   *  every write, so an untouched page is still the very same object). */
  touched(): readonly PhysicalRange[] {
    const stepper = this.steps();
    // The page objects change only where the working copy's generation moves (MemoryDraft): the
    // answer stands until then (a lockstep asks after every step, most of which write no new page).
    const generation = stepper.memoryGeneration();
    const known = this.touchedMemo;
    if (known !== null && known.stepper === stepper && known.generation === generation) return known.ranges;
    // Read from the working copy as it is (no state handed out: see peekState).
    const pages = stepper.peekMemory().changedPages(this.loaded!.memory);
    const ranges: PhysicalRange[] = [];
    for (const n of pages) {
      const start = BigInt(n) * 4096n;
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.end === start) ranges[ranges.length - 1] = { start: last.start, end: start + 4096n };
      else ranges.push({ start, end: start + 4096n });
    }
    this.touchedMemo = { stepper, generation, ranges };
    return ranges;
  }
}
