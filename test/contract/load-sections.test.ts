// The loader's compiled parsers come from contract/load-sections.generated.ts, generated ahead by
// zod's compileFn (contract/load-sections.ts). This test keeps that file what compileFn generates
// now (run it with -u to write the file again), and checks that a process uses every generated
// parser and falls back to compileFn where one is missing or does not fit. That the parsers give
// the runtime's output and errors is test/contract/zod-modes.test.ts's.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { readFileSync } from "node:fs";
import { DOCUMENT_SCHEMAS, JITLESS, validated } from "../../contract/load.ts";
import { StateFileJson, VectorJson } from "../../contract/schema.ts";
import { generatedFor, generatedSectionsText, withCompiledSections, type GeneratedSections } from "../../contract/load-sections.ts";
import { GENERATED_SECTIONS } from "../../contract/load-sections.generated.ts";

const DOCUMENTS = DOCUMENT_SCHEMAS;

/** How withCompiledSections made each section's parser (generated or compileFn), by place. */
function howEachSection(schema: typeof VectorJson | typeof StateFileJson, sections: GeneratedSections, format: string): Record<string, string> {
  const how: Record<string, string> = {};
  withCompiledSections(schema, generatedFor(sections, format), (at, source) => {
    if (source !== "whole form first") how[at.join(".")] = source;
  });
  return how;
}

describe("the generated section parsers (contract/load-sections.generated.ts)", () => {
  it("are what zod's compileFn generates from today's schemas", async () => {
    await expect(generatedSectionsText(DOCUMENTS)).toMatchFileSnapshot("../../contract/load-sections.generated.ts");
  });

  it("are each used, at every section of both documents", () => {
    for (const [format, schema] of Object.entries(DOCUMENTS)) {
      const how = howEachSection(schema, GENERATED_SECTIONS, format);
      expect(Object.keys(how).length, format).toBe(GENERATED_SECTIONS.documents[format]!.length);
      expect(new Set(Object.values(how)), format).toEqual(new Set(["generated"]));
    }
    expect(Object.keys(howEachSection(VectorJson, GENERATED_SECTIONS, "ringspec-vector/1"))).toEqual(
      expect.arrayContaining(["initial.regs", "initial.sregs.cs", "initial.msrs", "initial.memory", "expected.regs.innerType", "expected.sregs.innerType.cs.innerType", "expected.msrs.innerType"]),
    );
  });

  it("give way to compileFn for another zod version, a section they lack, or a constant not where they say", () => {
    const format = "ringspec-vector/1";
    const mine = GENERATED_SECTIONS.documents[format]!;
    const compiledAll = (sections: GeneratedSections) => new Set(Object.values(howEachSection(VectorJson, sections, format)));
    expect(compiledAll({ zod: "0.0.0", documents: GENERATED_SECTIONS.documents })).toEqual(new Set(["compileFn"]));
    const without = { zod: GENERATED_SECTIONS.zod, documents: { [format]: mine.slice(1) } };
    const how = howEachSection(VectorJson, without, format);
    expect(how[mine[0]!.at.join(".")]).toBe("compileFn");
    expect(Object.values(how).filter((h) => h === "compileFn")).toHaveLength(1);
    const moved = mine.map((g) => ({ ...g, constants: g.constants.map((c) => ("at" in c ? { ...c, at: ["nowhere"] } : c)) }));
    const hasPlaced = mine.map((g) => g.constants.some((c) => "at" in c));
    const howMoved = howEachSection(VectorJson, { zod: GENERATED_SECTIONS.zod, documents: { [format]: moved } }, format);
    mine.forEach((g, i) => expect(howMoved[g.at.join(".")], g.at.join(".")).toBe(hasPlaced[i] ? "compileFn" : "generated"));
  });
});

describe("a partial section (expected's registers, segments, MSRs)", () => {
  const VECTOR = JSON.parse(readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8")) as {
    expected: { sregs: { cs: Record<string, unknown> }; regs: Record<string, unknown>; msrs: Record<string, unknown> };
  };
  const compiled = withCompiledSections(VectorJson, generatedFor(GENERATED_SECTIONS, "ringspec-vector/1"));
  const outcome = (schema: z.ZodType, value: unknown) => {
    try {
      return { data: validated(schema, value, JITLESS) };
    } catch (e) {
      return { error: (e as Error).message };
    }
  };

  it("runs its whole form's parser first: expected's regs, segments and MSRs have one", () => {
    const wholeFirst: string[] = [];
    withCompiledSections(VectorJson, generatedFor(GENERATED_SECTIONS, "ringspec-vector/1"), (at, source) => {
      if (source === "whole form first") wholeFirst.push(at.join("."));
    });
    expect(wholeFirst.sort()).toEqual(["expected.msrs.innerType", "expected.regs.innerType", "expected.sregs.innerType.cs.innerType"]);
  });

  it("gives what zod's runtime gives with every field, a field left out (no default filled in), one undefined, or one more", () => {
    const cases: ((doc: typeof VECTOR) => void)[] = [
      () => {},
      (d) => delete d.expected.sregs.cs["unusable"],
      (d) => delete d.expected.msrs["SYSENTER_CS"],
      (d) => delete d.expected.regs["rax"],
      (d) => (d.expected.sregs.cs["unusable"] = undefined),
      (d) => (d.expected.sregs.cs["surplus"] = 0),
      (d) => (d.expected.regs["rax"] = "0xzz"),
      (d) => (d.expected.sregs.cs["dpl"] = 4),
    ];
    for (const edit of cases) {
      const doc = structuredClone(VECTOR);
      doc.expected.sregs.cs["unusable"] ??= 0;
      for (const k of ["SYSENTER_CS", "SYSENTER_ESP", "SYSENTER_EIP", "APIC_BASE"]) doc.expected.msrs[k] ??= "0x0";
      edit(doc);
      const runtime = outcome(VectorJson, doc);
      expect(outcome(compiled, doc), edit.toString()).toEqual(runtime);
    }
    const left = structuredClone(VECTOR);
    delete left.expected.sregs.cs["unusable"];
    const loaded = outcome(compiled, left) as { data: { expected: { sregs: { cs: Record<string, unknown> } } } };
    expect("unusable" in loaded.data.expected.sregs.cs).toBe(false);
  });
});
