// The loader's compiled parsers come from contract/load-sections.generated.ts, generated ahead by
// zod's compileFn (contract/load-sections.ts). This test keeps that file what compileFn generates
// now (run it with -u to write the file again), and checks that a process uses every generated
// parser and falls back to compileFn where one is missing or does not fit. That the parsers give
// the runtime's output and errors is test/contract/zod-modes.test.ts's.
import { describe, expect, it } from "vitest";
import { StateFileJson, VectorJson } from "../../contract/schema.ts";
import { generatedFor, generatedSectionsText, withCompiledSections, type GeneratedSections } from "../../contract/load-sections.ts";
import { GENERATED_SECTIONS } from "../../contract/load-sections.generated.ts";

const DOCUMENTS = { "ringspec-vector/1": VectorJson, "ringspec-state/1": StateFileJson };

/** How withCompiledSections made each section's parser, by place. */
function howEachSection(schema: typeof VectorJson | typeof StateFileJson, sections: GeneratedSections, format: string): Record<string, string> {
  const how: Record<string, string> = {};
  withCompiledSections(schema, generatedFor(sections, format), (at, source) => (how[at.join(".")] = source));
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
