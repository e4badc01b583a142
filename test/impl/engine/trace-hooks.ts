// What the trace tests share (trace.test.ts, trace-transitions.test.ts): whether impl formed a
// trace, and that a hook run between two round trips shows as it does on spec/.
import { expect } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { stateText } from "../helpers.ts";

/** Whether impl formed a trace on `state` within `steps` steps (looked for every few steps: a
 *  trace dies with its blocks when the hook writes their code). */
export function traceFormed(state: ArchState, steps: number): boolean {
  const e = new ImplEngine();
  e.load(state, "intel");
  for (let done = 0; done < steps; done += 10) {
    e.run(10);
    if (e.machine.blocksBySlot.some((map) => map !== undefined && [...map.values()].some((b) => b.trace !== null))) return true;
  }
  return false;
}

/** A hook run between two round trips (`hooked`) must show as it does on spec/: impl formed its
 *  trace before the hook (within `formedWithin` steps), agrees with spec/ over `steps` steps,
 *  passes `check`, and ends elsewhere than the run without the hook (else the test would not see a
 *  stale trace). */
export function expectHookSeen(hooked: ArchState, base: ArchState, formedWithin: number, steps: number, check: (s: ArchState) => void): void {
  expect(traceFormed(hooked, formedWithin)).toBe(true);
  const out = expectAgreesWithSpec(hooked, steps);
  check(out.state);
  expect(stateText(out.state)).not.toBe(baseEnd(base, steps));
}

/** The run without the hook (every configuration judged against spec/ the first time it is
 *  asked for), by base state and step count: the hook tests of a group share one base state, and
 *  its run is the same for each of them. */
const baseEnds = new WeakMap<ArchState, Map<number, string>>();
function baseEnd(base: ArchState, steps: number): string {
  let bySteps = baseEnds.get(base);
  if (bySteps === undefined) baseEnds.set(base, (bySteps = new Map()));
  let text = bySteps.get(steps);
  if (text === undefined) bySteps.set(steps, (text = stateText(expectAgreesWithSpec(base, steps, "intel", { lockstep: false }).state)));
  return text;
}
