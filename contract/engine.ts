// The Engine interface: what every executable machine offers to the runner (engines/runner.ts),
// the CLI, lockstep and the conformance tools (spec/ through SpecEngine, impl/ through ImplEngine,
// emulators in other processes through AsyncEngine). Types only.
//
// Steps are those of the vector README ("Running a vector" 3): executing one instruction (which
// either completes or faults — delivering the fault, and any #DF it escalates to, belongs to the
// same step), or delivering one event pending at an instruction boundary (single-step trap, NMI,
// external interrupt). A halted CPU with nothing deliverable does not step.
import type { ArchState } from "./state.ts";
import type { ProfileName } from "./profile.ts";

/** Where a delivered event came from (vector README; EXT = 1 for all but "software"). */
export type DeliverySource = "exception" | "software" | "external" | "nmi";

/**
 * The instruction a step executed or attempted, as the engine fetched it. Present on every event
 * of an instruction step (whatever its outcome); absent on an event taken at a boundary and on an
 * idle CPU's event. Traces disassemble `bytes`; nothing else needs to read guest memory for them.
 */
export interface StepInstruction {
  /** The encoding: exactly `length` bytes when it decoded. Fewer when it did not: none when the
   *  fetch of its first byte faulted; for `unsupported`, the bytes that name the encoding. */
  readonly bytes: Uint8Array;
  /** Encoded length in bytes (1–15); 0 when the fetch faulted before the length was known. */
  readonly length: number;
}

/** What every event may carry besides its kind's own fields. */
export interface StepDetails {
  /** Set for an instruction step; absent for a boundary event and an idle CPU (see above). */
  readonly instruction?: StepInstruction;
  /** Rule IDs the step exercised, in the order exercised (a rule exercised again is listed again),
   *  when the engine reports them (spec/ does when asked: `new SpecEngine({ rules: true })`).
   *  Absent: not reported (not "none"). Traces read the order: the mode-transfer sequence. */
  readonly rules?: readonly string[];
  /** With `rules`: the checks that failed during the step, in order: the instruction's own fault
   *  (`during: "instruction"`), then one per delivery attempt that faulted (the fault that led to
   *  #DF, a serial delivery, or the shutdown). Empty or absent: nothing failed. */
  readonly faults?: readonly StepFault[];
}

/** A check that failed during a step: its rule and the fault it raised. */
export interface StepFault {
  readonly rule: string;
  readonly vector: number;
  readonly errorCode: number | undefined;
  readonly during: "instruction" | "delivery";
}

/**
 * What one step did. `rip` is the address of the instruction the step executed, or, for an event
 * taken at a boundary and for a halted CPU, the RIP at that boundary.
 */
export type EngineEvent = StepDetails & (
  /** An instruction completed. */
  | { readonly kind: "retired"; readonly rip: bigint }
  /** An event went through the IDT: an instruction's fault or INT n/INT3/INT1/INTO (`rip` = that
   *  instruction), or an event taken at a boundary. `vector`/`errorCode` are those of the event
   *  finally delivered (8 and 0 when delivery escalated to #DF). */
  | {
      readonly kind: "delivered";
      readonly rip: bigint;
      readonly vector: number;
      readonly errorCode: number | undefined;
      readonly source: DeliverySource;
    }
  /** HLT executed (the step), or the CPU is halted and nothing can wake it (no step). */
  | { readonly kind: "halted"; readonly rip: bigint }
  /** A triple fault put the CPU in the shutdown state (or it already was: no step). */
  | { readonly kind: "shutdown"; readonly rip: bigint }
  /** IN/OUT completed. IN reads all ones (nothing answers on the bus). */
  | {
      readonly kind: "io";
      readonly rip: bigint;
      readonly direction: "in" | "out";
      readonly port: number;
      readonly size: 1 | 2 | 4;
      readonly value: bigint;
    }
  /** Bytes outside the modelled subset: the machine is unchanged and the run cannot go on. */
  | { readonly kind: "unsupported"; readonly rip: bigint; readonly bytes: Uint8Array; readonly reason: string }
  /** An engine resource cap (not architecture): guest physical memory would exceed the engine's
   *  page budget. The machine is unchanged but for A/D bits; the run cannot go on. */
  | { readonly kind: "memory-limit"; readonly rip: bigint; readonly reason: string }
  /** The machine has stopped at a write to the exit port (docs/devices.md): no step. `value` is
   *  the exit value (`devices.exit_value`); `rip` is after the OUT that wrote it. */
  | { readonly kind: "exited"; readonly rip: bigint; readonly value: number }
);

export type EngineEventKind = EngineEvent["kind"];

/**
 * Why a run stopped: the one stop type of the project (engines' `run`, the runner, vector checks,
 * the CLI). The first three are the vector exits (the run finished); `exit` is the kernel's write
 * to the exit port (docs/devices.md; the value is `EngineStop.exitValue`); `unsupported` and
 * `memory-limit` mean the engine could not go on; `timeout` (the wall-clock limit) and `stopped`
 * (the caller's `onStep` ended the run) come from the runner, never from an engine.
 * `exit`, `hlt` and `shutdown` are checked at every boundary before the step limit, so a run whose
 * last allowed step executes HLT with nothing to wake it stops with `hlt`.
 */
/** Events after which a run cannot go on: `steps(n)` and a batched step answer stop after them. */
export const RUN_ENDING_EVENTS: ReadonlySet<EngineEvent["kind"]> = new Set(["shutdown", "unsupported", "memory-limit", "exited"]);

export type StopReason = "hlt" | "shutdown" | "limit" | "exit" | "unsupported" | "memory-limit" | "timeout" | "stopped";

/** The reasons an engine's own `run` gives. */
export type EngineStopReason = Exclude<StopReason, "timeout" | "stopped">;

/** The stops that finish a run (a vector's `expected.exit` is one of the first three). */
export const FINISHED_STOPS: readonly StopReason[] = ["hlt", "shutdown", "limit", "exit"];

export interface EngineStop {
  readonly reason: StopReason;
  /** Steps run (the unsupported or memory-limit attempt is not a step). */
  readonly steps: number;
  /** For "unsupported" and "memory-limit": the event that stopped the run. */
  readonly event?: Extract<EngineEvent, { kind: "unsupported" | "memory-limit" }>;
  /** For "exit": the value the kernel wrote to the exit port (docs/devices.md). */
  readonly exitValue?: number;
  /** One line on why the run could not finish (unsupported, memory-limit, timeout); the runner
   *  fills it in. */
  readonly detail?: string;
}

/** One step as the runner hands it to its `onStep` hook (engines/runner.ts): traces and lockstep
 *  are built from these. `step` is 1-based; an unsupported or memory-limit attempt is shown too
 *  (numbered as the step it would have been, `after` the unchanged machine) but is no step. */
export interface StepView {
  readonly step: number;
  readonly before: ArchState;
  readonly event: EngineEvent;
  readonly after: ArchState;
}

/** An external interrupt (one pending vector, the latest wins) or an NMI (latched). */
export type RaiseRequest = { readonly irq: number } | { readonly nmi: true };

/** Physical bytes [start, end). Engines may round ranges out (impl/ reports whole 4 KiB pages). */
export interface PhysicalRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** Every physical address (MAXPHYADDR 52 at most): the ranges of a whole state (e.g. for
 *  peekState when all memory is compared). */
export const ALL_MEMORY: readonly PhysicalRange[] = [{ start: 0n, end: 1n << 52n }];

/** An engine in this process, driven synchronously: load a state, step or run it, read its state
 *  back (spec/ and impl/ are Engines; AsyncEngine is the asynchronous form, for other processes too).
 *
 *  An engine in this process repeats its runs: the same load, then the same raises before the
 *  same steps, gives the same events and the same states (nothing outside the loaded state, such
 *  as the time of day, steers it). A campaign relies on it to rebuild engine A's states by running
 *  A again (AsyncEngine.repeatable, set by asAsync); it checks that A did. */
export interface Engine {
  /** Replaces the whole machine (registers, memory, the run-time `cpu` block) and the profile. */
  load(state: ArchState, profile: ProfileName): void;
  /** One step; see EngineEvent. Never throws because of guest behaviour. */
  step(): EngineEvent;
  /** Steps until a stop; never more than `maxSteps` steps. The reason is an EngineStopReason;
   *  `run(0)` steps nothing and tells whether the machine can step at all (`hlt`, `shutdown`,
   *  `exit`) or not (`limit`). */
  run(maxSteps: number): EngineStop;
  /** The full architectural state, including the run-time `cpu` block. With `memory`, the state's
   *  memory need hold only the pages those ranges reach (an engine may hand out more): for a
   *  lockstep, which compares memory only where either engine wrote, after every step. */
  state(memory?: readonly PhysicalRange[]): ArchState;
  /** As `state(memory)`, for a comparison made at once: the pages may be views of the engine's own
   *  memory instead of copies, valid only until the engine's next load/step/run/raise (calls that
   *  only read, touched() or state(), leave them valid: a lockstep compares B's state after every
   *  step, asking touched() while it holds it, and keeps none of it). Optional: callers fall
   *  back to `state`. */
  peekState?(memory: readonly PhysicalRange[]): ArchState;
  /** Makes an event pending (takes effect at the next boundary). */
  raise(event: RaiseRequest): void;
  /** Physical ranges written since `load`, in address order, merged where adjacent. */
  touched(): readonly PhysicalRange[];
  /** The bytes written to the debug console (port 0xE9, docs/devices.md) since `load` or the last
   *  call, in order, and forgets them. At most one byte a step, so a `run(n)` buffers at most n.
   *  Present exactly on engines that implement the devices (capabilities.devices). */
  takeConsole?(): Uint8Array;
}

/** `engine.peekState(memory)` where the engine has it, else `engine.state(memory)`: a state to read
 *  at once and not keep (see Engine.peekState). */
export function peekedState(engine: Engine, memory: readonly PhysicalRange[]): ArchState {
  return engine.peekState?.(memory) ?? engine.state(memory);
}

// ------------------------------------------------------------------------------------------------
// The asynchronous boundary. An engine in another process (an emulator behind the JSON-lines
// protocol, QEMU, Bochs, a GDB stub) cannot answer synchronously; every consumer that may drive
// such an engine (conformance campaigns, `vectors check`, bench --against) speaks AsyncEngine.
// In-process engines satisfy it cheaply through `asAsync` (contract/async.ts). The runner
// (engines/runner.ts) drives both forms with one loop.

/** What an engine can set, read and do. Fields it cannot observe are reported as not compared,
 *  never as passes. */
export interface EngineCapabilities {
  /** A name for reports: "spec", "impl", "qemu 7.2.0 tcg", ... */
  readonly name: string;
  readonly profiles: readonly ProfileName[];
  /** `step()` is exactly one architectural step (else only whole runs can be compared). */
  readonly singleStep: boolean;
  /** `raise()` can make an IRQ or NMI pending. */
  readonly raise: boolean;
  /** `touched()` reports the physical ranges written. */
  readonly touched: boolean;
  /** State fields, as the state comparison names them (`sregs.cs.base`, `msrs.CSTAR`,
   *  `cpu.pending_irq`, `memory@0x1000`; a trailing `*` matches a prefix), that the engine cannot
   *  set or read. contract/compare.ts reports them as not compared. */
  readonly unobservable: readonly string[];
  /** Events carry the rule IDs each step exercised (StepDetails.rules). Absent: false. */
  readonly rules?: boolean;
  /** The engine implements the devices of docs/devices.md itself (console, exit port, timer, the
   *  state's `devices` block, `takeConsole`). Absent: false — the `devices` block it reports is
   *  the one it was loaded with, and kernel/devices drives the devices from outside. */
  readonly devices?: boolean;
}

/** The Engine interface across an asynchronous boundary, with batching: `steps(n)` and `run(n)`
 *  do many steps in one exchange so that per-step round trips do not dominate. */
export interface AsyncEngine {
  readonly capabilities: EngineCapabilities;
  load(state: ArchState, profile: ProfileName): Promise<void>;
  step(): Promise<EngineEvent>;
  /** Up to `n` steps; stops early after an event that ends a run (shutdown, unsupported,
   *  memory-limit, or halted with nothing to wake the CPU). Returns every step's event; as with
   *  `step()`, an idle CPU's event (halted or shut down already) may come last and is no step. */
  steps(n: number): Promise<readonly EngineEvent[]>;
  run(maxSteps: number): Promise<EngineStop>;
  state(): Promise<ArchState>;
  /** As Engine.peekState: a state to read at once, valid until the next load/step/steps/run/raise.
   *  Optional: callers fall back to `state`. Having it says nothing of `repeatable`. */
  peekState?(memory: readonly PhysicalRange[]): Promise<ArchState>;
  /** True: the engine repeats its runs as Engine promises (the same load, the same raises before
   *  the same steps: the same events and states), so a campaign may keep only engine A's events and
   *  rebuild its states, when a report needs them, by running it again (it checks that it did).
   *  asAsync sets it (an engine in this process); an engine in another process does not, and is
   *  copied after every step instead. Absent: false. */
  readonly repeatable?: boolean;
  raise(event: RaiseRequest): Promise<void>;
  touched(): Promise<readonly PhysicalRange[]>;
  /** As Engine.takeConsole; absent on an engine without devices. */
  takeConsole?(): Promise<Uint8Array>;
  /** A promise from the caller: until the next load(), it calls step() at most `n` more times,
   *  with only state() and touched() in between (a lockstep without raises). The engine may run
   *  those steps ahead, at once (a process engine: one exchange for several steps); it may then
   *  refuse any other call until load(). Optional. */
  expectSteps?(n: number): void;
  /** Releases the engine (ends a child process). Idempotent. */
  close(): Promise<void>;
}
