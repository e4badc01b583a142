// SHIFT-01..03: shifts and rotates, count masking, count 0, CF/OF at the edges.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Mnemonic, OperandSize } from "../../../spec/decode/instruction.ts";
import { RAX, RCX, RFLAGS } from "../../../spec/machine/registers.ts";
import { kernelMachine, withRegs } from "../../helpers/fixture.ts";
import { imm, insn, reg, run, STATUS } from "./build.ts";

const { CF, OF, SF, ZF, PF, AF } = RFLAGS;

/** Runs `op` on RAX at `size` by CL = count, from RFLAGS = 2 | flags. */
function shiftBy(op: Mnemonic, size: OperandSize, value: bigint, count: bigint, flags = 0n) {
  const m0 = { ...withRegs(kernelMachine(), { rax: value, rcx: count }), rflags: 2n | flags };
  const m = run(m0, insn(op, [reg(RAX, size), reg(RCX, 1)]));
  return { rax: m.gpr[RAX]!, flags: m.rflags & ~2n };
}

describe("SHIFT-01: SHL/SHR/SAR", () => {
  it("SHL 8-bit 0x81 by 1: CF = bit out, OF = MSB XOR CF, AF cleared", () => {
    expect(shiftBy("shl", 1, 0x81n, 1n, AF)).toEqual({ rax: 0x02n, flags: CF | OF });
  });
  it("SHL 64-bit 0x4000…0 by 1: sign changes → OF = 1, SF = 1, CF = 0", () => {
    expect(shiftBy("shl", 8, 1n << 62n, 1n)).toEqual({ rax: 1n << 63n, flags: OF | SF | PF });
  });
  it("SHR 8-bit 0x80 by 1: OF = MSB of the original operand", () => {
    expect(shiftBy("shr", 1, 0x80n, 1n)).toEqual({ rax: 0x40n, flags: OF });
  });
  it("SHR 16-bit 0x8000 by 16: CF = bit 15 (the last bit out), result 0, OF (undefined for count > 1) = 0", () => {
    expect(shiftBy("shr", 2, 0x8000n, 16n)).toEqual({ rax: 0n, flags: CF | ZF | PF });
  });
  it("SHL 8-bit by 9 (count ≥ width): result 0 and CF = 0 (the model's choice for the undefined CF)", () => {
    expect(shiftBy("shl", 1, 0xffn, 9n, CF)).toEqual({ rax: 0n, flags: ZF | PF });
  });
  it("SHR 8-bit 0xc0 by 2: OF (undefined for count > 1) = 0 even though the original MSB was 1", () => {
    expect(shiftBy("shr", 1, 0xc0n, 2n)).toEqual({ rax: 0x30n, flags: PF });
  });
  it("SAR 8-bit 0x80 by 1 keeps the sign and clears OF", () => {
    expect(shiftBy("sar", 1, 0x80n, 1n, OF)).toEqual({ rax: 0xc0n, flags: SF | PF });
  });
  it("SAR 8-bit 0x80 by 31 fills with the sign; CF = sign", () => {
    expect(shiftBy("sar", 1, 0x80n, 31n)).toEqual({ rax: 0xffn, flags: CF | SF | PF });
  });
  it("32-bit counts are masked to 5 bits: SHL EAX by 33 shifts by 1 and zero-extends", () => {
    expect(shiftBy("shl", 4, 0xffff_ffff_0000_0001n, 33n)).toEqual({ rax: 2n, flags: 0n });
  });
  it("64-bit counts are masked to 6 bits: SHL RAX by 65 shifts by 1; by 32 shifts by 32", () => {
    expect(shiftBy("shl", 8, 1n, 65n).rax).toBe(2n);
    expect(shiftBy("shl", 8, 1n, 32n).rax).toBe(1n << 32n);
  });
  it("by an immediate (C1 /4 ib) and by 1 (D1 /4, no count operand)", () => {
    const m0 = { ...withRegs(kernelMachine(), { rax: 3n }), rflags: 2n };
    expect(run(m0, insn("shl", [reg(RAX), imm(4n, 1)])).gpr[RAX]).toBe(0x30n);
    expect(run(m0, insn("shl", [reg(RAX)])).gpr[RAX]).toBe(6n);
  });
});

describe("SHIFT-02: a masked count of 0 changes no flag", () => {
  it("SHL by 0 and by 32 (masked to 0) keep all six flags", () => {
    for (const count of [0n, 32n]) {
      const r = shiftBy("shl", 4, 0x1234n, count, STATUS);
      expect(r.flags).toBe(STATUS);
      expect(r.rax).toBe(0x1234n);
    }
  });
  it("ROL/RCR by 0 keep CF and OF", () => {
    expect(shiftBy("rol", 1, 0x81n, 0n, OF).flags).toBe(OF);
    expect(shiftBy("rcr", 1, 0x81n, 0n, CF).flags).toBe(CF);
  });
});

describe("SHIFT-03: rotates", () => {
  it("ROL 8-bit 0x81 by 1: CF = LSB of the result, OF = MSB XOR CF, other flags untouched", () => {
    expect(shiftBy("rol", 1, 0x81n, 1n, ZF)).toEqual({ rax: 0x03n, flags: CF | OF | ZF });
  });
  it("ROR 8-bit 0x01 by 1: CF = MSB of the result, OF = MSB XOR next bit", () => {
    expect(shiftBy("ror", 1, 0x01n, 1n)).toEqual({ rax: 0x80n, flags: CF | OF });
  });
  it("ROL 8-bit by 8 leaves the value but still sets CF from its LSB", () => {
    expect(shiftBy("rol", 1, 0x01n, 8n)).toEqual({ rax: 0x01n, flags: CF | OF });
  });
  it("RCL 8-bit 0x80 by 1 with CF = 0: MSB goes to CF, OF = MSB XOR CF", () => {
    expect(shiftBy("rcl", 1, 0x80n, 1n)).toEqual({ rax: 0n, flags: CF | OF });
  });
  it("RCR 8-bit 0x01 by 1 with CF = 1: CF enters at the top", () => {
    expect(shiftBy("rcr", 1, 0x01n, 1n, CF)).toEqual({ rax: 0x80n, flags: CF | OF });
  });
  it("RCL 8-bit by 9 is a full rotation through CF: value and CF unchanged", () => {
    const r = shiftBy("rcl", 1, 0xa5n, 9n, CF);
    expect(r.rax).toBe(0xa5n);
    expect(r.flags & CF).toBe(CF);
  });
  it("RCR 64-bit 1 by 1 with CF = 0 moves bit 0 into CF", () => {
    expect(shiftBy("rcr", 8, 1n, 1n)).toEqual({ rax: 0n, flags: CF });
  });
  it("ROL by k then ROR by k is the identity, every size (seed 7)", () => {
    fc.assert(
      fc.property(fc.constantFrom<OperandSize>(1, 2, 4, 8), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 255n }), (size, v, k) => {
        const value = v & ((1n << BigInt(8 * size)) - 1n);
        const there = shiftBy("rol", size, value, k);
        expect(shiftBy("ror", size, there.rax, k).rax).toBe(value);
        const carried = shiftBy("rcl", size, value, k, CF);
        expect(shiftBy("rcr", size, carried.rax, k, carried.flags & CF).rax).toBe(value);
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});
