// A campaign: cases drawn from the families by (seed, index), run in lockstep on two engines, in
// this thread or in worker threads (`workers`), for a number of cases or until a deadline, over
// the whole campaign or one shard of it; then the failures triaged: each grouped under the rule
// where the engines part ways, and the first few of each rule (by case index, so the choice does
// not depend on how many threads ran) shrunk to a minimal case.
//
// The cases of a run do not depend on the threads: case i is a function of (seed, families, i),
// each thread takes the next index from a shared counter, and results are ordered by index. With
// `runs` the set of cases is fixed, so one thread and N threads give identical results; with a
// deadline the set is a prefix of the same sequence.
import { Worker } from "node:worker_threads";
import { recordImpliedRules } from "../../spec/rule-catalogue.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ComparisonRule } from "../../contract/compare.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { engineSource, type EngineChoice } from "./engines.ts";
import { familyByName, type Family } from "./families.ts";
import { shardCase } from "./cases.ts";
import { gapByName } from "./gaps.ts";
import { EngineHolder, failureDetail, runCase, type CaseOutcome, type CaseSettings } from "./run.ts";

export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
}

/** What a campaign is: plain data (it is sent to worker threads as is). */
export interface CampaignPlan {
  readonly a: EngineChoice;
  readonly b: EngineChoice;
  readonly seed: number;
  readonly families: readonly string[];
  readonly profile: ProfileName | undefined;
  /** Cases in the whole campaign (all shards together); or undefined with `timeMs`. */
  readonly runs: number | undefined;
  readonly timeMs: number | undefined;
  readonly shard: Shard;
  readonly workers: number;
  readonly every: number;
  readonly rule: ComparisonRule;
  readonly caseTimeoutMs: number;
  readonly expected: readonly string[];
  /** Known gaps expected (conformance/campaign/gaps.ts), by name. */
  readonly gaps?: readonly string[];
  /** Failures shrunk per rule (the first ones by case index); 0: none. */
  readonly shrinkPerRule: number;
  readonly shrinkRuns: number;
  readonly shrinkMs: number;
  /** Only these case indices (a replay). */
  readonly only?: readonly number[];
}

export interface CampaignProgress {
  readonly done: number;
  readonly total: number | undefined;
  readonly failed: number;
  readonly steps: number;
  readonly phase: "cases" | "shrinking";
}

export interface CampaignRun {
  /** Every case's outcome, in index order (failures with `detail` when they were shrunk). */
  readonly outcomes: readonly CaseOutcome[];
  /** Rule IDs the spec exercised (when spec is one of the engines), implied rules included. */
  readonly coverage: readonly string[] | null;
  readonly elapsedMs: number;
  /** Time spent running cases (without shrinking): what cases/s is measured over. */
  readonly casesMs: number;
  readonly interrupted: boolean;
  readonly restarts: { readonly a: number; readonly b: number };
  readonly engineNames: { readonly a: string; readonly b: string };
}

export interface CampaignControl {
  readonly onProgress?: (p: CampaignProgress) => void;
  /** Engines already open (e.g. by a start-up check), used by this thread instead of new ones. */
  readonly engines?: { readonly a?: AsyncEngine; readonly b?: AsyncEngine };
  /** Set to stop the campaign: cases in flight finish, no new one starts, nothing is shrunk. */
  readonly stopped?: { value: boolean };
}

export function caseSettings(plan: CampaignPlan): CaseSettings {
  const families = plan.families.map((name) => {
    const f = familyByName(name);
    if (f === undefined) throw new Error(`no family called ${JSON.stringify(name)}`);
    return f;
  });
  return {
    seed: plan.seed,
    families: families as readonly Family[],
    profile: plan.profile,
    every: plan.every,
    rule: plan.rule,
    timeoutMs: plan.caseTimeoutMs,
    expected: new Set(plan.expected),
    gaps: (plan.gaps ?? []).map((name) => {
      const g = gapByName(name);
      if (g === undefined) throw new Error(`no known gap called ${JSON.stringify(name)}`);
      return g;
    }),
    shrinkRuns: plan.shrinkRuns,
    shrinkMs: plan.shrinkMs,
  };
}

/** How many cases of the campaign fall in the shard. */
export function shardSize(runs: number, shard: Shard): number {
  return Math.max(0, Math.ceil((runs - (shard.index - 1)) / shard.count));
}

/** The case indices a thread works through: the n-th case of the shard, n from the counter. */
export function nextIndex(plan: CampaignPlan, n: number, deadline: number | undefined): number | undefined {
  if (plan.only !== undefined) return plan.only[n];
  if (plan.runs !== undefined && n >= shardSize(plan.runs, plan.shard)) return undefined;
  if (deadline !== undefined && Date.now() >= deadline) return undefined;
  return shardCase(n, plan.shard);
}

/** Holders for the two engines of one thread; spec records into `coverage`. */
export function holders(plan: CampaignPlan, coverage: Set<string>, open: CampaignControl["engines"] = {}): { a: EngineHolder; b: EngineHolder } {
  return {
    a: new EngineHolder(engineSource(plan.a, coverage), open.a),
    b: new EngineHolder(engineSource(plan.b, plan.a.name === "spec" ? undefined : coverage), open.b),
  };
}

const usesSpec = (plan: CampaignPlan) => plan.a.name === "spec" || plan.b.name === "spec";

// ------------------------------------------------------------------------------------------------
// Threads

/** Messages from a worker thread. */
export type WorkerMessage =
  | { readonly type: "outcome"; readonly outcome: CaseOutcome }
  | { readonly type: "done"; readonly coverage: readonly string[]; readonly restarts: { a: number; b: number }; readonly names: { a: string; b: string } }
  | { readonly type: "failed"; readonly message: string };

export interface WorkerData {
  readonly plan: CampaignPlan;
  readonly deadline: number | undefined;
  /** [0]: the shared case counter; [1]: 1 when the campaign is stopped. */
  readonly shared: SharedArrayBuffer;
}

/** The loop every thread runs (this one, or a worker's). */
export async function caseLoop(
  plan: CampaignPlan,
  deadline: number | undefined,
  shared: Int32Array,
  emit: (outcome: CaseOutcome) => void,
  /** This thread's engines and coverage (kept open for the caller); default: its own. */
  given?: { readonly a: EngineHolder; readonly b: EngineHolder; readonly coverage: Set<string> },
): Promise<{ coverage: Set<string>; restarts: { a: number; b: number }; names: { a: string; b: string } }> {
  const coverage = given?.coverage ?? new Set<string>();
  const settings = caseSettings(plan);
  const { a, b } = given ?? holders(plan, coverage);
  try {
    let yielded = Date.now();
    for (;;) {
      // In-process engines answer in microtasks: let timers and signals (Ctrl-C) run now and then.
      if (Date.now() - yielded > 25) {
        await new Promise((resolve) => setImmediate(resolve));
        yielded = Date.now();
      }
      if (Atomics.load(shared, 1) !== 0) break;
      const index = nextIndex(plan, Atomics.add(shared, 0, 1), deadline);
      if (index === undefined) break;
      emit(await runCase(a, b, settings, index));
    }
    const names = { a: (await a.get().catch(() => undefined))?.capabilities.name ?? a.source.name, b: (await b.get().catch(() => undefined))?.capabilities.name ?? b.source.name };
    return { coverage, restarts: { a: a.restarts, b: b.restarts }, names };
  } finally {
    if (given === undefined) {
      await a.close();
      await b.close();
    }
  }
}

const WORKER_URL = new URL("./worker-entry.js", import.meta.url);

function runWorker(data: WorkerData, onOutcome: (o: CaseOutcome) => void): Promise<Extract<WorkerMessage, { type: "done" }>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: data });
    let result: Extract<WorkerMessage, { type: "done" }> | undefined;
    worker.on("message", (m: WorkerMessage) => {
      if (m.type === "outcome") onOutcome(m.outcome);
      else if (m.type === "done") result = m;
      else reject(new Error(`a worker thread failed: ${m.message}`));
    });
    worker.on("error", (e) => reject(e));
    worker.on("exit", (code) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`a worker thread exited with status ${code} before it finished`));
    });
  });
}

// ------------------------------------------------------------------------------------------------
// The campaign

export async function runCampaign(plan: CampaignPlan, control: CampaignControl = {}): Promise<CampaignRun> {
  // The deadline is on Date.now, which the case loop compares it with; the figures' clock is
  // performance.now (fractional milliseconds, so that a few quick cases do not round to 0 ms and
  // give cases_per_s 0).
  const deadline = plan.timeMs === undefined ? undefined : Date.now() + plan.timeMs;
  const t0 = performance.now();
  const total = plan.only?.length ?? (plan.runs === undefined ? undefined : shardSize(plan.runs, plan.shard));
  const shared = new SharedArrayBuffer(8);
  const counters = new Int32Array(shared);
  const outcomes: CaseOutcome[] = [];
  let failed = 0;
  let steps = 0;
  const stopped = control.stopped;
  const watch = stopped === undefined ? undefined : setInterval(() => {
    if (stopped.value) Atomics.store(counters, 1, 1);
  }, 50);
  const record = (o: CaseOutcome) => {
    if (stopped?.value === true) Atomics.store(counters, 1, 1);
    outcomes.push(o);
    steps += o.steps;
    if (o.status === "fail" || o.status === "error") failed++;
    control.onProgress?.({ done: outcomes.length, total, failed, steps, phase: "cases" });
  };
  const coverage = new Set<string>();
  const restarts = { a: 0, b: 0 };
  let names = { a: plan.a.name, b: plan.b.name };
  // This thread's engines: the cases (one thread) and the shrinking (always).
  const main = { ...holders(plan, coverage, control.engines), coverage };
  try {
    if (plan.workers <= 1) {
      const r = await caseLoop(plan, deadline, counters, record, main);
      names = r.names;
    } else {
      const results = await Promise.all(Array.from({ length: plan.workers }, () => runWorker({ plan, deadline, shared }, record)));
      for (const r of results) {
        r.coverage.forEach((x) => coverage.add(x));
        restarts.a += r.restarts.a;
        restarts.b += r.restarts.b;
        names = r.names;
      }
    }
  } catch (e) {
    await main.a.close();
    await main.b.close();
    throw e;
  } finally {
    if (watch !== undefined) clearInterval(watch);
  }
  const casesMs = performance.now() - t0;
  outcomes.sort((x, y) => x.index - y.index);
  const interrupted = stopped?.value === true;

  // Coverage is that of the campaign's cases: shrinking's runs (which differ from shard to shard,
  // each shrinking its own first failures) must not change it.
  const casesCoverage = new Set(coverage);
  // Triage: the first failures of each rule, by case index, shrunk in this thread.
  if (!interrupted && plan.shrinkPerRule > 0) {
    const chosen: number[] = [];
    const perRule = new Map<string, number>();
    outcomes.forEach((o, i) => {
      if (o.status !== "fail") return;
      const n = perRule.get(o.rule!) ?? 0;
      if (n < plan.shrinkPerRule) chosen.push(i);
      perRule.set(o.rule!, n + 1);
    });
    const settings = caseSettings(plan);
    let done = 0;
    for (const i of chosen) {
      if (stopped?.value === true) break;
      outcomes[i] = await failureDetail(main.a, main.b, settings, outcomes[i]!, true);
      control.onProgress?.({ done: ++done, total: chosen.length, failed, steps, phase: "shrinking" });
    }
  }
  restarts.a += main.a.restarts;
  restarts.b += main.b.restarts;
  await main.a.close();
  await main.b.close();
  if (usesSpec(plan)) recordImpliedRules(casesCoverage);
  return {
    outcomes,
    coverage: usesSpec(plan) ? [...casesCoverage].sort() : null,
    elapsedMs: performance.now() - t0,
    casesMs,
    interrupted: stopped?.value === true,
    restarts,
    engineNames: names,
  };
}
