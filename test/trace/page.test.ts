// The page renderer: one self-contained document; input (titles, symbols, disassembly, paths)
// reaches it only as escaped JSON data; and the divergence document's validation and model.
import { describe, expect, it } from "vitest";
import { escapeHtml, renderPage, scriptJson } from "../../trace/html/render.ts";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DIVERGENCE_FORMAT, DivergenceError, divergenceJsonSchemaText, divergenceModel, parseDivergence } from "../../trace/model/divergence.ts";
import { stateToJson } from "../../contract/state.ts";
import { ruleCatalogue } from "../../cli/trace.ts";
import { modelOf, vectorState } from "./helpers.ts";

const HOSTILE = `</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)> \u2028 & "quoted" 'single'`;

/** The JSON embedded in a page, decoded. */
function embedded(page: string): unknown {
  const m = /<script type="application\/json" id="ringspec-data">([\s\S]*?)<\/script>/.exec(page);
  if (m === null) throw new Error("no data element");
  return JSON.parse(m[1]!);
}

describe("trace/html: the page", () => {
  it("is one document with its styles and script inline, nothing to fetch, and a policy that forbids fetching", () => {
    const page = renderPage({ kind: "trace", model: modelOf(vectorState("syscall-sysret-roundtrip"), { steps: 3 }) });
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"`);
    expect(page).not.toMatch(/<(link|img|iframe|object|embed)\b/i);
    expect(page).not.toMatch(/\bsrc=|@import|url\((?!#)/i);
    // The one address: SVG's namespace name, an identifier that is never fetched.
    expect(page.replaceAll("http://www.w3.org/2000/svg", "")).not.toMatch(/https?:\/\//);
    expect(page.match(/<script\b/g)).toHaveLength(2); // the data and the page script
  });

  it("a hostile title, symbol and disassembly cannot end the data element or add markup", () => {
    const model = modelOf(vectorState("syscall-sysret-roundtrip"), { steps: 3, title: HOSTILE, symbols: new Map([[HOSTILE.replace(/\s/g, "_"), 0x230000n]]) });
    const tampered = { ...model, steps: model.steps.map((s) => (s.instruction === null ? s : { ...s, instruction: { ...s.instruction, disassembly: HOSTILE } })) };
    const page = renderPage({ kind: "trace", model: tampered });
    expect(page).not.toContain("<script>alert");
    expect(page).not.toContain("<img");
    expect(page).not.toContain("<!-- <");
    expect(page.match(/<\/script>/g)).toHaveLength(2);
    expect(page).toContain(`<title>${escapeHtml(HOSTILE)} — ringspec trace</title>`);
    const data = embedded(page) as { model: typeof tampered };
    expect(data.model.title).toBe(HOSTILE);
    expect(data.model.steps[0]!.instruction!.disassembly).toBe(HOSTILE);
    expect(data.model.transitions[0]!.to.at).toBe(HOSTILE.replace(/\s/g, "_"));
  });

  it("scriptJson escapes what could end a script element and still parses back", () => {
    const text = scriptJson({ s: "</script><!--\u2028\u2029&>" });
    expect(text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual({ s: "</script><!--\u2028\u2029&>" });
  });
});

function divergenceDoc(overrides: Record<string, unknown> = {}) {
  const a = vectorState("syscall-basic");
  const b = { ...a, gpr: a.gpr.map((v, i) => (i === 1 ? v + 1n : v)), rflags: a.rflags ^ 0x200n };
  const strip = (s: typeof a) => {
    const { memory: _m, ...rest } = stateToJson(s);
    return rest;
  };
  return {
    format: DIVERGENCE_FORMAT,
    engines: { a: "spec", b: "emulator" },
    step: 3,
    events: { a: "retired at 0x200000", b: "retired at 0x200000" },
    states: { a: strip(a), b: strip(b) },
    differences: [
      { field: "regs.rcx", a: "0x" + a.gpr[1]!.toString(16), b: "0x" + (a.gpr[1]! + 1n).toString(16) },
      { field: "regs.rflags", a: "0x" + a.rflags.toString(16), b: "0x" + (a.rflags ^ 0x200n).toString(16) },
      { field: "memory@0x1ff8", a: "0000000000000000", b: "0100000000000000" },
    ],
    replay: "npx ringspec run case.json --trace --max-steps 3",
    rules: ["PF-ACCESSED", "RF-01", "SYSCALL-03", "SYSCALL-04"],
    ...overrides,
  };
}

describe("trace/model/divergence: the ringspec-divergence/1 document", () => {
  it("lists both states whole and marks exactly the differing fields", () => {
    const model = divergenceModel(parseDivergence(divergenceDoc()), ruleCatalogue);
    expect(model.title).toBe("spec and emulator diverge at step 3");
    expect(model.rows.filter((r) => r.differs).map((r) => r.field)).toEqual(["regs.rcx", "regs.rflags", "memory@0x1ff8"]);
    expect(model.rows.length).toBeGreaterThan(100);
    const rip = model.rows.find((r) => r.field === "regs.rip")!;
    expect(rip.a).toBe(rip.b);
    expect(model.rows.find((r) => r.field === "sregs.cs.selector")).toMatchObject({ group: "segment CS", differs: false });
    expect(model.rulesHit).toEqual(["PF-ACCESSED", "RF-01", "SYSCALL-03", "SYSCALL-04"]);
    expect(model.rules["SYSCALL-03"]!.source).toContain("SYSCALL");
  });

  it("bad documents get one line naming the field", () => {
    expect(() => parseDivergence({ ...divergenceDoc(), step: -1 })).toThrow(DivergenceError);
    expect(() => parseDivergence({ ...divergenceDoc(), step: -1 })).toThrow(/^step: /);
    expect(() => parseDivergence({ ...divergenceDoc(), extra: 1 })).toThrow("extra: unknown field");
    expect(() => parseDivergence(divergenceDoc({ engines: { a: "spec" } }))).toThrow(/^engines\.b: /);
    const bad = divergenceDoc();
    (bad.states.a.regs as Record<string, string>).rax = "zz";
    expect(() => parseDivergence(bad)).toThrow(/^states\.a\.regs\.rax: /);
  });

  it("the committed trace/divergence.schema.json equals the generated one (regenerate: node cli/bin.js schema divergence > trace/divergence.schema.json)", () => {
    const committed = readFileSync(fileURLToPath(new URL("../../trace/divergence.schema.json", import.meta.url)), "utf8");
    expect(committed).toBe(divergenceJsonSchemaText());
    const schema = JSON.parse(committed) as { required: string[] };
    expect(schema.required).toEqual(["format", "engines", "step", "events", "states", "differences", "replay"]);
  });

  it("renders as a divergence page with the replay command as data", () => {
    const model = divergenceModel(parseDivergence(divergenceDoc({ replay: HOSTILE })), ruleCatalogue);
    const page = renderPage({ kind: "divergence", model });
    expect(page).not.toContain("<script>alert");
    expect((embedded(page) as { kind: string; model: { replay: string } }).model.replay).toBe(HOSTILE);
  });
});
