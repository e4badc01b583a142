// Checking a vector (vector README, "Running a vector" 4–5): run its initial state through an
// engine with the runner (engines/runner.ts), then compare the stop with `expected.exit` and the
// final state with every field of `expected` (contract/compare.ts, the one comparison). Any engine
// can be checked: an AsyncEngine (checkVector), or an in-process Engine (checkVectorSync).
import type { ExpectedParsed } from "../contract/schema.ts";
import type { LoadedVector } from "../contract/load.ts";
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { FINISHED_STOPS, type AsyncEngine, type Engine, type StopReason } from "../contract/engine.ts";
import { compareExpected, type FieldValue } from "../contract/compare.ts";
import { runAsyncEngine, runEngine, type RunResult } from "../engines/runner.ts";

/** One difference from `expected`: `exit` (the stop), or a field as the vector format names it
 *  (`regs.rax`, `sregs.cs.dpl`, `msrs.FS_BASE`, `memory@0x1ffd8`), valued as the format writes it. */
export interface Mismatch {
  readonly field: string;
  readonly expected: FieldValue;
  readonly got: FieldValue;
}

export interface VectorCheckOptions {
  /** Overrides the vector's profile. */
  readonly profile?: ProfileName;
  /** Overrides `limits.max_steps`. */
  readonly maxSteps?: number;
  readonly timeoutMs: number;
  /** Fields the engine cannot observe (EngineCapabilities.unobservable): not compared. */
  readonly unobservable?: readonly string[];
}

export interface VectorResult {
  readonly name: string;
  /** The stop matches `expected.exit` and every compared field matches. Fields in `notCompared`
   *  were not compared: a pass says nothing about them. */
  readonly passed: boolean;
  readonly profile: ProfileName;
  /** `error`: the engine threw (a bug in it); the message is in `detail`. */
  readonly exit: StopReason | "error";
  readonly expectedExit: ExpectedParsed["exit"];
  readonly steps: number | undefined;
  /** Why the engine could not finish (unsupported, memory-limit, timeout, error). */
  readonly detail: string | undefined;
  /** Field differences; `exit` first when the exit differs. Empty when the run did not finish. */
  readonly mismatches: readonly Mismatch[];
  /** Fields present in `expected` that the engine cannot observe. */
  readonly notCompared: readonly string[];
  readonly state: ArchState;
}

function limits(loaded: LoadedVector, options: VectorCheckOptions) {
  return {
    profile: options.profile ?? loaded.profile,
    maxSteps: options.maxSteps ?? loaded.vector.limits.max_steps,
    timeoutMs: options.timeoutMs,
  };
}

/** The verdict on a finished (or stopped) run of `loaded`. */
export function judgeVector(loaded: LoadedVector, profile: ProfileName, run: RunResult, options: Pick<VectorCheckOptions, "unobservable"> = {}): VectorResult {
  const expected = loaded.vector.expected;
  const { stop, state } = run;
  const finished = FINISHED_STOPS.includes(stop.reason);
  const mismatches: Mismatch[] = [];
  let notCompared: readonly string[] = [];
  if (finished) {
    if (stop.reason !== expected.exit) mismatches.push({ field: "exit", expected: expected.exit, got: stop.reason });
    const comparison = compareExpected(expected, state, options.unobservable === undefined ? {} : { unobservable: options.unobservable });
    for (const d of comparison.differences) mismatches.push({ field: d.field, expected: d.a, got: d.b });
    notCompared = comparison.notCompared;
  }
  return {
    name: loaded.vector.name,
    passed: finished && mismatches.length === 0,
    profile,
    exit: stop.reason,
    expectedExit: expected.exit,
    steps: stop.steps,
    detail: finished ? undefined : (stop.detail ?? stop.reason),
    mismatches,
    notCompared,
    state,
  };
}

function engineError(loaded: LoadedVector, profile: ProfileName, e: unknown): VectorResult {
  const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
  return {
    name: loaded.vector.name, passed: false, profile, exit: "error", expectedExit: loaded.vector.expected.exit,
    steps: undefined, detail: `engine threw: ${message}`, mismatches: [], notCompared: [], state: loaded.state,
  };
}

/** Loads `loaded` into `engine`, runs it and judges the result. An engine that throws (or
 *  rejects) fails the vector with exit `error`; the check goes on. */
export async function checkVector(loaded: LoadedVector, engine: AsyncEngine, options: VectorCheckOptions): Promise<VectorResult> {
  const { profile, maxSteps, timeoutMs } = limits(loaded, options);
  try {
    await engine.load(loaded.state, profile);
    const run = await runAsyncEngine(engine, { maxSteps, timeoutMs });
    return judgeVector(loaded, profile, run, { unobservable: options.unobservable ?? engine.capabilities.unobservable });
  } catch (e) {
    return engineError(loaded, profile, e);
  }
}

/** checkVector for an in-process engine. */
export function checkVectorSync(loaded: LoadedVector, engine: Engine, options: VectorCheckOptions): VectorResult {
  const { profile, maxSteps, timeoutMs } = limits(loaded, options);
  try {
    engine.load(loaded.state, profile);
    return judgeVector(loaded, profile, runEngine(engine, { maxSteps, timeoutMs }), options);
  } catch (e) {
    return engineError(loaded, profile, e);
  }
}
