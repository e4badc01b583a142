// impl/ judged against spec/ (the reference), not only against its own configurations: one state
// run in lockstep (spec through the runner, impl step by step: events and full states compared
// after every step), then impl's run() in every cache configuration (uncached, interpreted,
// compiled) must end in spec's final state. For directed regressions where a cache or a fast path
// could give an answer that differs from the architecture's, and for the cache-invisibility tests.
// spec/ is used through the Engine interface only.
import { isDeepStrictEqual } from "node:util";
import { expect } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { ALL_MEMORY, type EngineStop, type PhysicalRange } from "../../contract/engine.ts";
import { compareStates, unionRanges } from "../../contract/compare.ts";
import { lockstep } from "../../conformance/lockstep.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine, type ImplEngineOptions } from "../../impl/engine.ts";
import { CONFIGS, outcome, type Outcome } from "./helpers.ts";

function stopFacts(config: string, s: EngineStop): object {
  return { config, reason: s.reason, steps: s.steps, exitValue: s.exitValue, event: s.event?.kind, rip: s.event?.rip };
}

export interface AgainstSpecOptions {
  /** Lockstep (every step's event and state) before the configurations' runs; default true. Random
   *  programs of thousands of steps compare final states only. */
  readonly lockstep?: boolean;
  /** Options added to every impl/ configuration (e.g. `maxMemoryBytes`). */
  readonly impl?: ImplEngineOptions;
  /** Random programs only: where spec/ stops as `unsupported` (an instruction it does not model
   *  yet), impl/ runs exactly as many steps and must be in spec's state there — the gap ends the
   *  comparison, as a campaign ends a case there (never used by directed tests). */
  readonly upToUnsupported?: boolean;
  /** A configuration's run of this state already made elsewhere (same options, `steps` steps), so
   *  that the same run is not made twice; undefined: run it here. */
  readonly madeRun?: (config: string, steps: number) => ImplRun | undefined;
}

/** One impl/ configuration's run: how it stopped, where, and what it wrote (implRun's state holds
 *  the engine's own pages, not copies: the engine is not used again). */
export interface ImplRun {
  readonly stop: EngineStop;
  readonly state: ArchState;
  readonly touched: readonly PhysicalRange[];
}

/** `state` run for `steps` steps on a fresh engine with `opts`. */
export function implRun(state: ArchState, steps: number, opts: ImplEngineOptions, profile: ProfileName = "intel"): ImplRun {
  const impl = new ImplEngine(opts);
  impl.load(state, profile);
  const stop = impl.run(steps);
  const touched = impl.touched();
  // The engine's own pages (Engine.peekState: views, valid until its next call, and nothing calls
  // it again), not a copy of every page: these runs are made by the thousand (hostile guests) and
  // their states are only compared.
  return { stop, state: impl.peekState(ALL_MEMORY), touched };
}

export interface AgainstSpecResult {
  readonly state: ArchState;
  readonly reason: string;
  readonly stop: EngineStop;
  /** False when the comparison ended at an instruction spec/ does not model (upToUnsupported). */
  readonly whole: boolean;
}

/** Runs `state` for `steps` steps on spec and on impl (lockstep, then every configuration's run());
 *  fails the test on any difference. Returns spec's final state and stop. */
export function expectAgreesWithSpec(state: ArchState, steps: number, profile: ProfileName = "intel", options: AgainstSpecOptions = {}): AgainstSpecResult {
  const spec = new SpecEngine();
  const withLockstep = options.lockstep !== false;
  // With lockstep and no cut, spec's stepped run in the lockstep is spec's run: its end (stop and
  // state, as the runner reports them) is what the configurations must reach, instead of a second
  // run of spec (spec's run() against its steps is spec's own test: test/spec/purity.test.ts).
  // A cut needs spec's stop first, to know where to end the lockstep.
  const ahead = !withLockstep || options.upToUnsupported === true;
  let specStop: EngineStop | undefined;
  let specState: ArchState | undefined;
  if (ahead) {
    spec.load(state, profile);
    specStop = spec.run(steps);
    specState = spec.state();
  }
  const cut = options.upToUnsupported === true && specStop?.reason === "unsupported";
  const compared = cut ? specStop!.steps : steps;
  if (withLockstep) {
    const run = lockstep(ahead ? new SpecEngine() : spec, new ImplEngine(options.impl), state, profile, compared);
    const d = run.divergence;
    // Here and below, expect only when the check fails (hostile guests make thousands of these
    // checks; vitest's expect costs more than the comparison): the same assertions.
    if (d !== null) expect(d, d === null ? "" : `step ${d.step}: spec ${d.eventA} / impl ${d.eventB}\n` +
      d.differences.map((x) => `  ${x.field}: spec ${x.a}, impl ${x.b}`).join("\n")).toBeNull();
    if (!ahead) {
      specStop = run.stop;
      specState = run.state;
    }
  }
  if (specStop === undefined || specState === undefined) throw new Error("expectAgreesWithSpec: spec did not run");
  for (const c of CONFIGS) {
    const run = options.madeRun?.(c.name, compared) ?? implRun(state, compared, { ...c.opts, ...options.impl }, profile);
    const stop = run.stop;
    // The stop as data (reason, steps, exit value, the stopping event's kind and RIP); the free
    // text (`detail`, the event's `reason`) and the rules an engine reports are engine-specific.
    if (cut) {
      if (stop.steps !== compared) expect({ config: c.name, steps: stop.steps }).toEqual({ config: c.name, steps: compared });
    } else {
      const got = stopFacts(c.name, stop), want = stopFacts(c.name, specStop);
      if (!isDeepStrictEqual(got, want)) expect(got).toEqual(want);
    }
    const diff = compareStates(specState, run.state, { rule: "exact", memory: unionRanges(spec.touched(), run.touched) }).differences;
    if (diff.length > 0) expect(diff.map((x) => `${c.name}: ${x.field}: spec ${x.a}, impl ${x.b}`)).toEqual([]);
  }
  return { state: specState, reason: specStop.reason, stop: specStop, whole: !cut };
}

/** helpers.runAll with spec/ as the judge: every impl/ configuration and spec/ agree (lockstep
 *  included); the outcome is spec's. */
export function runAllWithSpec(state: ArchState, steps: number, profile: ProfileName = "intel"): Outcome {
  const out = expectAgreesWithSpec(state, steps, profile);
  return outcome(out.stop, out.state);
}
