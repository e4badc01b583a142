// ImplEngine: the optimized emulator behind the Engine interface (contract/engine.ts).
//
// The hot loop (run) reads top to bottom:
//   1. shutdown? stop.
//   2. an event deliverable at this boundary (single-step trap, NMI, IRQ)? deliver it (one step);
//      halted with nothing deliverable? stop (`hlt`).          — engine/boundary.ts
//   3. step budget exhausted? stop (`limit`).
//   4. otherwise, when TF = 0 and no shadow is active: follow the last block's successor link
//      (engine/chain.ts) or fetch — translate RIP through the TLB, find or decode the block at
//      that frame (engine/fetch.ts) — and run it compiled or interpreted, never past the step
//      budget, delivering the fault or software interrupt it stopped on (engine/run-block.ts);
//      an instruction that is not in a block (it crosses a page end) or a fetch fault is one step.
//   5. with TF = 1 or a shadow active: one instruction with its bookkeeping (engine/execute.ts).
// step() runs the same machinery for exactly one step and describes it as an EngineEvent.
import type { ArchState } from "../contract/state.ts";
import { PAGE_BUDGET } from "../contract/limits.ts";
import type { ProfileName } from "../contract/profile.ts";
import type {
  Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest, DeliverySource, StepInstruction,
} from "../contract/engine.ts";
import { Machine } from "./machine.ts";
import * as constsModule from "./consts.ts";
import type { Block } from "./blocks/block-cache.ts";
import { StepContext, memoryLimitReason } from "./engine/context.ts";
import * as outcomesModule from "./engine/outcomes.ts";
import { big, loadState, machineState, touchedRanges } from "./engine/state.ts";
import { boundaryEvent, deliverBoundary } from "./engine/boundary.ts";
import { fetch } from "./engine/fetch.ts";
import { deliverFetchFault, executeInstruction, instructionStep } from "./engine/execute.ts";
import { runBlock } from "./engine/run-block.ts";
import { chainedSuccessor, linkSuccessor } from "./engine/chain.ts";
import { jumpToTick, takeConsole, tickCouldWake } from "./devices.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_BYTES, RIP_HI, RIP_LO, SHADOW_NONE, TF, VEC_MEMLIMIT } = constsModule;
const {
  BOUNDARY_HALTED, BOUNDARY_NONE, R_DELIVERED, R_HALTED, R_IO, R_MEMLIMIT, R_RETIRED, R_SHUTDOWN, R_UNSUP,
} = outcomesModule;

export interface ImplEngineOptions {
  /** Cap on guest physical memory in bytes (rounded to 4 KiB pages); default the contract's page
   *  budget (contract/limits.ts PAGE_BUDGET: 256 MiB). */
  readonly maxMemoryBytes?: number;
  /** Compile hot blocks to JavaScript (default true). Off: interpret every instruction. */
  readonly compile?: boolean;
  /** Run chains of hot compiled blocks as one function (engine/trace.ts; default true with
   *  `compile`). Off: each block returns to the run loop (the tests compare both). */
  readonly traces?: boolean;
  /** Reference mode for testing the caches: no TLB, no not-present cache, no decoded-block
   *  cache, no system-table caches, no compiler — every access walks the page tables and every
   *  instruction is decoded when executed. Default false. */
  readonly uncached?: boolean;
}

/** EngineEvent sources by consts.ts EV_* (INT1 is reported as an exception, SWINT-04). */
const SOURCE_NAMES: DeliverySource[] = ["exception", "exception", "software", "external", "nmi", "exception"];

export class ImplEngine implements Engine {
  /** Made with the first machine: load()'s, or an empty one if the engine is used before load()
   *  (a Machine allocates its page pool, and nearly every engine is loaded as soon as it is made). */
  private context: StepContext | null = null;
  private readonly maxPages: number;
  private readonly uncached: boolean;
  private readonly compileBlocks: boolean;
  private readonly traces: boolean;

  constructor(opts: ImplEngineOptions = {}) {
    const bytes = opts.maxMemoryBytes ?? PAGE_BUDGET * PAGE_BYTES;
    if (!Number.isFinite(bytes) || bytes < PAGE_BYTES) throw new RangeError("maxMemoryBytes: must be at least 4096");
    this.maxPages = Math.floor(bytes / PAGE_BYTES);
    this.uncached = opts.uncached ?? false;
    this.compileBlocks = (opts.compile ?? true) && !this.uncached;
    this.traces = opts.traces ?? true;
  }

  private withMachine(m: Machine): StepContext {
    return new StepContext(m, this.maxPages, this.compileBlocks, this.uncached, this.traces);
  }

  private get ctx(): StepContext {
    return (this.context ??= this.withMachine(new Machine({ maxPages: this.maxPages, uncached: this.uncached })));
  }

  /** The machine (tests and benchmarks only). */
  get machine(): Machine {
    return this.ctx.m;
  }

  // =============================================================================================
  // load / state (engine/state.ts)
  // =============================================================================================

  load(state: ArchState, profile: ProfileName): void {
    const m = loadState(state, profile, this.maxPages, this.uncached);
    if (this.context === null) this.context = this.withMachine(m);
    else this.context.m = m;
  }

  state(memory?: readonly PhysicalRange[]): ArchState {
    return machineState(this.ctx.m, memory);
  }

  peekState(memory: readonly PhysicalRange[]): ArchState {
    return machineState(this.ctx.m, memory, true);
  }

  raise(event: RaiseRequest): void {
    if ("irq" in event) {
      const v = event.irq;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError("irq: expected a vector 0–255");
      this.ctx.m.pendingIrq = v;
    } else if (event.nmi === true) this.ctx.m.pendingNmi = true;
  }

  touched(): readonly PhysicalRange[] {
    return touchedRanges(this.ctx.m);
  }

  takeConsole(): Uint8Array {
    return takeConsole(this.ctx.m);
  }

  // =============================================================================================
  // step
  // =============================================================================================

  step(): EngineEvent {
    const ctx = this.ctx;
    const m = ctx.m;
    const rip = () => big(m.regs[RIP_LO]!, m.regs[RIP_HI]!);
    if (m.exitValue >= 0) return { kind: "exited", rip: rip(), value: m.exitValue };
    if (m.shutdown) return { kind: "shutdown", rip: rip() };
    let ev = boundaryEvent(m);
    // Halted with nothing to deliver: virtual time may jump to the timer's tick (devices.ts).
    if (ev === BOUNDARY_HALTED && jumpToTick(m)) ev = boundaryEvent(m);
    if (ev === BOUNDARY_HALTED) return { kind: "halted", rip: rip() };
    if (ev !== BOUNDARY_NONE) return this.describe(deliverBoundary(ctx, ev), undefined);
    const r = instructionStep(ctx);
    // The instruction's bytes, for traces (contract: StepInstruction): a copy of the decoder's.
    const i = ctx.stepInsn;
    return this.describe(r, i === null ? { bytes: new Uint8Array(0), length: 0 } : { bytes: i.bytes.slice(), length: i.len });
  }

  /** The step's event; with `instruction` (an instruction step) as its last field. Each kind is
   *  one object literal (no spread of a finished event: a step is the hot path of lockstep). */
  private describe(r: number, instruction: StepInstruction | undefined): EngineEvent {
    const ctx = this.ctx;
    const m = ctx.m;
    const rip = big(ctx.ripLo, ctx.ripHi);
    switch (r) {
      case R_RETIRED:
        return instruction === undefined ? { kind: "retired", rip } : { kind: "retired", rip, instruction };
      case R_DELIVERED: {
        const vector = m.deliveredVector;
        const errorCode = m.deliveredErrorCode < 0 ? undefined : m.deliveredErrorCode >>> 0;
        const source = SOURCE_NAMES[m.deliveredSource]!;
        return instruction === undefined
          ? { kind: "delivered", rip, vector, errorCode, source }
          : { kind: "delivered", rip, vector, errorCode, source, instruction };
      }
      case R_HALTED:
        return instruction === undefined ? { kind: "halted", rip } : { kind: "halted", rip, instruction };
      case R_IO: {
        const direction = m.ioDirection === 1 ? "out" : "in";
        const size = m.ioSize as 1 | 2 | 4;
        const value = BigInt(m.ioValue >>> 0);
        return instruction === undefined
          ? { kind: "io", rip, direction, port: m.ioPort, size, value }
          : { kind: "io", rip, direction, port: m.ioPort, size, value, instruction };
      }
      case R_SHUTDOWN:
        return instruction === undefined ? { kind: "shutdown", rip } : { kind: "shutdown", rip, instruction };
      case R_UNSUP: {
        const bytes = ctx.unsupportedBytes.slice();
        return instruction === undefined
          ? { kind: "unsupported", rip, bytes, reason: ctx.reason }
          : { kind: "unsupported", rip, bytes, reason: ctx.reason, instruction };
      }
      default:
        return instruction === undefined
          ? { kind: "memory-limit", rip, reason: ctx.reason }
          : { kind: "memory-limit", rip, reason: ctx.reason, instruction };
    }
  }

  // =============================================================================================
  // run: the hot loop
  // =============================================================================================

  run(maxSteps: number): EngineStop {
    if (!Number.isFinite(maxSteps) || maxSteps < 0) throw new RangeError("maxSteps: expected a number >= 0");
    const limit = Math.floor(maxSteps);
    const ctx = this.ctx;
    const m = ctx.m;
    let steps = 0;
    /** The block that ran last (its successor link is tried before a full fetch). */
    let prev: Block | null = null;
    for (;;) {
      // 1. Shutdown, or the exit port written.
      if (m.shutdown) return { reason: "shutdown", steps };
      if (m.exitValue >= 0) return { reason: "exit", steps, exitValue: m.exitValue };
      // 2. An event deliverable at this boundary (engine/boundary.ts), or HLT with none — unless
      //    virtual time can jump to a timer tick that wakes the CPU (devices.ts).
      if (m.pendingDebugTrap || m.pendingNmi || m.pendingIrq >= 0 || m.halted) {
        let ev = boundaryEvent(m);
        if (ev === BOUNDARY_HALTED) {
          if (!tickCouldWake(m)) return { reason: "hlt", steps };
          if (steps >= limit) return { reason: "limit", steps };
          jumpToTick(m);
          ev = boundaryEvent(m);
          if (ev === BOUNDARY_HALTED) return { reason: "hlt", steps };
        }
        if (ev !== BOUNDARY_NONE) {
          if (steps >= limit) return { reason: "limit", steps };
          const r = deliverBoundary(ctx, ev);
          steps++;
          if (r === R_MEMLIMIT) return this.memoryLimitStop(steps - 1);
          continue;
        }
      }
      // 3. The step budget; no run past the timer's tick either (engine/run-block.ts).
      if (steps >= limit) return { reason: "limit", steps };
      let budget = limit - steps;
      if (m.timerCounting && m.timerCountdown < budget) budget = m.timerCountdown;
      // 4. A block: chained or fetched (blocks run only where no per-instruction event bookkeeping
      //    is needed); else the one instruction crossing a page end, or the fetch fault.
      if ((m.flags & TF) === 0 && m.shadow === SHADOW_NONE) {
        let b: Block | null = prev === null ? null : chainedSuccessor(m, prev);
        if (b === null) {
          b = fetch(ctx);
          if (b !== null && prev !== null) linkSuccessor(prev, b);
        }
        if (b !== null) {
          steps += runBlock(ctx, b, budget);
          const r = ctx.blockOutcome;
          if (r === R_UNSUP) return this.unsupportedStop(steps);
          if (r === R_MEMLIMIT) return this.memoryLimitStop(steps);
          prev = ctx.lastBlock;
          continue;
        }
        prev = null;
        let r: number;
        // An instruction crossing a page end is never cached, so its frames are not F_CODE and a
        // string iteration writing over it would not be noticed: one iteration per call.
        if (ctx.crossingInsn !== null) r = executeInstruction(ctx, ctx.crossingInsn);
        else {
          // fetch fault
          if (m.faultVector === VEC_MEMLIMIT) {
            ctx.reason = memoryLimitReason(ctx);
            return this.memoryLimitStop(steps);
          }
          r = deliverFetchFault(ctx, m.regs[RIP_LO]!, m.regs[RIP_HI]!);
        }
        if (r === R_UNSUP) return this.unsupportedStop(steps);
        if (r === R_MEMLIMIT) return this.memoryLimitStop(steps);
        steps++;
        continue;
      }
      // 5. TF = 1 or a shadow active: one instruction with its bookkeeping (engine/execute.ts).
      prev = null;
      const r = instructionStep(ctx);
      if (r === R_UNSUP) return this.unsupportedStop(steps);
      if (r === R_MEMLIMIT) return this.memoryLimitStop(steps);
      steps++;
    }
  }

  private unsupportedStop(steps: number): EngineStop {
    const ctx = this.ctx;
    return {
      reason: "unsupported", steps,
      event: { kind: "unsupported", rip: big(ctx.ripLo, ctx.ripHi), bytes: ctx.unsupportedBytes.slice(), reason: ctx.reason },
    };
  }

  private memoryLimitStop(steps: number): EngineStop {
    const ctx = this.ctx;
    return {
      reason: "memory-limit", steps,
      event: { kind: "memory-limit", rip: big(ctx.ripLo, ctx.ripHi), reason: ctx.reason },
    };
  }
}
