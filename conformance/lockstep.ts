// Two engines side by side from the same state: engine A runs through the runner
// (engines/runner.ts), and after each of its steps engine B takes the same step; the events and
// the full states (exact rule, memory either engine wrote) are compared with the one comparison
// (contract/compare.ts). Returns the first divergence. B hands out its state with only the memory
// compared (Engine.state's ranges): handing out every page after every step was most of a step;
// and without copying those pages where it can (Engine.peekState), as the state is dropped at once.
import { ALL_MEMORY, peekedState, type Engine, type EngineEvent, type EngineStop } from "../contract/engine.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { ArchState } from "../contract/state.ts";
import { compareEvents, compareStates, unionRanges, type ComparisonRule, type FieldDifference } from "../contract/compare.ts";
import { hex } from "../contract/hex.ts";
import { runEngine } from "../engines/runner.ts";
import { describeEvent } from "../trace/text.ts";
import { traceEvent } from "../trace/record.ts";

export interface Divergence {
  /** 1-based step at which the engines first disagreed. */
  readonly step: number;
  readonly eventA: string;
  readonly eventB: string;
  /** Event fields (`event.vector`, ...) first, then state fields; `a` is engine A's value. */
  readonly differences: readonly FieldDifference[];
}

export interface LockstepResult {
  /** Steps both engines took in agreement (up to the divergence, which is counted). */
  readonly steps: number;
  readonly divergence: Divergence | null;
  /** The last event (both engines agreed on it when there is no divergence). */
  readonly last: EngineEvent | undefined;
  /** How engine A's run ended (`stopped`: a divergence or `stopAt`). */
  readonly stop: EngineStop;
  /** Engine A's state where its run ended (at `stop`). */
  readonly state: ArchState;
}

export interface LockstepOptions {
  /** Ends the run (without a divergence) at a boundary whose state it accepts: for states outside
   *  what both engines model alike (a known gap), not to hide a divergence. The state it is given
   *  after a step is engine A's peeked view (Engine.peekState: its pages may be the engine's own),
   *  to be read during the call and not kept past it. */
  readonly stopAt?: (state: ArchState) => boolean;
  /** Default `exact` (two engines of this project share the model choices); `architectural` for
   *  an outside engine. */
  readonly rule?: ComparisonRule;
  /** Default 60 s. */
  readonly timeoutMs?: number;
}

/** One line for an event, with its address. */
export function eventLine(e: EngineEvent): string {
  return `${describeEvent(traceEvent(e))} at ${hex(e.rip)}`;
}

/** A and B from `state` for at most `maxSteps` steps of A. */
export function lockstep(a: Engine, b: Engine, state: ArchState, profile: ProfileName, maxSteps: number, options: LockstepOptions = {}): LockstepResult {
  const rule = options.rule ?? "exact";
  a.load(state, profile);
  b.load(state, profile);
  if (options.stopAt?.(state) === true) return { steps: 0, divergence: null, last: undefined, stop: { reason: "stopped", steps: 0 }, state: a.state() };
  let divergence: Divergence | null = null;
  let last: EngineEvent | undefined;
  const compare = (step: number, eventA: EngineEvent, eventB: EngineEvent, stateA: ArchState): boolean => {
    // B hands out only the memory the comparison reads: the pages either engine wrote.
    const written = unionRanges(a.touched(), b.touched());
    const differences = [
      ...compareEvents(eventA, eventB),
      ...compareStates(stateA, peekedState(b, written), { rule, memory: written }).differences,
    ];
    if (differences.length === 0) return true;
    divergence = { step, eventA: eventLine(eventA), eventB: eventLine(eventB), differences };
    return false;
  };
  // A's state after each step is read within the step and kept by nothing: its own pages where it
  // can hand them out without a copy (Engine.peekState, all memory; for spec this also leaves its
  // working copy its pages, where a state() after every step made the next step copy them again
  // and start its code-page memo over: most of a lockstep step's cost). So the runner's event hook,
  // not its state hook (which hands over copies of the states before and after every step).
  const after = (): ArchState => peekedState(a, ALL_MEMORY);
  const run = runEngine(a, {
    maxSteps,
    timeoutMs: options.timeoutMs ?? 60_000,
    onEvent: (step, event) => {
      const stateA = after();
      if (!compare(step, event, b.step(), stateA)) return "stop";
      last = event;
      if (options.stopAt?.(stateA) === true) return "stop";
    },
  });
  // A ended idle (halted with nothing to wake it, shut down, or exited): B must be idle too. Asking both
  // for one more step steps neither if so; a B that can still step shows as a divergence.
  if (divergence === null && (run.stop.reason === "hlt" || run.stop.reason === "shutdown" || run.stop.reason === "exit")) {
    const idleA = a.step();
    compare(run.stop.steps + 1, idleA, b.step(), a.state());
  }
  const steps = divergence === null ? run.stop.steps : (divergence as Divergence).step;
  return { steps, divergence, last, stop: run.stop, state: run.state };
}
