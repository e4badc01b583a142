// What the run machinery keeps beside the Machine: the engine's configuration and the report of the
// step in progress (where it started, what stopped it), shared by the engine/ modules as one object
// of one shape. Not a cache.
import type { Machine } from "../machine.ts";
import type { Insn } from "../insn.ts";
import type { Block } from "../blocks/block-cache.ts";
import { MAX_INSN } from "../decode.ts";
import * as outcomesModule from "./outcomes.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { R_RETIRED } = outcomesModule;

const EMPTY = new Uint8Array(0);

export class StepContext {
  /** The machine (replaced by every load()). */
  m: Machine;
  /** The engine's page budget (for the memory-limit report). */
  readonly maxPages: number;
  /** Compile hot blocks (off in uncached mode). */
  readonly compileBlocks: boolean;
  /** Reference mode: no decoded-block cache either (see ImplEngineOptions.uncached). */
  readonly uncached: boolean;
  /** Form traces of hot blocks (engine/trace.ts); off: every block returns to the run loop. */
  readonly traces: boolean;

  // ---- the last step, for its event ----
  /** RIP at the start of the step. */
  ripLo = 0;
  ripHi = 0;
  /** The unsupported instruction's bytes (R_UNSUP). */
  unsupportedBytes: Uint8Array = EMPTY;
  /** Why the step stopped the run (R_UNSUP, R_MEMLIMIT). */
  reason = "";
  /** The instruction the last instructionStep fetched (null: the fetch faulted), for step()'s
   *  event. */
  stepInsn: Insn | null = null;

  // ---- the step in progress ----
  /** fetch's result when it returned no block: the instruction to run uncached because it crosses
   *  a page end or the CS limit, or null after a fetch fault. */
  crossingInsn: Insn | null = null;
  /** Outcome of the last runBlock (R_RETIRED unless it stopped on something else). */
  blockOutcome = R_RETIRED;
  /** The block the last runBlock ended in (its trace may have run several: engine/trace.ts). */
  lastBlock: Block | null = null;
  /** Bytes of an instruction fetched across a page end. */
  readonly crossBuf = new Uint8Array(MAX_INSN);

  constructor(m: Machine, maxPages: number, compileBlocks: boolean, uncached: boolean, traces = compileBlocks) {
    this.m = m;
    this.traces = traces && compileBlocks;
    this.maxPages = maxPages;
    this.compileBlocks = compileBlocks;
    this.uncached = uncached;
  }
}

/** The reason reported when guest memory would exceed the page budget. */
export function memoryLimitReason(ctx: StepContext): string {
  return `guest physical memory would exceed ${ctx.maxPages} pages`;
}
