// Free runs (runFreeTo), the way `ringspec bench --against` times a loop inside QEMU and Bochs:
// with their per-event logs off, each emulator runs a SYSCALL/SYSRETQ loop of N round trips
// unobserved to the breakpoint at its end, and stops there with the registers the spec computes
// for the same program. Costs are reported, never asserted.
import { afterAll, describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { BochsEngine } from "../../engines/bochs/engine.ts";
import { liveChildren } from "../../engines/host/process.ts";
import { Assembler, Code, Register as R, buildGuest, defineLayout } from "../../guest/index.ts";
import { emitSyscallEntry } from "../helpers/syscall-entry.ts";

const ROUND_TRIPS = 500n;

/** A user loop: syscall; inc r12; dec r15; jnz — the entry saves RSP in the per-CPU area and
 *  returns with SYSRETQ; the end is a jump to itself on a page of its own. */
function syscallLoop(): { state: ArchState; end: bigint } {
  const l = defineLayout({ msrs: { fmask: 0x47700n } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Syscall)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Jmp_rel32_64, "end");
  a.section(l.code.user + 0x1000n, { name: "end" }).label("end").emit(Code.Jmp_rel8_64, "end");
  emitSyscallEntry(a, l, "entry");
  const image = a.assemble();
  const { state } = buildGuest(l, { code: image, start: { ring: 3, regs: { r15: ROUND_TRIPS } } });
  return { state, end: image.symbol("end") };
}

/** The spec's state when RIP first reaches `end`. */
function specAtEnd(state: ArchState, end: bigint): ArchState {
  const spec = new SpecEngine();
  spec.load(state, "intel");
  for (let i = 0; i < 100_000 && spec.state().rip !== end; i++) spec.step();
  return spec.state();
}

afterAll(() => expect(liveChildren()).toBe(0));

describe("free runs to a breakpoint (the benchmarks' timing)", () => {
  const { state, end } = syscallLoop();
  const expected = specAtEnd(state, end);

  it("the spec reaches the end with the loop's counts (the reference for the emulators)", () => {
    expect(expected.rip).toBe(end);
    expect(expected.gpr[12]).toBe(ROUND_TRIPS);
    expect(expected.gpr[15]).toBe(0n);
  });

  for (const [name, open] of [
    ["qemu", () => new QemuEngine({ interruptLog: false })],
    ["bochs", () => new BochsEngine({ cpuDebugLog: false })],
  ] as const) {
    it(`${name} runs free to the end and stops there with the spec's registers`, async () => {
      const engine = open();
      try {
        await engine.load(state, "intel");
        const cost = await engine.runFreeTo(end, 120_000);
        expect(cost.wallSeconds).toBeGreaterThanOrEqual(0);
        const after = await engine.state();
        expect(after.rip).toBe(end);
        expect(after.gpr).toEqual(expected.gpr);
        expect(after.rflags).toBe(expected.rflags);
        expect(after.cs.selector).toBe(expected.cs.selector);
        // Without the per-event log, stepping is refused rather than answered wrongly.
        await expect(engine.step()).rejects.toThrow(/only runs free/);
      } finally {
        await engine.close();
      }
    });
  }
});
