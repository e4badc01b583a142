// Gradescope's results.json (score, execution_time, output, tests[]: name, score, max_score,
// status, output, visibility) and JUnit XML, scored from a rubric (rubric.ts) over a check report.
import type { CheckReport } from "./check.ts";
import { reportSeconds, runSummary, violationLines } from "./check.ts";
import type { Rubric, RubricTest } from "./rubric.ts";

export interface GradedTest {
  readonly name: string;
  readonly score: number;
  readonly max_score: number;
  readonly status: "passed" | "failed";
  readonly output: string;
  readonly visibility: "visible" | "hidden" | "after_due_date" | "after_published";
}

export interface GradescopeResults {
  readonly score: number;
  readonly execution_time: number;
  readonly output: string;
  readonly tests: readonly GradedTest[];
}

function testName(t: RubricTest, report: CheckReport): string {
  if (t.name !== undefined) return t.name;
  if ("invariant" in t) return `(${t.invariant}) ${report.invariants.find((r) => r.invariant === t.invariant)!.title}`;
  if ("console" in t) return t.match === "contains" ? `console shows "${t.console}"` : `console line "${t.console}"`;
  return `the kernel exits with ${t.exit}`;
}

function grade(t: RubricTest, report: CheckReport): { passed: boolean; output: string } {
  const reproduce = `Reproduce locally: ${report.command}`;
  if ("invariant" in t) {
    const r = report.invariants.find((x) => x.invariant === t.invariant)!;
    if (r.passed) return { passed: true, output: `Checked at ${r.checks} boundaries; no violation (${r.rules.join(", ")}).` };
    if (r.count === 0) return { passed: false, output: `Not exercised: the run (${runSummary(report.run)}) never reached a boundary where it applies.\n${reproduce}` };
    return { passed: false, output: [`${r.count} violation${r.count === 1 ? "" : "s"}; the first:`, ...violationLines(r.violations[0]!), reproduce].join("\n") };
  }
  if ("console" in t) {
    const lines = report.consoleText.split("\n");
    const passed = t.match === "contains" ? report.consoleText.includes(t.console) : lines.includes(t.console);
    return { passed, output: passed ? "Found in the console output." : `Not in the console output (${lines.length - 1} lines; the run: ${runSummary(report.run)}).\n${reproduce}` };
  }
  const run = report.run;
  const passed = run.stop === "exit" && run.exitValue === t.exit;
  return { passed, output: passed ? `The kernel wrote ${t.exit} to the exit port.` : `Expected exit ${t.exit}; the run: ${runSummary(run)}.\n${reproduce}` };
}

export function gradescopeResults(report: CheckReport, rubric: Rubric): GradescopeResults {
  const tests: GradedTest[] = rubric.tests.map((t) => {
    const g = grade(t, report);
    return { name: testName(t, report), score: g.passed ? t.points : 0, max_score: t.points, status: g.passed ? "passed" : "failed", output: g.output, visibility: t.visibility };
  });
  const score = tests.reduce((sum, t) => sum + t.score, 0);
  const max = tests.reduce((sum, t) => sum + t.max_score, 0);
  return {
    score,
    execution_time: reportSeconds(report.run.elapsedMs),
    output: `ringspec kernel check on ${report.engine}: ${runSummary(report.run)}. Score ${score} / ${max}.\nReproduce locally: ${report.command}`,
    tests,
  };
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function junitXml(results: GradescopeResults): string {
  const failures = results.tests.filter((t) => t.status === "failed").length;
  const cases = results.tests.map((t) =>
    t.status === "passed"
      ? `    <testcase classname="ringspec.kernel" name="${xml(t.name)}" time="0"/>`
      : `    <testcase classname="ringspec.kernel" name="${xml(t.name)}" time="0">\n      <failure message="${xml(t.output.split("\n")[0] ?? "")}">${xml(t.output)}</failure>\n    </testcase>`,
  );
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites tests="${results.tests.length}" failures="${failures}" time="${results.execution_time}">`,
    `  <testsuite name="ringspec kernel check" tests="${results.tests.length}" failures="${failures}" time="${results.execution_time}">`,
    ...cases,
    `  </testsuite>`,
    `</testsuites>`,
    "",
  ].join("\n");
}
