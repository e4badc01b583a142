// Runs two engines side by side from the same state and compares the event and the full state
// after every step; returns the first divergence.
import type { Engine, EngineEvent } from "../contract/engine.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { ArchState } from "../contract/state.ts";
import { compareStates, describeEvent, unionRanges, type FieldDifference } from "./compare-state.ts";

export interface Divergence {
  /** 1-based step at which the engines first disagreed. */
  readonly step: number;
  readonly eventA: string;
  readonly eventB: string;
  readonly differences: readonly FieldDifference[];
}

export interface LockstepResult {
  readonly steps: number;
  readonly divergence: Divergence | null;
  /** The last event (both engines agreed on it when there is no divergence). */
  readonly last: EngineEvent | undefined;
}

const ENDS: ReadonlySet<EngineEvent["kind"]> = new Set(["shutdown", "unsupported", "memory-limit"]);

/**
 * `stopAt`, when given, ends the run (without a divergence) at a boundary whose state it accepts:
 * for states outside what both engines model alike (a known gap), not to hide a divergence.
 */
export function lockstep(
  a: Engine,
  b: Engine,
  state: ArchState,
  profile: ProfileName,
  maxSteps: number,
  stopAt?: (state: ArchState) => boolean,
): LockstepResult {
  a.load(state, profile);
  b.load(state, profile);
  let last: EngineEvent | undefined;
  for (let step = 1; step <= maxSteps; step++) {
    if (stopAt?.(a.state()) === true) return { steps: step - 1, divergence: null, last };
    const eventA = a.step();
    const eventB = b.step();
    const textA = describeEvent(eventA);
    const textB = describeEvent(eventB);
    const differences = compareStates(a.state(), b.state(), unionRanges(a.touched(), b.touched()));
    if (textA !== textB || differences.length > 0) return { steps: step, divergence: { step, eventA: textA, eventB: textB, differences }, last: eventA };
    last = eventA;
    // A halted CPU with nothing to wake it does not step again; shutdown and unsupported end the run.
    if (ENDS.has(eventA.kind)) break;
    if (eventA.kind === "halted" && !a.state().cpu.pendingNmi && a.state().cpu.pendingIrq === null) break;
  }
  return { steps: maxSteps, divergence: null, last };
}
