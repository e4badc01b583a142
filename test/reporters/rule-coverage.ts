// The rule-coverage reporter: after a complete, passing `npm test`, merges the rules each test file
// exercised (test/setup.ts, spec/rules/execution-coverage.ts) into conformance/rule-coverage.json —
// the committed file `ringspec rules` reports, in an installed package too. The committed file may
// understate what the suite exercises, never overstate it: rules newly exercised refresh the file
// with a note (commit it when convenient); a rule the file lists that the suite no longer
// exercises refreshes it and fails the run, naming the rule (commit the refreshed file). A partial
// run (some files, a name filter) or a failing one leaves the file alone — unless there is no file
// yet: then a complete run writes it whatever its outcome (a lower bound, never a claim too many).
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { Reporter, TestModule, Vitest } from "vitest/node";
// Only the file's format: this reporter runs in vitest's main process, before any worker starts,
// and loading the spec here (about 95 modules, transformed on a fresh clone) delayed every worker.
// The rules a recorded rule implies are added in the workers (test/setup.ts).
import { RULE_COVERAGE_FILE, ruleCoverageText, readRuleCoverage } from "../../conformance/rule-coverage-file.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** The test files a complete `npm test` runs (vitest.config.ts: test/**\/*.test.ts but
 *  test/emulators/). */
function allTestFiles(dir = join(ROOT, "test")): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (relative(ROOT, path) !== join("test", "emulators")) out.push(...allTestFiles(path));
    } else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

export default class RuleCoverageReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, _errors: unknown, reason: string): void {
    const dir = process.env.RINGSPEC_RULES_DIR;
    if (dir === undefined || dir === "") return;
    const hit = new Set<string>();
    let parts: string[] = [];
    try {
      parts = readdirSync(dir);
    } catch {
      parts = [];
    }
    for (const name of parts) for (const id of JSON.parse(readFileSync(join(dir, name), "utf8")) as string[]) hit.add(id);
    rmSync(dir, { recursive: true, force: true });
    const ran = new Set(modules.map((m) => resolve(m.moduleId)));
    const all = this.vitest?.config.testNamePattern === undefined && allTestFiles().every((f) => ran.has(f));
    const committed = readRuleCoverage();
    if (!all || (reason !== "passed" && committed !== undefined)) return;
    const fresh = [...hit].sort();
    if (committed !== undefined && committed.join("\n") === fresh.join("\n")) return;
    writeFileSync(RULE_COVERAGE_FILE, ruleCoverageText(fresh));
    const gained = fresh.filter((id) => !(committed ?? []).includes(id));
    const lost = (committed ?? []).filter((id) => !hit.has(id));
    const file = relative(ROOT, RULE_COVERAGE_FILE);
    if (lost.length === 0) {
      const what = committed === undefined ? "written" : `refreshed (newly exercised: ${gained.join(" ")})`;
      console.error(`\nrule coverage: ${file} ${what}, ${fresh.length} rules exercised by the suite. Commit it.\n`);
      return;
    }
    const message =
      `rule coverage dropped: the suite no longer exercises ${lost.join(" ")}, which ${file} listed; ` +
      `the file is refreshed (${fresh.length} rules${gained.length > 0 ? `; newly exercised: ${gained.join(" ")}` : ""}). Commit it.`;
    console.error(`\n${message}\n`);
    process.exitCode = 1;
    throw new Error(message);
  }
}
