// The committed file of rule coverage (conformance/rule-coverage.json): its place and format, on
// their own so that the test suite's reporter (test/reporters/rule-coverage.ts), which runs in
// vitest's main process, reads and writes it without loading the spec (conformance/rule-coverage.ts
// re-exports these; the rest of rule coverage lives there).
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The rules the test suite exercised, one ID a line (refreshed by every complete `npm test`). */
export const RULE_COVERAGE_FILE = fileURLToPath(new URL("./rule-coverage.json", import.meta.url));
const COVERAGE_FORMAT = "ringspec-rule-coverage/1";

/** The committed file's text for these rule IDs (sorted). */
export function ruleCoverageText(hit: readonly string[]): string {
  return JSON.stringify({
    format: COVERAGE_FORMAT,
    about: "Rule IDs the spec exercised while the test suite ran (npm test refreshes this file; ringspec rules reports it)",
    exercised: [...hit].sort(),
  }, null, 2) + "\n";
}

/** The committed rule IDs the suite exercised; undefined when the file is missing. */
export function readRuleCoverage(file = RULE_COVERAGE_FILE): string[] | undefined {
  if (!existsSync(file)) return undefined;
  const value = JSON.parse(readFileSync(file, "utf8")) as { format?: unknown; exercised?: unknown };
  if (value.format !== COVERAGE_FORMAT || !Array.isArray(value.exercised) || !value.exercised.every((x) => typeof x === "string")) {
    throw new Error(`${file}: not a ${COVERAGE_FORMAT} document`);
  }
  return value.exercised as string[];
}
