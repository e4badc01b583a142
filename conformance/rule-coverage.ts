// Rule coverage: which rule IDs of the reference digest (§2–§22) the spec implements, which of
// those a test names, and which are out of scope (with the reason).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { allRules, SpecEngine } from "../spec/index.ts";
import { NOT_MODELLED } from "../spec/rules/not-modelled.ts";
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { runEngine } from "../engines/runner.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
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

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith(".test.ts")) out.push(path);
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
  readonly tested: readonly string[];
  readonly notModelled: readonly string[];
  /** In the digest, neither implemented-and-tested nor declared out of scope. */
  readonly missing: readonly string[];
  /** Registered (any family, incl. finer IDs beyond the digest) but named by no test. */
  readonly untested: readonly string[];
}

export function ruleCoverage(): RuleCoverage {
  const digest = digestRuleIds(readFileSync(join(ROOT, "docs/reference/x86-64-transitions.md"), "utf8"));
  const registered = new Set(allRules().map((r) => r.id));
  const tested = testedRuleIds();
  const implemented = digest.filter((id) => registered.has(id));
  return {
    digest,
    implemented,
    tested: digest.filter((id) => registered.has(id) && tested.has(id)),
    notModelled: digest.filter((id) => id in NOT_MODELLED),
    missing: digest.filter((id) => !(id in NOT_MODELLED) && !(registered.has(id) && tested.has(id))),
    untested: [...registered].filter((id) => !tested.has(id)).sort(),
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
