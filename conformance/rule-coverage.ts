// Rule coverage: which rule IDs of the reference digest (§2–§22) the spec implements, which of
// those the test suite exercises (recorded while `npm test` runs: spec/rules/execution-coverage.ts,
// test/reporters/rule-coverage.ts, committed as conformance/rule-coverage.json so that an
// installed package, which has no test/, reports it too), which are out of scope (with the
// reason), and — a secondary listing, from a source checkout only — which a test's title names.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { allRules, SpecEngine } from "../spec/index.ts";
import { NOT_MODELLED } from "../spec/rules/not-modelled.ts";
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { runEngine } from "../engines/runner.ts";
import { readRuleCoverage } from "./rule-coverage-file.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * Digest rules the spec implements (each named by tests that check its behaviour) but never
 * records while the suite runs: the check is made without its ID (a helper such as canonical(), a
 * comment "IRETQ-00 / NMI-03", a path the decoder pre-empts), so execution coverage cannot count
 * them. They are reported as missing, honestly; this list only keeps the test suite from failing
 * on the known ones, and a test fails when one of them starts being recorded (remove it here) or a
 * rule not listed goes missing. Fixing one means tagging its check in spec/ (t.hit, or a rule's
 * `recordedWith`): spec/'s owners' work.
 */
export const KNOWN_UNRECORDED: readonly string[] = [];

/** SYSRET-03, SYSCALL-V1, and finer IDs such as PF-RSVD-PS1G or CANON-GP. */
const RULE_ID = /\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b/g;

/** Rule IDs defined at the start of a line (or bullet) in digest sections 2 to 22. */
export function digestRuleIds(digest: string): string[] {
  const lines = digest.split("\n");
  const start = lines.findIndex((l) => l.startsWith("## 2. "));
  const end = lines.findIndex((l) => l.startsWith("## 23. "));
  const ids = new Set<string>();
  for (const line of lines.slice(start, end)) {
    const m = /^(?:\* )?([A-Z][A-Z0-9]*-V?[0-9]+)\b/.exec(line);
    if (m?.[1] !== undefined) ids.add(m[1]);
  }
  return [...ids].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** The *.test.ts files under `dir` (symbolic links are not followed: no loops). */
function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(path));
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

/** Rule IDs that appear in the name of a test (`it("SYSRET-03: ...")` or a describe block). */
export function testedRuleIds(testDir = join(ROOT, "test")): Set<string> {
  const ids = new Set<string>();
  const title = /\b(?:it|test|describe)(?:\.each\([^)]*\))?\(\s*(["'`])((?:\\.|(?!\1).)*)\1/g;
  for (const file of testFiles(testDir)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(title)) for (const id of (m[2] ?? "").matchAll(RULE_ID)) ids.add(id[0]);
  }
  return ids;
}

export interface RuleCoverage {
  readonly digest: readonly string[];
  readonly implemented: readonly string[];
  /** Digest rules implemented and exercised by the test suite (the committed execution coverage). */
  readonly exercised: readonly string[];
  readonly notModelled: readonly string[];
  /** In the digest, neither implemented-and-exercised nor declared out of scope. */
  readonly missing: readonly string[];
  /** Registered (any family, incl. finer IDs beyond the digest) but never exercised by the suite. */
  readonly unexercised: readonly string[];
  /** Secondary, from a source checkout (undefined in an installed package, which has no test/):
   *  registered rules no test title names. */
  readonly unnamed: readonly string[] | undefined;
}

/** `testDir`: where the tests are for the secondary title listing (null: none, as in an installed
 *  package, which ships no test/). */
export function ruleCoverage(options: { readonly testDir?: string | null } = {}): RuleCoverage {
  const digest = digestRuleIds(readFileSync(join(ROOT, "docs/reference/x86-64-transitions.md"), "utf8"));
  const registered = new Set(allRules().map((r) => r.id));
  const exercised = new Set(readRuleCoverage() ?? []);
  const testDir = options.testDir === undefined ? join(ROOT, "test") : options.testDir;
  const named = testDir !== null && existsSync(testDir) ? testedRuleIds(testDir) : undefined;
  const implemented = digest.filter((id) => registered.has(id));
  return {
    digest,
    implemented,
    exercised: digest.filter((id) => registered.has(id) && exercised.has(id)),
    notModelled: digest.filter((id) => id in NOT_MODELLED),
    missing: digest.filter((id) => !(id in NOT_MODELLED) && !(registered.has(id) && exercised.has(id))),
    unexercised: [...registered].filter((id) => !exercised.has(id)).sort(),
    unnamed: named === undefined ? undefined : [...registered].filter((id) => !named.has(id)).sort(),
  };
}

export interface CoverageRun {
  readonly state: ArchState;
  readonly profile: ProfileName;
  readonly maxSteps: number;
}

/** Rule IDs the spec exercises running these states (each to its stop, 60 s at most). */
export function rulesHitBy(runs: readonly CoverageRun[]): Set<string> {
  const hit = new Set<string>();
  const engine = new SpecEngine({ coverage: hit });
  for (const r of runs) {
    engine.load(r.state, r.profile);
    runEngine(engine, { maxSteps: r.maxSteps, timeoutMs: 60_000 });
  }
  return hit;
}
