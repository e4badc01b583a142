// impl/ judged against spec/ (the reference), not only against its own configurations: one state
// run in lockstep (spec through the runner, impl step by step: events and full states compared
// after every step), then impl's run() in every cache configuration (uncached, interpreted,
// compiled) must end in spec's final state. For directed regressions where a cache or a fast path
// could give an answer that differs from the architecture's.
import { expect } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { compareStates, unionRanges } from "../../contract/compare.ts";
import { lockstep } from "../../conformance/lockstep.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import type { EngineStop } from "../../contract/engine.ts";
import { CONFIGS } from "./helpers.ts";

function stopFacts(config: string, s: EngineStop): object {
  return { config, reason: s.reason, steps: s.steps, exitValue: s.exitValue, event: s.event?.kind, rip: s.event?.rip };
}

/** Runs `state` for `steps` steps on spec and on impl (lockstep, then every configuration's run());
 *  fails the test on any difference. Returns spec's final state and stop. */
export function expectAgreesWithSpec(state: ArchState, steps: number, profile: ProfileName = "intel"): { state: ArchState; reason: string } {
  const d = lockstep(new SpecEngine(), new ImplEngine(), state, profile, steps).divergence;
  expect(d, d === null ? "" : `step ${d.step}: spec ${d.eventA} / impl ${d.eventB}\n` +
    d.differences.map((x) => `  ${x.field}: spec ${x.a}, impl ${x.b}`).join("\n")).toBeNull();
  const spec = new SpecEngine();
  spec.load(state, profile);
  const specStop = spec.run(steps);
  const specState = spec.state();
  for (const c of CONFIGS) {
    const impl = new ImplEngine(c.opts);
    impl.load(state, profile);
    const stop = impl.run(steps);
    // The stop as data (reason, steps, exit value, the stopping event's kind and RIP); the free
    // text (`detail`, the event's `reason`) and the rules an engine reports are engine-specific.
    expect(stopFacts(c.name, stop)).toEqual(stopFacts(c.name, specStop));
    const diff = compareStates(specState, impl.state(), { rule: "exact", memory: unionRanges(spec.touched(), impl.touched()) }).differences;
    expect(diff.map((x) => `${c.name}: ${x.field}: spec ${x.a}, impl ${x.b}`)).toEqual([]);
  }
  return { state: specState, reason: specStop.reason };
}
