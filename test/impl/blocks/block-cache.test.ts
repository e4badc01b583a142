// The decoded-block cache (impl/blocks/block-cache.ts) and the compiled functions that die with its
// blocks are invisible to self-modifying code: any write that reaches a code frame — through the
// same block, another page, or a second mapping of the frame — is seen by the next instruction
// fetched from it. Every scenario runs on every engine configuration (helpers.ts runAll) and
// asserts the architectural outcome.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Reg, icedAbs as abs } from "../../../guest/index.ts";
import { CONFIGS, HLT, RAX, RBX, RCX, asm, kernel } from "../helpers.ts";
import { expectAgreesWithSpec, runAllWithSpec as runAll } from "../against-spec.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import type { ArchState } from "../../../contract/state.ts";
import { MAX_CACHED_BLOCKS, MAX_COMPILED_BLOCKS } from "../../../impl/blocks/block-cache.ts";
import { blockBomb } from "../../hostile/cases.ts";

describe("decoded-block cache and compiled blocks: self-modifying code", () => {
  it("a store into the same block changes the instruction executed next (every iteration)", () => {
    // loop: mov [rip+imm8 of the add], cl; add rax, imm8; dec ecx; jnz loop; hlt
    // The add's immediate is the byte after 48 83 C0; it is patched with CL before each add.
    const code = [
      0x88, 0x0d, 0x03, 0x00, 0x00, 0x00, // mov [rip+3], cl  → the imm8 of the add below
      0x48, 0x83, 0xc0, 0x00, //             add rax, imm8 (imm8 patched)
      0xff, 0xc9, //                          dec ecx
      0x75, 0xf2, //                          jnz loop
      0xf4,
    ];
    const out = runAll(kernel(Uint8Array.from(code), undefined, { [RCX]: 10n }), 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RAX]).toBe(55n); // 10 + 9 + ... + 1
  });

  it("a store into another code page changes the routine called next", () => {
    // 0x11000: mov eax, imm32; ret. The caller patches imm32 with ECX, calls, accumulates.
    const code = asm(0x10000n, (p) => {
      const loop = p.here();
      p.add(I.createMemReg(Code.Mov_rm32_r32, abs(0x11001n), Reg.ECX));
      p.add(I.createBranch(Code.Call_rel32_64, 0x11000n));
      p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RBX, Reg.RAX));
      p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
      p.add(I.createBranch(Code.Jne_rel8_64, loop));
      HLT(p);
    });
    const s = kernel(code, (m) => m.write(0x11000n, [0xb8, 0, 0, 0, 0, 0xc3]), { [RCX]: 20n });
    const out = runAll(s, 2000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(210n);
  });

  it("code written through a second mapping of the same frame is seen", () => {
    // The frame of page 0x10000 is also mapped at 0x610000 (PT at 0x4000, entry 0x10, R/W);
    // the loop stores through the alias into its own add immediate.
    const code = [
      0x88, 0x0c, 0x25, 0x0d, 0x00, 0x61, 0x00, // mov [0x61000d], cl  (alias of 0x1000d)
      0x90, 0x90, 0x90,
      0x48, 0x83, 0xc0, 0x00, //                  0x1000a: add rax, imm8 (imm at 0x1000d)
      0xff, 0xc9,
      0x75, 0xee,
      0xf4,
    ];
    const s = kernel(Uint8Array.from(code), (m) => m.write64(0x4000n + 8n * 0x10n, 0x10000n | 3n), { [RCX]: 12n });
    const out = runAll(s, 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RAX]).toBe(78n);
  });
});

/** Runs `s` for `steps` (impl agreeing with spec throughout, expectAgreesWithSpec) to the step
 *  limit: the block budget of the compiled configuration's engine after its run (that run is one of
 *  the runs judged against spec, not a fifth run of the same program). */
function budgetAfterRunAsSpec(s: ArchState, steps: number): ImplEngine["machine"]["blockBudget"] {
  let budget: ImplEngine["machine"]["blockBudget"] | undefined;
  const madeRun = (config: string, n: number) => {
    if (config !== "compiled") return undefined;
    const e = new ImplEngine(CONFIGS.find((c) => c.name === config)!.opts);
    e.load(s, "intel");
    const stop = e.run(n);
    budget = e.machine.blockBudget;
    return { stop, state: e.state(), touched: e.touched() };
  };
  const out = expectAgreesWithSpec(s, steps, "intel", { madeRun });
  expect(out.stop).toEqual({ reason: "limit", steps });
  expect(budget).toBeDefined();
  return budget!;
}

describe("decoded-block cache: bounded", () => {
  it("a guest with more blocks than the cache holds (a block of every two bytes) empties it and runs exactly as spec", () => {
    // 20,000 two-byte blocks > MAX_CACHED_BLOCKS: the cache fills and is emptied while the loop runs.
    const s = blockBomb(MAX_CACHED_BLOCKS + 3_616);
    const budget = budgetAfterRunAsSpec(s, 2 * (MAX_CACHED_BLOCKS + 3_616) + 10);
    expect(budget.flushes).toBeGreaterThan(0);
    expect(budget.blocks).toBeLessThanOrEqual(MAX_CACHED_BLOCKS);
  });

  it("more hot blocks than may stay compiled: the compiled cap empties the cache, results unchanged", () => {
    // 2,500 blocks, each run at least three times: every one is hot enough to compile.
    const blocks = MAX_COMPILED_BLOCKS + 452;
    const s = blockBomb(blocks);
    const budget = budgetAfterRunAsSpec(s, 3 * (blocks + 1) + 7);
    expect(budget.flushes).toBeGreaterThan(0);
    expect(budget.compiled).toBeLessThanOrEqual(MAX_COMPILED_BLOCKS);
  });
});
