// Rule coverage from execution (issue 8, item 10): conformance/rule-coverage.json lists the rules the
// spec exercised while the whole suite ran (test/setup.ts records them, the rule-coverage reporter
// merges and refreshes the file, failing a run that changed it). This file checks what it says.
import { describe, expect, it } from "vitest";
import { KNOWN_UNRECORDED, ruleCoverage } from "../../conformance/rule-coverage.ts";
import { readRuleCoverage } from "../../conformance/rule-coverage-file.ts";
import { allRules } from "../../spec/index.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { collectExecutionCoverage } from "../../spec/rules/execution-coverage.ts";
import { kernelState } from "../helpers/fixture.ts";

describe("rule coverage from execution", () => {
  it("the committed coverage lists only registered rules, sorted", () => {
    const exercised = readRuleCoverage();
    expect(exercised).toBeDefined();
    const registered = new Set(allRules().map((r) => r.id));
    expect(exercised!.filter((id) => !registered.has(id))).toEqual([]);
    expect(exercised).toEqual([...exercised!].sort());
  });

  it("every digest rule is implemented and exercised by the suite, or declared out of scope — but the known unrecorded ones", () => {
    const c = ruleCoverage();
    // A rule newly missing fails; so does a listed one that is now recorded (take it off the list).
    expect(
      c.missing,
      "digest rules not exercised by the suite (conformance/rule-coverage.json): a rule now recorded is to be taken off KNOWN_UNRECORDED " +
        "(conformance/rule-coverage.ts); a rule newly missing needs its check tagged in spec/ and a test that runs it (then commit the refreshed coverage file)",
    ).toEqual([...KNOWN_UNRECORDED].sort((a, b) => a.localeCompare(b, "en", { numeric: true })));
    expect(c.exercised.length + c.notModelled.length + c.missing.length).toBe(c.digest.length);
    // Each known one is implemented (registered) and named by a test: a gap in recording, not in the model.
    const registered = new Set(allRules().map((r) => r.id));
    for (const id of KNOWN_UNRECORDED) expect(registered.has(id), id).toBe(true);
    expect(c.unnamed?.filter((id) => KNOWN_UNRECORDED.includes(id))).toEqual([]);
  });

  it("the report needs no test/ (an installed package has none): the title listing is only secondary", () => {
    const c = ruleCoverage({ testDir: null });
    expect(c.unnamed).toBeUndefined();
    expect(c.missing).toEqual(ruleCoverage().missing);
  });

  it("recording follows execution, not names: a run records exactly the rules it exercised", () => {
    const hit = new Set<string>();
    const direct = new Set<string>();
    collectExecutionCoverage(hit);
    try {
      const spec = new SpecEngine({ coverage: direct });
      // hlt at once: the fetch and HLT rules, nothing about SYSCALL.
      spec.load({ ...kernelState(), memory: new Map([...kernelState().memory, [0x10, new Uint8Array(4096).fill(0xf4)]]) }, "intel");
      spec.run(2);
    } finally {
      collectExecutionCoverage(null);
    }
    expect(hit.size).toBeGreaterThan(0);
    for (const id of direct) expect(hit.has(id)).toBe(true);
    expect([...hit].some((id) => id.startsWith("SYSCALL"))).toBe(false);
  });
});
