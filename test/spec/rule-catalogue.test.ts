// The rule catalogue (spec/rule-catalogue.ts) is the one list of rules: every rule ID the model
// records is defined there, and a rule recorded with another (Rule.recordedWith) has no code of its
// own in the transition bodies.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { allRules, recordImpliedRules, ruleById } from "../../spec/rule-catalogue.ts";

const SPEC = resolve(dirname(fileURLToPath(import.meta.url)), "../../spec");
/** SYSRET-03, SYSCALL-V1, PF-RSVD-PS1G, CANON-GP: an upper-case word, a hyphen, more of them. */
const RULE_LITERAL = /"([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)"/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : name.endsWith(".ts") ? [p] : [];
  });
}

/** Every quoted rule ID in spec/ with the file it is in, outside the list of rules not modelled. */
function ruleLiterals(): { id: string; file: string; line: string }[] {
  const out: { id: string; file: string; line: string }[] = [];
  for (const file of sources(SPEC)) {
    if (file.endsWith("rules/not-modelled.ts")) continue;
    for (const line of readFileSync(file, "utf8").split("\n"))
      for (const m of line.matchAll(RULE_LITERAL)) out.push({ id: m[1]!, file: relative(SPEC, file), line: line.trim() });
  }
  return out;
}

describe("the rule catalogue", () => {
  it("every rule ID spec/ checks, updates or records is defined in the catalogue", () => {
    const literals = ruleLiterals();
    expect(literals.length).toBeGreaterThan(400);
    expect(literals.filter((l) => ruleById(l.id) === undefined).map((l) => `${l.file}: ${l.id}`)).toEqual([]);
  });

  it("a rule recorded with another (recordedWith) appears only in its own definition, never in a body", () => {
    const recordedWith = new Set(allRules().filter((r) => r.recordedWith !== undefined).map((r) => r.id));
    expect(recordedWith.size).toBeGreaterThan(10);
    const uses = ruleLiterals().filter((l) => recordedWith.has(l.id) && !l.line.startsWith(`{ id: "${l.id}"`));
    expect(uses.map((l) => `${l.file}: ${l.line}`)).toEqual([]);
  });

  it("recordImpliedRules adds the rules recorded with those present, and only those", () => {
    const coverage = new Set(["SYSRET-05", "SYSRET-06"]);
    recordImpliedRules(coverage);
    expect([...coverage].sort()).toEqual(["NMI-05", "SHADOW-08", "SYSRET-05", "SYSRET-06", "SYSRET-08", "SYSRET-10", "SYSRET-V4"]);
    const none = new Set(["SYSRET-01"]);
    recordImpliedRules(none);
    expect([...none]).toEqual(["SYSRET-01"]);
  });

  it("rules are listed once each, sorted by ID with numbers in order", () => {
    const ids = allRules().map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.indexOf("DELIVER-2")).toBe(-1);
    expect(ids.indexOf("DELIVER-09")).toBeLessThan(ids.indexOf("DELIVER-10"));
  });
});
