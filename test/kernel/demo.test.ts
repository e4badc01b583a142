// The demo kernel (kernel/demo) on both engines, the context-switch invariants on its run, and
// its deliberately broken variants, each caught by the right invariant, graded for Gradescope.
// `npm test` runs the shorter workload; RINGSPEC_KERNEL_FULL=1 (npm run test:kernel-full) runs
// the full one, with lockstep comparing whole states at every step.
import { describe, expect, it } from "vitest";
import { buildDemoKernel, VARIANTS, VARIANT_NAMES, type VariantName } from "../../kernel/demo/index.ts";
import { checkKernel, gradescopeResults, jsonReport, DEFAULT_RUBRIC, parseRubric, type CheckReport } from "../../kernel/grade/index.ts";
import type { KernelTarget } from "../../kernel/target.ts";
import { KERNEL_ENGINE_NAMES } from "../../kernel/engines.ts";
import { envFlag } from "../helpers/env.ts";

const FULL = envFlag("RINGSPEC_KERNEL_FULL");
const short = !FULL;

function target(variant?: VariantName): KernelTarget {
  const k = buildDemoKernel({ ...(variant !== undefined ? { variant } : {}), short });
  return { name: variant === undefined ? "demo" : `demo:${variant}`, state: k.state, profile: "intel", context: k.context, symbols: k.symbols };
}

const EXPECTED_LINES = [
  "ringspec demo kernel: 5 processes, timer every 600 instructions",
  "fault: writing to 0xdead000, which is not mapped",
  "[kernel] process 0x3 killed: exception 0xe at rip 0x400013, cr2 0xdead000",
  "edge: SYSCALL at 0x7ffffffffffe, returning to a non-canonical address",
  "[kernel] process 0x5 killed: cannot return to 0x800000000000",
  "printer: line 1 of 3",
  "printer: line 2 of 3",
  "printer: line 3 of 3",
  short ? "syscalls: 16 getpid calls and 2 yields, registers intact" : "syscalls: 32 getpid calls and 4 yields, registers intact",
  short ? "compute: 250 xorshift rounds, checksum right" : "compute: 1000 xorshift rounds, checksum right",
  "[kernel] all processes done; halting",
];

/** The demo's run for the first three tests, made once: ONE lockstep run of spec and impl (whole
 *  states compared every 32 steps, every step with FULL, and at every delivery, I/O and privilege
 *  change; events and console at every step), each engine watched by its own context-switch
 *  checker on its own events and states (as the C kernel's test does, kernel/c/instructions.ts),
 *  instead of a lockstep run and then a checked run of each engine alone. `other` is impl's side. */
let demoChecked: CheckReport | undefined;
function demoCheck(): CheckReport {
  return (demoChecked ??= checkKernel(target(), {
    engine: "spec", maxSteps: 200_000, timeoutMs: 300_000, consoleLimit: 65536, command: "npx ringspec kernel check demo",
    lockstepEvery: FULL ? 1 : 32, checkOther: { command: "npx ringspec kernel check demo --engine impl" },
  }));
}

describe("the demo kernel", () => {
  it("runs to completion on spec and impl in lockstep: the same events, console and states, exit 0", () => {
    const r = demoCheck().run;
    expect(r.divergence).toBeUndefined();
    expect(r.stop).toBe("exit");
    expect(r.exitValue).toBe(0);
    const lines = new TextDecoder().decode(r.console).split("\n");
    for (const line of EXPECTED_LINES) expect(lines).toContain(line);
    expect(r.comparedStates).toBeGreaterThan(r.steps / 32);
  });

  it.each(KERNEL_ENGINE_NAMES)("every context-switch invariant holds on its run (%s), each checked many times", (engine) => {
    // Each engine's side of the lockstep run, checked on its own events and states (impl's exists
    // only when the lockstep ran to its end).
    const report = engine === "spec" ? demoCheck() : demoCheck().other;
    expect(report?.engine).toBe(engine);
    if (report === undefined) return;
    expect(report.run.stop).toBe("exit");
    expect(report.run.exitValue).toBe(0);
    for (const r of report.invariants) {
      expect({ invariant: r.invariant, violations: r.violations.map((v) => v.message) }).toEqual({ invariant: r.invariant, violations: [] });
      expect(r.checks).toBeGreaterThan(10);
    }
    const results = gradescopeResults(report, DEFAULT_RUBRIC);
    expect(results.score).toBe(7);
    expect(results.tests.every((t) => t.status === "passed")).toBe(true);
  });

  it("its symbol map names the entry points", () => {
    const t = target();
    for (const name of ["kernel_start", "syscall_entry", "exception_entry", "exception_return", "iretq_to_user", "sysretq_to_user", "yield_to_scheduler", "schedule", "run", "stub_14"]) expect(t.symbols.has(name)).toBe(true);
    expect(t.state.rip).toBe(t.symbols.get("kernel_start"));
  });
});

describe.each(VARIANT_NAMES)("the broken variant %s", (variant) => {
  const { rule, caughtBy, bug } = VARIANTS[variant];
  it(`is caught by invariant (${caughtBy}), rule ${rule} (${bug}), and graded field by field`, () => {
    const rubric = parseRubric({
      format: "ringspec-rubric/1",
      tests: [
        ...["a", "b", "c", "d", "e", "f"].map((invariant) => ({ invariant, points: 2, visibility: invariant === "f" ? "hidden" : "visible" })),
        { console: "[kernel] all processes done; halting", points: 1 },
        { exit: 0, points: 1, name: "clean exit" },
      ],
    });
    const command = `npx ringspec kernel check demo:${variant} --engine spec`;
    const report = checkKernel(target(variant), { engine: "spec", maxSteps: 25_000, timeoutMs: 300_000, consoleLimit: 65536, command });
    const caught = report.invariants.find((r) => r.invariant === caughtBy)!;
    expect(caught.passed).toBe(false);
    expect(caught.violations.map((v) => v.rule)).toContain(rule);
    const v = caught.violations.find((x) => x.rule === rule)!;
    expect(v.step).toBeGreaterThan(0);
    expect(v.instruction).not.toBe("");
    expect(v.task).toMatch(/^task [0-9]+ \(cr3 0x[0-9a-f]+\)$/);

    const results = gradescopeResults(report, rubric);
    expect(Object.keys(results)).toEqual(["score", "execution_time", "output", "tests"]);
    expect(results.tests).toHaveLength(8);
    for (const t of results.tests) {
      expect(Object.keys(t)).toEqual(["name", "score", "max_score", "status", "output", "visibility"]);
      expect(t.score).toBe(t.status === "passed" ? t.max_score : 0);
    }
    const invariantTest = results.tests[["a", "b", "c", "d", "e", "f"].indexOf(caughtBy)]!;
    expect(invariantTest).toMatchObject({ score: 0, max_score: 2, status: "failed", visibility: caughtBy === "f" ? "hidden" : "visible" });
    expect(invariantTest.name).toBe(`(${caughtBy}) ${caught.title}`);
    expect(invariantTest.output).toContain(`${caught.count} violation`);
    expect(invariantTest.output).toContain(`Reproduce locally: ${command}`);
    expect(results.tests[7]!.name).toBe("clean exit");
    expect(results.score).toBe(results.tests.reduce((sum, t) => sum + t.score, 0));
    expect(results.score).toBeLessThan(14);
    expect(results.execution_time).toBeGreaterThan(0);
    expect(results.output).toContain(`Score ${results.score} / 14`);
    // The JSON report's seconds and Gradescope's execution_time: the same figure, to the
    // microsecond (an elapsed time with more digits than that, set here, not measured).
    const timed = { ...report, run: { ...report.run, elapsedMs: 1234.5678901 } };
    expect((JSON.parse(jsonReport(timed)) as { run: { seconds: number } }).run.seconds).toBe(1.234568);
    expect(gradescopeResults(timed, rubric).execution_time).toBe(1.234568);
  });
});
