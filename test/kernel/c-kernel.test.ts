// The C kernel (kernel/c): its committed build, the instruction list generated from it, and its
// whole run on spec and impl in lockstep, checked by the context-switch invariants.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cKernelCheck, INSTRUCTIONS_FILE, instructionsMarkdown } from "../../kernel/c/instructions.ts";
import { formOf, parseObjdump } from "../../kernel/c/inventory.ts";
import { compareStates } from "../../kernel/engines.ts";

/** kernel/c/loader.json's memory_size. */
const MEMORY_SIZE = 0x400000n;
const IMAGE = new Uint8Array(readFileSync(new URL("../../kernel/c/build/kernel.elf", import.meta.url)));

describe("the C kernel", () => {
  it("kernel/c/INSTRUCTIONS.md is what the committed build and today's engines give (npm run kernel:instructions)", () => {
    expect(readFileSync(INSTRUCTIONS_FILE, "utf8")).toBe(instructionsMarkdown());
  }, 600_000); // it runs the kernel on both engines (the runs the tests below check)

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

  it("runs to completion on spec and impl in lockstep: no divergence, every process's lines on the console, exit 0, every context-switch invariant holding", () => {
    const report = cKernelCheck("spec"); // a lockstep run with impl, the checker watching
    for (const i of report.invariants) {
      expect({ invariant: i.invariant, violations: i.violations.map((v) => v.message) }).toEqual({ invariant: i.invariant, violations: [] });
      expect(i.checks).toBeGreaterThan(100);
    }
    const r = report.run;
    expect(r.divergence).toBeUndefined();
    expect(r.stop).toBe("exit");
    expect(r.exitValue).toBe(0);
    expect(r.compared).toBe(r.steps);
    expect(r.comparedStates).toBeGreaterThan(r.steps / 16);
    const lines = new TextDecoder().decode(r.console).split("\n");
    for (const line of [
      "[kernel] 5 processes; timer every 4000 instructions",
      "[kernel] process 3 (fault) killed: page fault at 0xdead000 (write, not present) rip 0x40000027",
      "[kernel] process 5 (edge) killed: cannot return to 0x800000000000 (not canonical)",
      "printer: line 3 of 3",
      "syscalls: 64 getpid calls summed to 64",
      "compute: checksum 0xbcc2c96e136",
      "[kernel] halting: exit code 0 after 30 ticks",
    ]) expect(lines).toContain(line);
  }, 600_000);

  // impl's side of the same lockstep run (kernel/c/instructions.ts cKernelCheck), judged on its own:
  // its own event count, console, final state and checker (watching impl's own events and states),
  // and at the end impl itself says it has exited (its run(0); otherwise the lockstep diverges and
  // impl's side is its own run alone). Its step count is the lockstep's by construction, so it is
  // not compared; the instructions are counted from impl's own events.
  it("impl's run ends like spec's: the same instructions, console and final state (all guest memory), every invariant holding on impl's own events and states", () => {
    const spec = cKernelCheck("spec");
    const impl = cKernelCheck("impl");
    expect(impl.run.stop).toBe("exit");
    expect(impl.run.instructions).toBe(spec.run.instructions);
    expect(impl.consoleText).toBe(spec.consoleText);
    expect(compareStates(impl.run.state, spec.run.state, [{ start: 0n, end: MEMORY_SIZE }])).toEqual([]);
    for (const i of impl.invariants) expect({ invariant: i.invariant, passed: i.passed, count: i.count }).toEqual({ invariant: i.invariant, passed: true, count: 0 });
  }, 600_000);
});
