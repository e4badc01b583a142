// ALU-01..06: the arithmetic semantics' results and all six status flags against an independent
// formula written on mathematical integers (signed ranges, nibble sums), every operand size.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Mnemonic, OperandSize } from "../../../spec/decode/instruction.ts";
import { RAX, RBX, RFLAGS } from "../../../spec/machine/registers.ts";
import { kernelMachine, withRegs } from "../../helpers/fixture.ts";
import { insn, reg, run, STATUS } from "./build.ts";

interface Expected {
  readonly result: bigint;
  readonly cf: boolean;
  readonly of: boolean;
  readonly af: boolean;
}

const SIZES: readonly OperandSize[] = [1, 2, 4, 8];

function signed(v: bigint, n: number): bigint {
  return v >= 1n << BigInt(n - 1) ? v - (1n << BigInt(n)) : v;
}

/** The reference: unsigned and signed results computed exactly, then compared with the range. */
function reference(op: Mnemonic, a: bigint, b: bigint, c: bigint, n: number): Expected {
  const limit = 1n << BigInt(n);
  const smin = -(1n << BigInt(n - 1));
  const smax = (1n << BigInt(n - 1)) - 1n;
  const wrap = (v: bigint) => ((v % limit) + limit) % limit;
  const outOfRange = (v: bigint) => v < smin || v > smax;
  switch (op) {
    case "add":
    case "adc":
    case "inc": {
      const sum = a + b + c;
      return { result: wrap(sum), cf: sum >= limit, of: outOfRange(signed(a, n) + signed(b, n) + c), af: (a & 15n) + (b & 15n) + c > 15n };
    }
    default: {
      const diff = a - b - c;
      return { result: wrap(diff), cf: diff < 0n, of: outOfRange(signed(a, n) - signed(b, n) - c), af: (a & 15n) < (b & 15n) + c };
    }
  }
}

function popcount(v: bigint): number {
  let c = 0;
  for (let x = v; x > 0n; x >>= 1n) c += Number(x & 1n);
  return c;
}

/** Runs `op` with AL/AX/EAX/RAX = a and BL/BX/EBX/RBX = b, CF = carryIn, and checks everything. */
function check(op: Mnemonic, size: OperandSize, a: bigint, b: bigint, carryIn: boolean): void {
  const n = 8 * size;
  const start = withRegs(kernelMachine(), { rax: 0x1111_2222_3333_4444n, rbx: 0n });
  const high = 0x1111_2222_3333_4444n & ~((1n << BigInt(n)) - 1n);
  const m0 = { ...withRegs(start, { rax: high | a, rbx: b }), rflags: 2n | (carryIn ? RFLAGS.CF : 0n) };
  const unary = op === "neg" || op === "inc" || op === "dec";
  const i = insn(op, unary ? [reg(RAX, size)] : [reg(RAX, size), reg(RBX, size)]);
  const m1 = run(m0, i);

  const c = (op === "adc" || op === "sbb") && carryIn ? 1n : 0n;
  const e = op === "neg" ? reference("sub", 0n, a, 0n, n)
    : op === "inc" ? reference("add", a, 1n, 0n, n)
    : op === "dec" ? reference("sub", a, 1n, 0n, n)
    : reference(op, a, b, c, n);
  // CMP writes nothing; 32-bit destinations zero-extend; 8/16-bit ones keep the rest of RAX.
  const expectedRax = op === "cmp" ? high | a : size === 4 || size === 8 ? e.result : high | e.result;
  expect(m1.gpr[RAX]).toBe(expectedRax);

  const cf = op === "inc" || op === "dec" ? carryIn : e.cf;
  const flags = (m1.rflags & STATUS);
  const want =
    (cf ? RFLAGS.CF : 0n) |
    (popcount(e.result & 0xffn) % 2 === 0 ? RFLAGS.PF : 0n) |
    (e.af ? RFLAGS.AF : 0n) |
    (e.result === 0n ? RFLAGS.ZF : 0n) |
    (e.result >= 1n << BigInt(n - 1) ? RFLAGS.SF : 0n) |
    (e.of ? RFLAGS.OF : 0n);
  expect(flags).toBe(want);
}

const OPS: readonly Mnemonic[] = ["add", "adc", "sub", "sbb", "cmp", "neg", "inc", "dec"];

describe("ALU-01..06: arithmetic flags match an independent formula", () => {
  for (const size of SIZES) {
    it(`ADD/ADC/SUB/SBB/CMP/NEG/INC/DEC, ${8 * size}-bit, random operands (seed 0x5eed)`, () => {
      const n = BigInt(8 * size);
      const value = fc.oneof(
        fc.bigInt({ min: 0n, max: (1n << n) - 1n }),
        // Boundary values, where carries and overflows happen.
        fc.constantFrom(0n, 1n, (1n << (n - 1n)) - 1n, 1n << (n - 1n), (1n << n) - 1n, 0xfn, 0x10n),
      );
      fc.assert(
        fc.property(fc.constantFrom(...OPS), value, value, fc.boolean(), (op, a, b, carry) => {
          check(op, size, a, b, carry);
        }),
        { seed: 0x5eed, numRuns: 400 },
      );
    });
  }

  it("ALU-01: 8-bit ADD 0x7f + 1 overflows signed (OF=1, SF=1, AF=1, CF=0)", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0x7fn, rbx: 1n }), rflags: 2n }, insn("add", [reg(RAX, 1), reg(RBX, 1)]));
    expect(m.gpr[RAX]).toBe(0x80n);
    expect(m.rflags).toBe(2n | RFLAGS.OF | RFLAGS.SF | RFLAGS.AF);
  });

  it("ALU-01: 64-bit ADD 0xffff…ff + 1 carries out (CF=1, ZF=1, PF=1, AF=1, OF=0)", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: (1n << 64n) - 1n, rbx: 1n }), rflags: 2n }, insn("add", [reg(RAX), reg(RBX)]));
    expect(m.gpr[RAX]).toBe(0n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.AF);
  });

  it("ALU-01: ADC with CF=1: 16-bit 0xffff + 0 + 1 = 0 with CF=1", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0xffffn, rbx: 0n }), rflags: 2n | RFLAGS.CF }, insn("adc", [reg(RAX, 2), reg(RBX, 2)]));
    expect(m.gpr[RAX]).toBe(0n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.AF);
  });

  it("ALU-02: 32-bit SUB 0x80000000 − 1 overflows signed and zero-extends into RAX", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0xdead_0000_8000_0000n, rbx: 1n }), rflags: 2n }, insn("sub", [reg(RAX, 4), reg(RBX, 4)]));
    expect(m.gpr[RAX]).toBe(0x7fff_ffffn);
    expect(m.rflags).toBe(2n | RFLAGS.OF | RFLAGS.AF | RFLAGS.PF);
  });

  it("ALU-02: SBB with CF=1 and equal operands borrows (the Linux nospec mask idiom: sbb rax,rax = −1)", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 5n }), rflags: 2n | RFLAGS.CF }, insn("sbb", [reg(RAX), reg(RAX)]));
    expect(m.gpr[RAX]).toBe((1n << 64n) - 1n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.SF | RFLAGS.AF | RFLAGS.PF);
  });

  it("ALU-06: NEG of the most negative value overflows and keeps it; NEG 0 clears CF", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0x80n }), rflags: 2n }, insn("neg", [reg(RAX, 1)]));
    expect(m.gpr[RAX]).toBe(0x80n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.OF | RFLAGS.SF);
    const z = run({ ...withRegs(kernelMachine(), { rax: 0n }), rflags: 2n | RFLAGS.CF }, insn("neg", [reg(RAX)]));
    expect(z.rflags).toBe(2n | RFLAGS.ZF | RFLAGS.PF);
  });

  it("ALU-05: INC/DEC keep CF (INC 0xff → 0 with CF still 1; DEC 0 → 0xffff, CF still 0)", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0xffn }), rflags: 2n | RFLAGS.CF }, insn("inc", [reg(RAX, 1)]));
    expect(m.gpr[RAX]).toBe(0n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.AF);
    const d = run({ ...withRegs(kernelMachine(), { rax: 0n }), rflags: 2n }, insn("dec", [reg(RAX, 2)]));
    expect(d.gpr[RAX]).toBe(0xffffn);
    expect(d.rflags).toBe(2n | RFLAGS.SF | RFLAGS.AF | RFLAGS.PF);
  });
});
