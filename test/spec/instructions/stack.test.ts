// STACK-01/02 (PUSH/POP forms) and FLAGS-01/02 (PUSHF/POPF, the CPL × IOPL matrix).
import { describe, expect, it } from "vitest";
import { RAX, RBX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { kernelMachine, userMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, mem, reg, run } from "./build.ts";

const STACK = 0x1f000n;
const DATA = 0x30000n;
const M64 = (1n << 64n) - 1n;
const kernel = () => withRegs(kernelMachine(), { rsp: STACK });

describe("STACK-01: PUSH", () => {
  it("PUSH r64 stores 8 bytes below RSP", () => {
    const m = run(withRegs(kernel(), { rbx: 0x1122_3344_5566_7788n }), insn("push", [reg(RBX)]));
    expect(m.gpr[RSP]).toBe(STACK - 8n);
    expect(m.memory.read(STACK - 8n, 8)).toBe(0x1122_3344_5566_7788n);
  });
  it("PUSH RSP pushes the value RSP had before the push", () => {
    const m = run(kernel(), insn("push", [reg(RSP)]));
    expect(m.memory.read(STACK - 8n, 8)).toBe(STACK);
  });
  it("PUSH imm8 (6A) pushes the sign-extended 64-bit value", () => {
    const m = run(kernel(), insn("push", [imm(M64, 8)]));
    expect(m.memory.read(STACK - 8n, 8)).toBe(M64);
  });
  it("with a 66 prefix PUSH moves RSP by 2", () => {
    const m = run(withRegs(kernel(), { rax: 0xabcdn }), insn("push", [reg(RAX, 2)], { operandSize: 2 }));
    expect(m.gpr[RSP]).toBe(STACK - 2n);
    expect(m.memory.read(STACK - 2n, 2)).toBe(0xabcdn);
  });
  it("PUSH r/m64 from GS-relative memory (pushq %gs:0x1000)", () => {
    const m0 = { ...withBytes(kernel(), DATA + 0x1000n, [1, 2, 3, 4, 5, 6, 7, 8]), gs: { ...kernelMachine().gs, base: DATA } };
    const m = run(m0, insn("push", [mem({ size: 8, disp: 0x1000n, segment: "gs" })]));
    expect(m.memory.read(STACK - 8n, 8)).toBe(0x0807_0605_0403_0201n);
  });
  it("PUSH [RSP] reads with the old RSP", () => {
    const m0 = withBytes(kernel(), STACK, [0x99]);
    const m = run(m0, insn("push", [mem({ size: 8, base: RSP })]));
    expect(m.memory.read(STACK - 8n, 8)).toBe(0x99n);
  });
  it("a non-canonical RSP faults #SS(0), not #GP", () => {
    const r = exec(withRegs(kernel(), { rsp: 0x8000_0000_0000_0000n }), insn("push", [reg(RAX)]));
    expect(r.fault).toMatchObject({ vector: 12, errorCode: 0 });
  });
});

describe("STACK-02: POP", () => {
  it("POP r64 loads and moves RSP up", () => {
    const m0 = withBytes(kernel(), STACK, [0x11, 0x22]);
    const m = run(m0, insn("pop", [reg(RBX)]));
    expect(m.gpr[RBX]).toBe(0x2211n);
    expect(m.gpr[RSP]).toBe(STACK + 8n);
  });
  it("POP RSP leaves the popped value in RSP", () => {
    const m0 = withBytes(kernel(), STACK, [0x00, 0x40, 0x01]);
    expect(run(m0, insn("pop", [reg(RSP)])).gpr[RSP]).toBe(0x14000n);
  });
  it("POP [RSP+8] computes the address with RSP after the pop", () => {
    const m0 = withBytes(kernel(), STACK, [0x5a]);
    const m = run(m0, insn("pop", [mem({ size: 8, base: RSP, disp: 8n })]));
    expect(m.memory.read(STACK + 16n, 8)).toBe(0x5an);
    expect(m.memory.read(STACK + 8n, 8)).toBe(0n);
  });
  it("16-bit POP AX merges into RAX and moves RSP by 2", () => {
    const m0 = withBytes(withRegs(kernel(), { rax: M64 }), STACK, [0x34, 0x12]);
    const m = run(m0, insn("pop", [reg(RAX, 2)], { operandSize: 2 }));
    expect(m.gpr[RAX]).toBe(0xffff_ffff_ffff_1234n);
    expect(m.gpr[RSP]).toBe(STACK + 2n);
  });
  it("POP to a not-present page faults #PF W=1 and leaves RSP unchanged", () => {
    const r = exec(kernel(), insn("pop", [mem({ size: 8, disp: 0x600000n })]));
    expect(r.fault).toMatchObject({ vector: 14, errorCode: 0b010 });
    expect(r.m.gpr[RSP]).toBe(STACK);
  });
});

describe("FLAGS-01: PUSHF/PUSHFQ", () => {
  it("the image shows RF and VM as 0 and every other bit as it is", () => {
    const live = 2n | RFLAGS.CF | RFLAGS.IF | RFLAGS.AC | RFLAGS.ID | RFLAGS.VIF | (3n << 12n);
    const m = run({ ...kernel(), rflags: live | RFLAGS.RF | RFLAGS.VM }, insn("pushf", []));
    expect(m.memory.read(STACK - 8n, 8)).toBe(live);
  });
  it("16-bit PUSHF pushes FLAGS (bits 15:0) only", () => {
    const m = run({ ...kernel(), rflags: 2n | RFLAGS.AC | RFLAGS.OF }, insn("pushf", [], { operandSize: 2 }));
    expect(m.gpr[RSP]).toBe(STACK - 2n);
    expect(m.memory.read(STACK - 2n, 2)).toBe(2n | RFLAGS.OF);
  });
  it("does not fault at CPL 3 with IOPL 0", () => {
    const r = exec({ ...userMachine(), rflags: 0x202n }, insn("pushf", []));
    expect(r.fault).toBeUndefined();
    expect(r.m.memory.read(0x210000n - 8n, 8)).toBe(0x202n);
  });
});

/** A machine at `cpl` (0–3) with RFLAGS = IOPL `iopl` | extra, and `image` on top of the stack. */
function popfMachine(cpl: number, iopl: number, extra: bigint, image: bigint): Machine {
  const base = cpl === 3 ? userMachine() : kernel();
  const m0 = cpl === 3 || cpl === 0 ? base : { ...base, cs: { ...base.cs, selector: base.cs.selector | cpl } };
  const rsp = m0.gpr[RSP]!;
  return { ...withBytes(m0, rsp, bytes8(image)), rflags: 2n | (BigInt(iopl) << 12n) | extra };
}

function bytes8(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

describe("FLAGS-02: POPFQ by CPL and IOPL", () => {
  // Flags any CPL may load with POPFQ.
  const ALWAYS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.TF | RFLAGS.DF | RFLAGS.OF | RFLAGS.NT | RFLAGS.AC | RFLAGS.ID;
  for (const cpl of [0, 1, 2, 3]) {
    for (const iopl of [0, 1, 2, 3]) {
      it(`CPL ${cpl}, IOPL ${iopl}: popping all ones sets IF ${cpl <= iopl ? "" : "not "}and IOPL ${cpl === 0 ? "3" : "unchanged"}; RF, VM, VIP stay 0, VIF kept`, () => {
        const m = run(popfMachine(cpl, iopl, RFLAGS.VIF, M64), insn("popf", []));
        const expected = 2n | ALWAYS | RFLAGS.VIF | (cpl <= iopl ? RFLAGS.IF : 0n) | (BigInt(cpl === 0 ? 3 : iopl) << 12n);
        expect(m.rflags).toBe(expected);
      });
      it(`CPL ${cpl}, IOPL ${iopl}: popping 0 clears IF only if CPL ≤ IOPL, IOPL only at CPL 0 (no fault)`, () => {
        const m = run(popfMachine(cpl, iopl, RFLAGS.IF | RFLAGS.CF | RFLAGS.AC, 0n), insn("popf", []));
        const expected = 2n | (cpl <= iopl ? 0n : RFLAGS.IF) | (BigInt(cpl === 0 ? 0 : iopl) << 12n);
        expect(m.rflags).toBe(expected);
      });
    }
  }

  it("user code can set AC and NT with POPFQ (SMAP-05, IRETQ-01)", () => {
    const m = run(popfMachine(3, 0, RFLAGS.IF, 2n | RFLAGS.AC | RFLAGS.NT | RFLAGS.IF), insn("popf", []));
    expect(m.rflags).toBe(2n | RFLAGS.AC | RFLAGS.NT | RFLAGS.IF);
    expect(m.gpr[RSP]).toBe(0x210008n);
  });

  it("RF in the image is never loaded; reserved bits come out fixed (bit 1 = 1, bits 3, 5, 15, 63:22 = 0)", () => {
    const m = run(popfMachine(0, 0, 0n, RFLAGS.RF | (1n << 3n) | (1n << 5n) | (1n << 15n) | (1n << 40n)), insn("popf", []));
    expect(m.rflags).toBe(2n);
  });

  it("FLAGS-03: POPF sets TF without trapping itself (the flag is just loaded)", () => {
    const r = exec(popfMachine(3, 0, 0n, 2n | RFLAGS.TF), insn("popf", []));
    expect(r.fault).toBeUndefined();
    expect(r.outcome).toBeUndefined();
    expect(r.m.rflags).toBe(2n | RFLAGS.TF);
    expect(r.coverage.has("FLAGS-03")).toBe(true);
  });

  it("16-bit POPF loads bits 15:0 only (AC and ID keep their values) and moves RSP by 2", () => {
    const m0 = popfMachine(0, 0, RFLAGS.AC, 0n);
    const m = run(withBytes(m0, STACK, [0xff, 0xff]), insn("popf", [], { operandSize: 2 }));
    expect(m.rflags).toBe(2n | RFLAGS.AC | 0x7fd5n);
    expect(m.gpr[RSP]).toBe(STACK + 2n);
  });

  it("16-bit POPF at CPL 3, IOPL 0 keeps IF and IOPL", () => {
    const m0 = popfMachine(3, 0, RFLAGS.IF, 0n);
    const m = run(m0, insn("popf", [], { operandSize: 2 }));
    expect(m.rflags).toBe(2n | RFLAGS.IF);
  });
});
