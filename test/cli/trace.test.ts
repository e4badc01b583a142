// `ringspec trace` and `ringspec run --trace --explain`: arguments, inputs, outputs, exit status.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { lockstepDivergence, ruleCatalogue } from "../../cli/trace.ts";
import type { Engine } from "../../contract/engine.ts";
import { parseDocument } from "../../contract/load.ts";
import { createEngine } from "../../engines/registry.ts";
import { TRACE_MODEL_FORMAT, type TraceModel } from "../../trace/model/types.ts";
import { DIVERGENCE_FORMAT, divergenceModel, parseDivergence } from "../../trace/model/divergence.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const VECTORS = join(ROOT, "conformance/vectors");
const TMP = mkdtempSync(join(tmpdir(), "ringspec-trace-cli-"));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => void (stdout += t), err: (l) => void (stderr += l + "\n") });
  return { code, stdout, stderr };
}

function embeddedModel(file: string): { kind: string; model: TraceModel } {
  const page = readFileSync(file, "utf8");
  const m = /<script type="application\/json" id="ringspec-data">([\s\S]*?)<\/script>/.exec(page);
  return JSON.parse(m![1]!) as { kind: string; model: TraceModel };
}

describe("ringspec trace", () => {
  it("--html writes one page with the model; --json prints the same model", async () => {
    const out = join(TMP, "roundtrip.html");
    const file = join(VECTORS, "syscall-sysret-roundtrip.json");
    const r = await run(["trace", file, "--max-steps", "4", "--html", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${out}: 2 transitions over 4 steps`);
    const data = embeddedModel(out);
    expect(data.kind).toBe("trace");
    expect(data.model.transitions.map((t) => t.label)).toEqual(["SYSCALL", "SYSRETQ"]);
    expect(data.model.source.command).toBe(`npx ringspec trace ${file} --max-steps 4 --html ${out}`);
    const j = await run(["trace", file, "--max-steps", "4", "--json"]);
    expect(j.code).toBe(0);
    const model = JSON.parse(j.stdout) as TraceModel;
    expect(model.format).toBe(TRACE_MODEL_FORMAT);
    expect(model.transitions).toEqual(data.model.transitions);
  });

  it("--engine impl draws the same transitions and frames", async () => {
    const file = join(VECTORS, "pf-user-read-notpresent.json");
    const spec = JSON.parse((await run(["trace", file, "--json"])).stdout) as TraceModel;
    const impl = JSON.parse((await run(["trace", file, "--json", "--engine", "impl"])).stdout) as TraceModel;
    expect(impl.source).toMatchObject({ engine: "impl", rules: false });
    expect(impl.transitions.map((t) => t.frames)).toEqual(spec.transitions.map((t) => t.frames));
    expect(impl.segments).toEqual(spec.segments);
  });

  it("a kernel: the built-in demo, with its symbols and regstate frames", async () => {
    const r = await run(["trace", "demo", "--engine", "impl", "--max-steps", "1500", "--json"]);
    expect(r.code).toBe(0);
    const model = JSON.parse(r.stdout) as TraceModel;
    expect(model.frameLayout).toBe("regstate");
    expect(model.transitions.some((t) => t.kind === "syscall" && t.to.at !== undefined)).toBe(true);
    expect(model.transitions.some((t) => t.frames.some((f) => f.cells.some((c) => c.field === "regstate.rip")))).toBe(true);
  });

  it("--lockstep: spec and impl agree on a vector, and the page is the trace", async () => {
    const out = join(TMP, "lockstep.html");
    const r = await run(["trace", join(VECTORS, "nmi-ist3.json"), "--lockstep", "--html", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("lockstep: spec and impl agreed at every step");
    expect(embeddedModel(out).kind).toBe("trace");
  });

  it("a lockstep failure becomes a divergence document: the step, both states, the last steps, the replay command", () => {
    // impl with a planted bug: RCX one off after SYSCALL (the return address).
    const broken = (): Engine => {
      const inner = createEngine("impl");
      let steps = 0;
      return {
        load: (s, p) => { steps = 0; inner.load(s, p); },
        step: () => { steps++; return inner.step(); },
        run: (n) => inner.run(n),
        raise: (e) => inner.raise(e),
        touched: () => inner.touched(),
        state: () => {
          const s = inner.state();
          return steps >= 1 ? { ...s, gpr: s.gpr.map((v, i) => (i === 1 ? v + 1n : v)) } : s;
        },
      };
    };
    const file = join(VECTORS, "syscall-sysret-roundtrip.json");
    const doc = lockstepDivergence(file, parseDocument(readFileSync(file, "utf8")).state, "intel", 10, 10_000, "npx ringspec trace x --lockstep", {
      a: () => createEngine("spec", { rules: true }), b: broken, names: { a: "spec", b: "impl-broken" },
    })!;
    expect(doc).not.toBeNull();
    expect(doc.step).toBe(1);
    expect(doc.engines).toEqual({ a: "spec", b: "impl-broken" });
    expect(doc.differences).toEqual([{ field: "regs.rcx", a: "0x200002", b: "0x200003" }]);
    expect(doc.last_steps!.map((r) => r.step)).toEqual([1]);
    expect(doc.rules).toContain("SYSCALL-03");
    expect(doc.replay).toBe(`npx ringspec run ${file} --trace --max-steps 1 --profile intel --engine spec   # and --engine impl-broken; page: npx ringspec trace x --lockstep`);
    const model = divergenceModel(parseDivergence(doc), ruleCatalogue);
    expect(model.rows.filter((r) => r.differs).map((r) => r.field)).toEqual(["regs.rcx"]);
    expect(model.events.a).toBe("retired at 0x200000");
  });

  it("a divergence document becomes a divergence page", async () => {
    const state = JSON.parse(readFileSync(join(VECTORS, "syscall-basic.json"), "utf8")).initial;
    const { memory: _m, ...noMemory } = state;
    const doc = {
      format: DIVERGENCE_FORMAT, engines: { a: "spec", b: "qemu" }, step: 1, events: { a: "retired at 0x200000", b: "retired at 0x200000" },
      states: { a: noMemory, b: { ...noMemory, regs: { ...noMemory.regs, rcx: "0x1234" } } },
      differences: [{ field: "regs.rcx", a: noMemory.regs.rcx, b: "0x1234" }], replay: "npx ringspec run x.json --trace",
    };
    const file = join(TMP, "divergence.json");
    writeFileSync(file, JSON.stringify(doc));
    const out = join(TMP, "divergence.html");
    const r = await run(["trace", file, "--html", out]);
    expect(r.code).toBe(0);
    const data = embeddedModel(out) as unknown as { kind: string; model: { rows: { field: string; differs: boolean }[] } };
    expect(data.kind).toBe("divergence");
    expect(data.model.rows.filter((x) => x.differs).map((x) => x.field)).toEqual(["regs.rcx"]);
    writeFileSync(file, JSON.stringify({ ...doc, step: "one" }));
    const bad = await run(["trace", file, "--json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`ringspec: ${file}: step: Invalid input: expected number, received string\n`);
  });

  it("bad arguments and inputs: one line, exit 2", async () => {
    const file = join(VECTORS, "syscall-basic.json");
    expect(await run(["trace", file])).toMatchObject({ code: 2, stderr: "ringspec: trace: expected --html OUT or --json (see trace --help)\n" });
    expect(await run(["trace"])).toMatchObject({ code: 2 });
    expect(await run(["trace", join(TMP, "missing.json"), "--json"])).toMatchObject({ code: 2 });
    expect(await run(["trace", file, "--json", "--frame", "nosuch"])).toMatchObject({ code: 2, stderr: expect.stringContaining("nosuch: no such file") });
    const layout = join(TMP, "layout.json");
    writeFileSync(layout, JSON.stringify({ name: "regs", fields: ["a", "b<script>"], rip: "a" }));
    expect(await run(["trace", file, "--json", "--frame", layout])).toMatchObject({ code: 2, stderr: expect.stringContaining("fields: expected 1 to 64 field names") });
    expect(await run(["trace", "demo", "--lockstep", "--json"])).toMatchObject({ code: 2 });
    expect(await run(["trace", "demo", "--engine", "qemu", "--json"])).toMatchObject({ code: 2, stderr: expect.stringContaining("a kernel runs on spec or impl, not qemu") });
    expect(await run(["trace", file, "--html", join(TMP, "no/such/dir/x.html")])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^ringspec: --html .*no\/such\/dir\/x\.html: /) });
  });

  it("--symbols names addresses, from nm output or JSON; a bad line is named", async () => {
    const file = join(VECTORS, "syscall-sysret-roundtrip.json");
    const nm = join(TMP, "syms.nm");
    writeFileSync(nm, "0000000000230000 T entry_SYSCALL_64\n                 U printk\n0000000000200000 t user_loop\n");
    const model = JSON.parse((await run(["trace", file, "--max-steps", "2", "--json", "--symbols", nm])).stdout) as TraceModel;
    expect(model.transitions.map((t) => [t.from.at, t.to.at])).toEqual([["user_loop", "entry_SYSCALL_64"], ["entry_SYSCALL_64", "user_loop+0x2"]]);
    const json = join(TMP, "syms.json");
    writeFileSync(json, JSON.stringify({ entry_SYSCALL_64: "0x230000" }));
    const m2 = JSON.parse((await run(["trace", file, "--max-steps", "1", "--json", "--symbols", json])).stdout) as TraceModel;
    expect(m2.transitions[0]!.to.at).toBe("entry_SYSCALL_64");
    writeFileSync(nm, "0000000000230000 T entry_SYSCALL_64\nnot an nm line at all\n");
    expect(await run(["trace", file, "--json", "--symbols", nm])).toMatchObject({ code: 2, stderr: `ringspec: ${nm}: line 2: expected "ADDRESS TYPE NAME" (nm output)\n` });
    writeFileSync(json, JSON.stringify({ "bad name<": "0x1" }));
    expect(await run(["trace", file, "--json", "--symbols", json])).toMatchObject({ code: 2, stderr: expect.stringContaining("is not a symbol name") });
  });

  it("--help", async () => {
    const r = await run(["trace", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: ringspec trace FILE (--html OUT | --json)");
  });
});

describe("ringspec run --trace --explain", () => {
  it("prints each transition's sequence and frame after its trace line", async () => {
    const r = await run(["run", join(VECTORS, "pf-user-read-notpresent.json"), "--trace", "--explain"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^1  0x200000  mov 0x401000,%rax  \[delivered vector 14 \(exception\) error code 0x4\]/);
    expect(lines[1]).toBe("    #PF(0x4) from CPL 3 at 0x200000: mov 0x401000,%rax");
    expect(r.stdout).toContain("      ✗ PF-NP       A not-present entry (P = 0) at any level ends the walk: #PF with P = 0 — raises #PF(0x4)");
    expect(r.stdout).toContain("      • DELIVER-12  new RSP ← TSS.RSP0 = 0x20000");
    expect(r.stdout).toContain("    frame: 6 slots pushed on TSS.RSP0");
    expect(lines.some((l) => /^2  0xb0e0  hlt  \[halted\]/.test(l))).toBe(true);
  });

  it("--explain needs --trace and no --json", async () => {
    const file = join(VECTORS, "syscall-basic.json");
    expect(await run(["run", file, "--explain"])).toMatchObject({ code: 2 });
    expect(await run(["run", file, "--trace", "--json", "--explain"])).toMatchObject({ code: 2 });
  });
});
