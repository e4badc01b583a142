// The result of a campaign as data: what `conform --json` prints, what a shard writes for
// `conform merge`, and what reports are made from (`ringspec-conform/1`). Read back (merge) it is
// external input: validated with zod.
import { z } from "zod";
import { allRules } from "../../spec/index.ts";
import { TRANSITION_RULE_IDS } from "./coverage.ts";
import type { CampaignPlan, CampaignRun } from "./campaign.ts";
import type { CaseOutcome } from "./run.ts";

export const RESULT_FORMAT = "ringspec-conform/1";

const Outcome = z.object({
  index: z.number().int().min(0),
  family: z.string().max(100),
  status: z.enum(["pass", "fail", "expected", "error", "skipped"]),
  steps: z.number().int().min(0),
  rule: z.string().max(200).optional(),
  why: z.string().max(10_000).optional(),
  signature: z.string().max(20_000).optional(),
  step: z.number().int().min(0).optional(),
  side: z.enum(["a", "b"]).optional(),
  error_kind: z.string().max(100).optional(),
  reason: z.string().max(10_000).optional(),
  size: z.number().int().min(0),
  unit: z.string().max(40),
  replay: z.string().max(10_000).optional(),
  gap: z.string().max(100).optional(),
  // Checked loosely: a merge only carries it over.
  detail: z.record(z.string(), z.unknown()).optional(),
});

export const ResultJson = z.object({
  format: z.literal(RESULT_FORMAT),
  engines: z.object({ a: z.string(), b: z.string() }),
  /** The campaign, as given: seed, families, profile, cases or time, shard. */
  campaign: z.object({
    seed: z.number().int(),
    families: z.array(z.string()).min(1),
    profile: z.enum(["intel", "amd", "both"]),
    runs: z.number().int().min(0).nullable(),
    time_s: z.number().min(0).nullable(),
    shard: z.object({ index: z.number().int().min(1), count: z.number().int().min(1) }),
    workers: z.number().int().min(1),
    every: z.number().int().min(1),
    comparison: z.enum(["exact", "architectural", "loaded"]),
    expected: z.array(z.object({ rule: z.string(), reason: z.string() })),
  }),
  cases: z.number().int().min(0),
  passed: z.number().int().min(0),
  failed: z.number().int().min(0),
  divergences: z.number().int().min(0),
  errors: z.number().int().min(0),
  expected_deviations: z.number().int().min(0),
  skipped: z.number().int().min(0),
  distinct_signatures: z.number().int().min(0),
  steps_compared: z.number().int().min(0),
  elapsed_s: z.number().min(0),
  cases_per_s: z.number().min(0),
  steps_per_s: z.number().min(0),
  interrupted: z.boolean(),
  restarts: z.object({ a: z.number().int().min(0), b: z.number().int().min(0) }),
  not_compared: z.array(z.string()),
  coverage: z
    .object({
      hit: z.array(z.string()),
      rules: z.number().int().min(0),
      transition_rules: z.number().int().min(0),
      transition_hit: z.number().int().min(0),
      transition_missed: z.array(z.string()),
    })
    .nullable(),
  /** Every case that did not pass (pass cases are only counted). */
  outcomes: z.array(Outcome),
  /** Case indices that passed, as [first, last] runs (merge recounts from them). */
  passed_ranges: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])),
});

export type CampaignResult = z.output<typeof ResultJson>;

/** Index runs of the passing cases. */
function passedRanges(outcomes: readonly CaseOutcome[]): [number, number][] {
  const out: [number, number][] = [];
  for (const o of outcomes) {
    if (o.status !== "pass") continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === o.index - 1) last[1] = o.index;
    else out.push([o.index, o.index]);
  }
  return out;
}

export interface ResultMeta {
  readonly expectedReasons: ReadonlyMap<string, string>;
  readonly notCompared: readonly string[];
  readonly replay: (outcome: CaseOutcome) => string;
}

function coverageOf(hit: readonly string[] | null): CampaignResult["coverage"] {
  if (hit === null) return null;
  const set = new Set(hit);
  const transitions = TRANSITION_RULE_IDS.filter((id) => set.has(id));
  return {
    hit: [...hit],
    rules: allRules().length,
    transition_rules: TRANSITION_RULE_IDS.length,
    transition_hit: transitions.length,
    transition_missed: TRANSITION_RULE_IDS.filter((id) => !set.has(id)),
  };
}

/** The counts of a set of outcomes. */
function counts(outcomes: readonly Pick<CaseOutcome, "status" | "signature" | "steps">[], passedCount: number) {
  const n = (s: string) => outcomes.filter((o) => o.status === s).length;
  const divergences = n("fail");
  const errors = n("error");
  return {
    passed: passedCount,
    failed: divergences + errors,
    divergences,
    errors,
    expected_deviations: n("expected"),
    skipped: n("skipped"),
    distinct_signatures: new Set(outcomes.filter((o) => o.status === "fail").map((o) => o.signature)).size,
  };
}

export function campaignResult(plan: CampaignPlan, run: CampaignRun, meta: ResultMeta): CampaignResult {
  const stepsCompared = run.outcomes.reduce((n, o) => n + o.steps, 0);
  const seconds = run.casesMs / 1000;
  const failing = run.outcomes.filter((o) => o.status !== "pass").map((o) => ({ ...o, ...(o.status === "fail" || o.status === "expected" || o.status === "error" ? { replay: meta.replay(o) } : {}) }));
  return {
    format: RESULT_FORMAT,
    engines: run.engineNames,
    campaign: {
      seed: plan.seed,
      families: [...plan.families],
      profile: plan.profile ?? "both",
      runs: plan.runs ?? null,
      time_s: plan.timeMs === undefined ? null : plan.timeMs / 1000,
      shard: plan.shard,
      workers: plan.workers,
      every: plan.every,
      comparison: plan.rule,
      expected: [...plan.expected, ...(plan.gaps ?? [])].map((rule) => ({ rule, reason: meta.expectedReasons.get(rule) ?? "" })),
    },
    cases: run.outcomes.length,
    ...counts(run.outcomes, run.outcomes.filter((o) => o.status === "pass").length),
    steps_compared: stepsCompared,
    elapsed_s: Math.round(run.elapsedMs * 1000) / 1e6,
    cases_per_s: seconds > 0 ? Math.round((run.outcomes.length / seconds) * 10) / 10 : 0,
    steps_per_s: seconds > 0 ? Math.round(stepsCompared / seconds) : 0,
    interrupted: run.interrupted,
    restarts: run.restarts,
    not_compared: [...meta.notCompared],
    coverage: coverageOf(run.coverage),
    outcomes: failing as CampaignResult["outcomes"],
    passed_ranges: passedRanges(run.outcomes),
  };
}

// ------------------------------------------------------------------------------------------------
// Merging shard results

export class MergeError extends Error {}

/** Shard results of one campaign into one result. They must agree on engines and campaign (but
 *  the shard); cases are combined by index (a case seen twice counts once). */
export function mergeResults(parts: readonly { file: string; result: CampaignResult }[]): CampaignResult {
  const first = parts[0];
  if (first === undefined) throw new MergeError("merge: no results given");
  const key = (r: CampaignResult) => JSON.stringify({ engines: r.engines, c: { ...r.campaign, shard: null, workers: null, runs: null, time_s: null } });
  for (const p of parts) if (key(p.result) !== key(first.result)) throw new MergeError(`${p.file}: not the same campaign as ${first.file} (engines, seed, families, profile, comparison or expectations differ)`);
  const byIndex = new Map<number, CampaignResult["outcomes"][number]>();
  const passed = new Set<number>();
  for (const p of parts) {
    for (const o of p.result.outcomes) if (!byIndex.has(o.index)) byIndex.set(o.index, o);
    for (const [lo, hi] of p.result.passed_ranges) for (let i = lo; i <= hi; i++) passed.add(i);
  }
  const outcomes = [...byIndex.values()].filter((o) => !passed.has(o.index)).sort((x, y) => x.index - y.index);
  const hit = new Set<string>();
  let anyCoverage = false;
  for (const p of parts) if (p.result.coverage !== null) {
    anyCoverage = true;
    p.result.coverage.hit.forEach((x) => hit.add(x));
  }
  const stepsCompared = parts.reduce((n, p) => n + p.result.steps_compared, 0);
  // Shards run side by side (on other machines): the campaign took as long as the slowest.
  const elapsed = Math.max(...parts.map((p) => p.result.elapsed_s));
  const caseSeconds = Math.max(...parts.map((p) => (p.result.cases_per_s > 0 ? p.result.cases / p.result.cases_per_s : 0)));
  const cases = passed.size + outcomes.length;
  const indices = [...passed].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const i of indices) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === i - 1) last[1] = i;
    else ranges.push([i, i]);
  }
  const shards = new Set(parts.map((p) => `${p.result.campaign.shard.index}/${p.result.campaign.shard.count}`));
  return {
    ...first.result,
    campaign: {
      ...first.result.campaign,
      shard: { index: 1, count: 1 },
      runs: first.result.campaign.runs,
      workers: parts.reduce((n, p) => n + p.result.campaign.workers, 0),
    },
    cases,
    ...counts(outcomes, passed.size),
    steps_compared: stepsCompared,
    elapsed_s: elapsed,
    cases_per_s: caseSeconds > 0 ? Math.round((cases / caseSeconds) * 10) / 10 : 0,
    steps_per_s: caseSeconds > 0 ? Math.round(stepsCompared / caseSeconds) : 0,
    interrupted: parts.some((p) => p.result.interrupted) || shards.size < first.result.campaign.shard.count,
    restarts: { a: parts.reduce((n, p) => n + p.result.restarts.a, 0), b: parts.reduce((n, p) => n + p.result.restarts.b, 0) },
    not_compared: [...new Set(parts.flatMap((p) => p.result.not_compared))],
    coverage: anyCoverage ? coverageOf([...hit].sort()) : null,
    outcomes,
    passed_ranges: ranges,
  };
}
