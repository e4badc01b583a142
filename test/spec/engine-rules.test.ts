// What SpecEngine reports for traces: each step's rules in the order the model exercised them
// (repeats kept: a second delivery repeats the first one's rules), and the faults raised on the
// way with the rule whose check failed.
import { describe, expect, it } from "vitest";
import { SpecEngine } from "../../spec/engine.ts";
import { vectorState } from "../trace/helpers.ts";

function firstStep(vector: string, options: ConstructorParameters<typeof SpecEngine>[0] = { rules: true }) {
  const engine = new SpecEngine(options);
  engine.load(vectorState(vector), "intel");
  return engine.step();
}

describe("SpecEngine: rules in order and the faults of a step", () => {
  it("a triple fault: three delivery attempts, each ending at the check that failed", () => {
    const e = firstStep("df-contributory-np-then-gp");
    expect(e.kind).toBe("shutdown");
    expect(e.rules!.filter((r) => r === "DELIVER-01")).toHaveLength(3);
    expect(e.rules!.filter((r) => r === "DF-02")).toHaveLength(3);
    expect(e.rules!.indexOf("DF-07")).toBeLessThan(e.rules!.indexOf("DF-04"));
    expect(e.rules![e.rules!.length - 1]).toBe("DF-05");
    expect(e.faults).toEqual([
      { rule: "DELIVER-01", vector: 13, errorCode: 0x202, during: "delivery" },
      { rule: "DELIVER-01", vector: 13, errorCode: 0x6b, during: "delivery" },
      { rule: "DELIVER-01", vector: 13, errorCode: 0x43, during: "delivery" },
    ]);
  });

  it("an instruction's own fault comes first", () => {
    const e = firstStep("iretq-ring3-to-ring0-gp");
    expect(e.kind).toBe("retired"); // five pushes first
    const engine = new SpecEngine({ rules: true });
    engine.load(vectorState("iretq-ring3-to-ring0-gp"), "intel");
    for (let i = 0; i < 5; i++) engine.step();
    const iret = engine.step();
    expect(iret.faults).toEqual([{ rule: "IRETQ-06", vector: 13, errorCode: 8, during: "instruction" }]);
    expect(iret.rules!.indexOf("IRETQ-06")).toBeLessThan(iret.rules!.indexOf("DELIVER-02"));
  });

  it("a step that faults nowhere reports no faults; coverage still collects each rule once", () => {
    const coverage = new Set<string>();
    const e = firstStep("syscall-basic", { rules: true, coverage });
    expect(e.faults).toBeUndefined();
    expect(e.rules!.slice(0, 3)).toEqual(["PF-ACCESSED", "RF-01", "SYSCALL-03"]);
    expect([...coverage].sort()).toEqual([...new Set(e.rules)].sort());
  });
});
