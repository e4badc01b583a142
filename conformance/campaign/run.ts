// Running one case of a campaign, and turning a failure into a report entry: the rule where the
// engines part ways, the case shrunk (fast-check's shrinking, then the family's own moves) to a
// minimal one that still fails at that rule, unexplained by any gap the campaign expects, and
// everything a report, a saved vector and the divergence page need. Results are plain JSON (they
// cross worker threads and shard files).
import { createHash } from "node:crypto";
import fc from "fast-check";
import type { AsyncEngine, EngineEvent } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { stateJsonWith, stateToJson, type ArchState } from "../../contract/state.ts";
import type { ComparisonRule, FieldDifference } from "../../contract/compare.ts";
import { hex } from "../../contract/hex.ts";
import { runAsyncEngine } from "../../engines/runner.ts";
import { traceRecord, type TraceRecord } from "../../trace/record.ts";
import { describeInstructionAt, pageReader } from "../../trace/disassemble.ts";
import { eventLine } from "../lockstep.ts";
import { attribute, UNATTRIBUTED } from "./attribution.ts";
import { caseId, caseValue, type CaseId } from "./cases.ts";
import type { BuiltCase, Family } from "./families.ts";
import { lockstepCase, type CaseDivergence, type CaseVerdict } from "./lockstep-case.ts";
import type { Gap } from "./gaps.ts";

/** Opens a fresh engine (a child process, for an engine in another process). */
export interface EngineSource {
  readonly name: string;
  readonly open: () => Promise<AsyncEngine>;
}

/** One engine, opened on first use and replaced after a failure. */
export class EngineHolder {
  restarts = 0;
  /** `engine`: one already open (the CLI's start-up check hands it over). */
  constructor(readonly source: EngineSource, private engine?: AsyncEngine) {}

  async get(): Promise<AsyncEngine> {
    return (this.engine ??= await this.source.open());
  }

  /** After a crash, hang or garbage: the next case gets a new engine. */
  async restart(): Promise<void> {
    const e = this.engine;
    this.engine = undefined;
    this.restarts++;
    await e?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const e = this.engine;
    this.engine = undefined;
    await e?.close().catch(() => undefined);
  }
}

export interface CaseSettings {
  readonly seed: number;
  readonly families: readonly Family[];
  /** Overrides every case's vendor; undefined: each case's own (both vendors). */
  readonly profile: ProfileName | undefined;
  readonly every: number;
  readonly rule: ComparisonRule;
  readonly timeoutMs: number;
  /** Rules whose divergences are expected (known deviations): reported, not failures. */
  readonly expected: ReadonlySet<string>;
  /** Known gaps (gaps.ts) whose divergences are expected. */
  readonly gaps: readonly Gap[];
  /** Most lockstep runs one shrink may take, and its wall-clock budget. */
  readonly shrinkRuns: number;
  readonly shrinkMs: number;
}

export type CaseStatus = "pass" | "fail" | "expected" | "error" | "skipped";

/** What one case came to: small, for every case (the details come with `detail`). */
export interface CaseOutcome {
  readonly index: number;
  readonly family: string;
  readonly status: CaseStatus;
  /** Steps compared. */
  readonly steps: number;
  readonly rule?: string;
  readonly why?: string;
  /** rule + the differing fields (memory addresses folded): what "distinct divergences" counts. */
  readonly signature?: string;
  readonly step?: number;
  /** For errors: which engine, the kind (timeout, crash, protocol, threw) and why. */
  readonly side?: "a" | "b";
  readonly error_kind?: string;
  readonly reason?: string;
  readonly size: number;
  readonly unit: string;
  /** For an expected divergence: the known gap that explains it (else its rule is expected). */
  readonly gap?: string;
  /** The details of a failure (only for the ones shrunk). */
  readonly detail?: FailureDetail;
}

/** Everything about one failing case, minimal. */
export interface FailureDetail {
  readonly shrunk: boolean;
  readonly original_size: number;
  readonly shrink_runs: number;
  /** The minimal case as the family's data (one line). */
  readonly case: string;
  readonly profile: ProfileName;
  readonly max_steps: number;
  readonly raises: readonly { readonly rip: string; readonly irq?: number; readonly nmi?: true }[];
  /** Its initial state (state format). */
  readonly initial: ReturnType<typeof stateToJson>;
  readonly step: number;
  readonly located: CaseDivergence["located"];
  readonly event_a: string;
  readonly event_b: string;
  /** The instruction of the diverging step, if it was one. */
  readonly instruction: { readonly bytes: string; readonly disassembly: string } | null;
  readonly differences: readonly FieldDifference[];
  readonly not_compared: readonly string[];
  readonly rules: readonly string[];
  readonly last_steps: readonly TraceRecord[];
  /** Both states after the diverging step, without memory (the differences name the bytes). */
  readonly states: { readonly a: ReturnType<typeof stateToJson>; readonly b: ReturnType<typeof stateToJson> };
  /** Engine A's own run of the minimal case: the `expected` of a saved vector. */
  readonly expected_exit: "hlt" | "shutdown" | "limit" | null;
  readonly expected_steps: number;
  readonly expected_state: ReturnType<typeof stateToJson> | null;
}

const MAX_DIFFERENCES = 200;

function foldField(field: string): string {
  return field.startsWith("memory@") ? "memory" : field;
}

export function signatureOf(rule: string, differences: readonly FieldDifference[]): string {
  return `${rule}: ${[...new Set(differences.map((d) => foldField(d.field)))].join(" ")}`;
}

function profileOf(settings: CaseSettings, built: BuiltCase): ProfileName {
  return settings.profile ?? built.profile;
}

function build(family: Family, value: unknown, settings: CaseSettings): BuiltCase {
  return family.build(value, settings.profile);
}

/** Runs a built case; an engine failure restarts that engine. */
async function verdictOf(a: EngineHolder, b: EngineHolder, built: BuiltCase, settings: CaseSettings): Promise<CaseVerdict> {
  let ea: AsyncEngine;
  let eb: AsyncEngine;
  try {
    ea = await a.get();
  } catch (e) {
    return { kind: "error", steps: 0, side: "a", reason: `could not start ${a.source.name}: ${(e as Error).message}`, errorKind: "start" };
  }
  try {
    eb = await b.get();
  } catch (e) {
    return { kind: "error", steps: 0, side: "b", reason: `could not start ${b.source.name}: ${(e as Error).message}`, errorKind: "start" };
  }
  const verdict = await lockstepCase(ea, eb, built, { every: settings.every, rule: settings.rule, timeoutMs: settings.timeoutMs });
  if (verdict.kind === "error") await (verdict.side === "a" ? a : b).restart();
  return verdict;
}

interface Judged {
  readonly verdict: CaseVerdict;
  /** A known gap the campaign expects that explains the divergence. */
  readonly gap?: string;
  readonly rule?: string;
  readonly why?: string;
  readonly rules?: readonly string[];
  readonly signature?: string;
}

async function judge(a: EngineHolder, b: EngineHolder, built: BuiltCase, settings: CaseSettings): Promise<Judged> {
  const verdict = await verdictOf(a, b, built, settings);
  if (verdict.kind !== "diverge") return { verdict };
  const at = attribute(verdict.divergence, profileOf(settings, built));
  const gap = settings.gaps.find((g) => g.applies(verdict.divergence))?.name;
  return { verdict, rule: at.rule, why: at.why, rules: at.rules, signature: signatureOf(at.rule, verdict.divergence.differences), ...(gap === undefined ? {} : { gap }) };
}

/** How a divergence is classified: expected when a known gap the campaign expects explains it or
 *  its rule is expected, else a failure. The one classification, for cases and shrink candidates. */
function divergenceStatus(j: Judged, settings: CaseSettings): "fail" | "expected" {
  return settings.expected.has(j.rule!) || j.gap !== undefined ? "expected" : "fail";
}

/** Runs case `index` of the campaign (no shrinking). */
export async function runCase(a: EngineHolder, b: EngineHolder, settings: CaseSettings, index: number): Promise<CaseOutcome> {
  const id = caseId(settings.families, settings.seed, index);
  const value = caseValue(id);
  const base = { index, family: id.family.name, size: id.family.size(value), unit: id.family.unit };
  let built: BuiltCase;
  try {
    built = build(id.family, value, settings);
  } catch (e) {
    // A generator bug, not an engine's: reported on its own line, never silently.
    return { ...base, status: "error", steps: 0, side: "a", error_kind: "generator", reason: `the ${id.family.name} generator failed: ${(e as Error).message}` };
  }
  const j = await judge(a, b, built, settings);
  const v = j.verdict;
  switch (v.kind) {
    case "agree":
      return { ...base, status: "pass", steps: v.steps };
    case "skipped":
      return { ...base, status: "skipped", steps: 0, reason: v.reason };
    case "error":
      return { ...base, status: "error", steps: v.steps, side: v.side, error_kind: v.errorKind, reason: v.reason };
    case "diverge":
      return {
        ...base,
        status: divergenceStatus(j, settings),
        ...(j.gap === undefined ? {} : { gap: j.gap }),
        steps: v.steps,
        rule: j.rule!,
        why: j.why!,
        signature: j.signature!,
        step: v.divergence.step,
      };
  }
}

// ------------------------------------------------------------------------------------------------
// Shrinking

interface Target {
  readonly rule: string;
  readonly signature: string;
}

/** Whether `value` still fails the way `target` did: a divergence classified as a failure (no gap
 *  the campaign expects explains it, its rule is not expected: what made the target a failure),
 *  under the same rule (the same signature when unattributed). */
async function stillFails(a: EngineHolder, b: EngineHolder, family: Family, value: unknown, settings: CaseSettings, target: Target): Promise<Judged | null> {
  let built: BuiltCase;
  try {
    built = build(family, value, settings);
  } catch {
    return null;
  }
  return stillFailsBuilt(a, b, built, settings, target);
}

async function stillFailsBuilt(a: EngineHolder, b: EngineHolder, built: BuiltCase, settings: CaseSettings, target: Target): Promise<Judged | null> {
  const j = await judge(a, b, built, settings);
  if (j.verdict.kind !== "diverge") return null;
  // A smaller case that diverges only where an expected gap explains it is not the deviation.
  if (divergenceStatus(j, settings) !== "fail") return null;
  if (target.rule === UNATTRIBUTED ? j.signature !== target.signature : j.rule !== target.rule) return null;
  return j;
}

/** What a lockstep run of `built` depends on (its machine, vendor, step limit and raises), hashed:
 *  shrink candidates with the same key have the same verdict. Memory goes in as each page's number
 *  and bytes (a zero page counts, though no engine could tell it from a missing one). */
export function builtCaseKey(built: BuiltCase, settings: CaseSettings): string {
  const raises = built.raises.map((r) => [hex(r.rip), "irq" in r.event ? r.event.irq : "nmi"]);
  // The profile the lockstep runs (built.profile) and the one attribution reads (profileOf).
  const hash = createHash("sha256").update(JSON.stringify([built.profile, profileOf(settings, built), built.maxSteps, raises, stateJsonWith(built.state, null)]));
  const pageHead = new Uint8Array(16);
  const head = new DataView(pageHead.buffer);
  for (const n of [...built.state.memory.keys()].sort((x, y) => x - y)) {
    const bytes = built.state.memory.get(n)!;
    // Each page's number and length before its bytes: no two memories hash the same bytes.
    head.setFloat64(0, n);
    head.setFloat64(8, bytes.length);
    hash.update(pageHead).update(bytes);
  }
  return hash.digest("base64");
}

export interface ShrinkResult {
  readonly value: unknown;
  readonly runs: number;
  readonly judged: Judged;
  readonly built: BuiltCase;
}

/** fast-check's shrinking from the case's seed, then the family's domain moves, greedily. A
 *  candidate that builds the same case as one already judged in this shrink (fast-check starts
 *  from the case itself; both shrinkers propose values they tried before, and values that differ
 *  only where the case does not look) takes that verdict instead of another lockstep run: the
 *  shrink takes the same path with fewer runs (`runs` counts lockstep runs). */
export async function shrinkCase(a: EngineHolder, b: EngineHolder, settings: CaseSettings, id: CaseId, target: Target): Promise<ShrinkResult | null> {
  const deadline = Date.now() + settings.shrinkMs;
  let runs = 0;
  const budgetLeft = () => runs < settings.shrinkRuns && Date.now() < deadline;
  const verdicts = new Map<string, boolean>();
  /** Whether `value` still fails as the target did: a lockstep run, unless judged before. */
  const fails = async (value: unknown): Promise<boolean> => {
    let built: BuiltCase;
    try {
      built = build(id.family, value, settings);
    } catch {
      return false;
    }
    const key = builtCaseKey(built, settings);
    const known = verdicts.get(key);
    if (known !== undefined) return known;
    runs++;
    const failed = (await stillFailsBuilt(a, b, built, settings, target)) !== null;
    verdicts.set(key, failed);
    return failed;
  };
  const original = caseValue(id);
  let current = original;
  if (!(await fails(current))) return null;

  // 1. fast-check: its own shrinker over the generated structure (same seed: same first value).
  const out = await fc.check(
    fc.asyncProperty(id.family.arbitrary, async (v) => {
      if (!budgetLeft()) return true;
      return !(await fails(v));
    }),
    { seed: id.seed, numRuns: 1 },
  );
  if (out.failed && out.counterexample !== null) current = out.counterexample[0];

  // 2. The domain: drop instructions, zero registers, round values; the first that still fails.
  let improved = true;
  while (improved && budgetLeft()) {
    improved = false;
    for (const candidate of id.family.shrink(current)) {
      if (!budgetLeft()) break;
      if (await fails(candidate)) {
        current = candidate;
        improved = true;
        break;
      }
    }
  }
  // Run again, never from the verdicts: the details come from this run, and it shows the engines
  // fail the same way on the same case.
  let judged = await stillFails(a, b, id.family, current, settings, target);
  if (judged === null) {
    // The engines are not deterministic on this case: keep the original.
    current = original;
    judged = (await stillFails(a, b, id.family, current, settings, target))!;
    if (judged === null) return null;
  }
  return { value: current, runs, judged, built: build(id.family, current, settings) };
}

// ------------------------------------------------------------------------------------------------
// The details of a failure

function show(value: unknown): string {
  return JSON.stringify(value, (_, x) => (typeof x === "bigint" ? hex(x) : x)) ?? String(value);
}

/** One line for a case's data (model sequences print their commands). */
export function describeValue(value: unknown): string {
  if (typeof value === "object" && value !== null && "commands" in value) {
    const v = value as { profile: string; commands: Iterable<{ toString(): string }> };
    return `${v.profile}: ${[...v.commands].map((c) => c.toString()).join("; ")}`;
  }
  return show(value);
}

function raisesJson(raises: BuiltCase["raises"]): FailureDetail["raises"] {
  return raises.map((r) => ({ rip: hex(r.rip), ...("irq" in r.event ? { irq: r.event.irq } : { nmi: true as const }) }));
}

function withoutMemory(s: ArchState): ReturnType<typeof stateToJson> {
  return stateToJson({ ...s, memory: new Map() });
}

function instructionOf(d: CaseDivergence): FailureDetail["instruction"] {
  const fetched = d.eventA?.instruction;
  if (fetched !== undefined && fetched.length > 0) {
    const record = traceRecord({ step: d.step, before: d.before, event: d.eventA!, after: d.stateA });
    return record.instruction === null ? null : { bytes: record.instruction.bytes, disassembly: record.instruction.disassembly };
  }
  if (d.eventA !== undefined && fetched === undefined) return null;
  return { bytes: "", disassembly: describeInstructionAt(d.before, pageReader(d.before.memory)) };
}

function line(e: EngineEvent | undefined): string {
  return e === undefined ? "(not single-stepped)" : eventLine(e);
}

/** Engine A alone on the case: the expected result of a saved vector. */
async function referenceRun(a: EngineHolder, built: BuiltCase, settings: CaseSettings): Promise<{ exit: FailureDetail["expected_exit"]; steps: number; state: ArchState | null }> {
  if (built.raises.length > 0) return { exit: null, steps: 0, state: null };
  try {
    const engine = await a.get();
    await engine.load(built.state, profileOf(settings, built));
    const run = await runAsyncEngine(engine, { maxSteps: built.maxSteps, timeoutMs: settings.timeoutMs });
    const exit = run.stop.reason === "hlt" || run.stop.reason === "shutdown" || run.stop.reason === "limit" ? run.stop.reason : null;
    return { exit, steps: run.stop.steps, state: exit === null ? null : run.state };
  } catch {
    await a.restart();
    return { exit: null, steps: 0, state: null };
  }
}

/** Shrinks a failing case (when `shrink`) and gathers its details. */
export async function failureDetail(a: EngineHolder, b: EngineHolder, settings: CaseSettings, outcome: CaseOutcome, shrink: boolean): Promise<CaseOutcome> {
  const id = caseId(settings.families, settings.seed, outcome.index);
  const target = { rule: outcome.rule!, signature: outcome.signature! };
  let result: ShrinkResult | null = null;
  if (shrink) result = await shrinkCase(a, b, settings, id, target);
  if (result === null) {
    const value = caseValue(id);
    const built = build(id.family, value, settings);
    const judged = await judge(a, b, built, settings);
    if (judged.verdict.kind !== "diverge") return outcome; // not reproducible: leave it as found
    result = { value, runs: 0, judged, built };
  }
  const { value, judged, built } = result;
  const d = (judged.verdict as Extract<CaseVerdict, { kind: "diverge" }>).divergence;
  const ea = await a.get().catch(() => undefined);
  const eb = await b.get().catch(() => undefined);
  const notCompared = [...new Set([...(ea?.capabilities.unobservable ?? []), ...(eb?.capabilities.unobservable ?? [])])];
  const reference = await referenceRun(a, built, settings);
  const detail: FailureDetail = {
    shrunk: shrink && result.runs > 0,
    original_size: outcome.size,
    shrink_runs: result.runs,
    case: describeValue(value),
    profile: profileOf(settings, built),
    max_steps: built.maxSteps,
    raises: raisesJson(built.raises),
    initial: stateToJson(built.state),
    step: d.step,
    located: d.located,
    event_a: line(d.eventA),
    event_b: line(d.eventB),
    instruction: instructionOf(d),
    differences: d.differences.slice(0, MAX_DIFFERENCES),
    not_compared: notCompared,
    rules: judged.rules ?? [],
    last_steps: d.history.map((v) => traceRecord(v)),
    states: { a: withoutMemory(d.stateA), b: withoutMemory(d.stateB) },
    expected_exit: reference.exit,
    expected_steps: reference.steps,
    expected_state: reference.state === null ? null : stateToJson(reference.state),
  };
  return {
    ...outcome,
    rule: judged.rule!,
    why: judged.why!,
    // The signature stays the case's as found: which failures get shrunk depends on threads and
    // shards, and counts of distinct signatures must not.
    signature: outcome.signature ?? judged.signature!,
    step: d.step,
    size: id.family.size(value),
    detail,
  };
}
