// The Engine interface: what every executable machine offers to the conformance runner, the CLI
// and lockstep tests (spec/ through a thin adapter, impl/ directly). Types only.
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
 * What one step did. `rip` is the address of the instruction the step executed, or, for an event
 * taken at a boundary and for a halted CPU, the RIP at that boundary.
 */
export type EngineEvent =
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
  | { readonly kind: "memory-limit"; readonly rip: bigint; readonly reason: string };

export type EngineEventKind = EngineEvent["kind"];

/** Why `run` returned. `hlt` and `shutdown` are checked at every boundary before the step limit,
 *  so a run whose last allowed step executes HLT with nothing to wake it stops with `hlt`. */
export type EngineStopReason = "hlt" | "shutdown" | "limit" | "unsupported" | "memory-limit";

export interface EngineStop {
  readonly reason: EngineStopReason;
  /** Steps run (the unsupported or memory-limit attempt is not a step). */
  readonly steps: number;
  /** For "unsupported" and "memory-limit": the event that stopped the run. */
  readonly event?: Extract<EngineEvent, { kind: "unsupported" | "memory-limit" }>;
}

/** An external interrupt (one pending vector, the latest wins) or an NMI (latched). */
export type RaiseRequest = { readonly irq: number } | { readonly nmi: true };

/** Physical bytes [start, end). Engines may round ranges out (impl/ reports whole 4 KiB pages). */
export interface PhysicalRange {
  readonly start: bigint;
  readonly end: bigint;
}

export interface Engine {
  /** Replaces the whole machine (registers, memory, the run-time `cpu` block) and the profile. */
  load(state: ArchState, profile: ProfileName): void;
  /** One step; see EngineEvent. Never throws because of guest behaviour. */
  step(): EngineEvent;
  /** Steps until a stop; never more than `maxSteps` steps. */
  run(maxSteps: number): EngineStop;
  /** The full architectural state, including the run-time `cpu` block. */
  state(): ArchState;
  /** Makes an event pending (takes effect at the next boundary). */
  raise(event: RaiseRequest): void;
  /** Physical ranges written since `load`, in address order, merged where adjacent. */
  touched(): readonly PhysicalRange[];
}

// ------------------------------------------------------------------------------------------------
// The asynchronous boundary. An engine in another process (an emulator behind the JSON-lines
// protocol, QEMU, Bochs, a GDB stub) cannot answer synchronously; every consumer that may drive
// such an engine (conformance campaigns, `vectors check`, bench --against) speaks AsyncEngine.
// In-process engines satisfy it cheaply through `asAsync` (contract/async.ts).

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
   *  `cpu.pending_irq`; a trailing `*` matches a prefix), that the engine cannot set or read. */
  readonly unobservable: readonly string[];
}

/** The Engine interface across an asynchronous boundary, with batching: `steps(n)` and `run(n)`
 *  do many steps in one exchange so that per-step round trips do not dominate. */
export interface AsyncEngine {
  readonly capabilities: EngineCapabilities;
  load(state: ArchState, profile: ProfileName): Promise<void>;
  step(): Promise<EngineEvent>;
  /** Up to `n` steps; stops early after an event that ends a run (shutdown, unsupported,
   *  memory-limit, or halted with nothing to wake the CPU). Returns every step's event. */
  steps(n: number): Promise<readonly EngineEvent[]>;
  run(maxSteps: number): Promise<EngineStop>;
  state(): Promise<ArchState>;
  raise(event: RaiseRequest): Promise<void>;
  touched(): Promise<readonly PhysicalRange[]>;
  /** Releases the engine (ends a child process). Idempotent. */
  close(): Promise<void>;
}
