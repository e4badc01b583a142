// The C kernel (kernel/c): its committed build, the instruction list generated from it, and how
// far it runs on the engines today.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INSTRUCTIONS_FILE, instructionsMarkdown } from "../../kernel/c/instructions.ts";
import { formOf, parseObjdump } from "../../kernel/c/inventory.ts";
import { loadKernel } from "../../kernel/loader/index.ts";
import { runKernel } from "../../kernel/run.ts";

const IMAGE = new Uint8Array(readFileSync(new URL("../../kernel/c/build/kernel.elf", import.meta.url)));

describe("the C kernel", () => {
  it("kernel/c/INSTRUCTIONS.md is what the committed build and today's engines give (npm run kernel:instructions)", () => {
    expect(readFileSync(INSTRUCTIONS_FILE, "utf8")).toBe(instructionsMarkdown());
  });

  it("the objdump listing and iced-x86 agree on the bytes of every instruction", () => {
    const listed = parseObjdump(readFileSync(new URL("../../kernel/c/build/kernel.objdump", import.meta.url), "utf8"), "kernel");
    expect(listed.length).toBeGreaterThan(1000);
    const text = IMAGE.subarray(0x1000); // .text is the first segment, at file offset 0x1000 = 0x100000
    for (const insn of listed.slice(0, 300)) {
      const at = Number(insn.address - 0x100000n);
      expect([...text.subarray(at, at + insn.bytes.length)]).toEqual([...insn.bytes]);
      expect(formOf(insn.bytes).name).not.toBe("(invalid)");
    }
  });

  it("runs in lockstep on spec and impl until an instruction outside today's model, where both stop `unsupported` with its bytes", () => {
    const r = runKernel(loadKernel(IMAGE).state, { engine: "spec", profile: "intel", maxSteps: 100_000, timeoutMs: 60_000, consoleLimit: 65536, lockstep: true });
    expect(r.divergence).toBeUndefined();
    expect(r.stop).toBe("unsupported");
    expect(r.event?.kind === "unsupported" ? [...r.event.bytes] : []).toEqual([0xf0, 0x0f, 0xb1]); // LOCK CMPXCHG
  });
});
