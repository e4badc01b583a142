// BRANCH-01..03, JCC-01, CALL-01, RET-01: near branches.
import { describe, expect, it } from "vitest";
import { RAX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { conditionHolds } from "../../../spec/instructions/control-flow.ts";
import { kernelMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, mem, reg, rel, run } from "./build.ts";

const STACK = 0x1f000n;
const NEXT = 0x10005n; // kernel RIP 0x10000 + a 5-byte branch
const NON_CANONICAL = 0x0000_8000_0000_0000n;
const kernel = () => ({ ...withRegs(kernelMachine(), { rsp: STACK }), rflags: 2n });

function bytes8(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

describe("BRANCH-03: JMP", () => {
  it("JMP rel32 goes to next RIP + displacement (backwards too)", () => {
    expect(run(kernel(), insn("jmp", [rel(0x100n)], { length: 5 })).rip).toBe(NEXT + 0x100n);
    expect(run(kernel(), insn("jmp", [rel(-5n)], { length: 5 })).rip).toBe(0x10000n);
  });
  it("JMP r/m64 (jmp *%rbx, FF E3 and through memory)", () => {
    expect(run(withRegs(kernel(), { rbx: 0x12345n }), insn("jmp", [reg(3)], { length: 2 })).rip).toBe(0x12345n);
    const m0 = withBytes(kernel(), 0x30000n, bytes8(0x11000n));
    expect(run(m0, insn("jmp", [mem({ size: 8, disp: 0x30000n })])).rip).toBe(0x11000n);
  });
  it("BRANCH-01: a non-canonical target faults #GP(0) at the branch; RIP unchanged", () => {
    const r = exec(withRegs(kernel(), { rax: NON_CANONICAL }), insn("jmp", [reg(RAX)], { length: 2 }));
    expect(r.fault).toMatchObject({ vector: 13, errorCode: 0, rule: "BRANCH-01" });
    expect(r.m.rip).toBe(0x10000n);
  });
  it("BRANCH-01: a rel32 target past the canonical boundary faults", () => {
    const m0 = { ...kernel(), rip: 0x7fff_ffff_fff0n };
    expect(exec(m0, insn("jmp", [rel(0x100n)], { length: 5 })).fault?.rule).toBe("BRANCH-01");
  });
  it("BRANCH-02: with a 16-bit operand size the target is truncated to 16 bits", () => {
    const m = run(withRegs(kernel(), { rax: 0x1234_5678n }), insn("jmp", [reg(RAX, 2)], { length: 3, operandSize: 2 }));
    expect(m.rip).toBe(0x5678n);
    const r = run(kernel(), insn("jmp", [rel(0x10n)], { length: 4, operandSize: 2 }));
    expect(r.rip).toBe((0x10004n + 0x10n) & 0xffffn);
  });
});

describe("JCC-01: conditions", () => {
  const { CF, ZF, SF, OF, PF } = RFLAGS;
  // [condition, flags that make it true, flags that make it false]
  const table: [number, string, bigint, bigint][] = [
    [0x0, "JO", OF, 0n], [0x1, "JNO", 0n, OF], [0x2, "JB", CF, 0n], [0x3, "JAE", 0n, CF],
    [0x4, "JE", ZF, 0n], [0x5, "JNE", 0n, ZF], [0x6, "JBE", ZF, 0n], [0x7, "JA", 0n, CF],
    [0x8, "JS", SF, 0n], [0x9, "JNS", 0n, SF], [0xa, "JP", PF, 0n], [0xb, "JNP", 0n, PF],
    [0xc, "JL", SF, SF | OF], [0xd, "JGE", SF | OF, OF], [0xe, "JLE", ZF | SF | OF, SF | OF], [0xf, "JG", OF | SF, ZF],
  ];
  for (const [cc, name, yes, no] of table) {
    it(`${name} (tttn ${cc}) taken with ${yes}, not taken with ${no}`, () => {
      expect(conditionHolds(cc, 2n | yes)).toBe(true);
      expect(conditionHolds(cc, 2n | no)).toBe(false);
      const taken = run({ ...kernel(), rflags: 2n | yes }, insn("jcc", [rel(0x40n)], { length: 2, condition: cc }));
      expect(taken.rip).toBe(0x10002n + 0x40n);
      const fallthrough = run({ ...kernel(), rflags: 2n | no }, insn("jcc", [rel(0x40n)], { length: 2, condition: cc }));
      expect(fallthrough.rip).toBe(0x10002n);
    });
  }
  it("BRANCH-01: an untaken Jcc to a non-canonical target does not fault; a taken one does", () => {
    const m0 = { ...kernel(), rip: 0x7fff_ffff_fff0n };
    expect(exec(m0, insn("jcc", [rel(0x100n)], { length: 6, condition: 4 })).fault).toBeUndefined();
    expect(exec({ ...m0, rflags: 2n | ZF }, insn("jcc", [rel(0x100n)], { length: 6, condition: 4 })).fault?.rule).toBe("BRANCH-01");
  });
});

describe("CALL-01 / RET-01", () => {
  it("CALL rel32 pushes the next RIP and jumps", () => {
    const m = run(kernel(), insn("call", [rel(0x200n)], { length: 5 }));
    expect(m.rip).toBe(NEXT + 0x200n);
    expect(m.gpr[RSP]).toBe(STACK - 8n);
    expect(m.memory.read(STACK - 8n, 8)).toBe(NEXT);
  });
  it("CALL r/m64 through [RSP] reads the target before pushing", () => {
    const m0 = withBytes(kernel(), STACK, bytes8(0x11000n));
    const m = run(m0, insn("call", [mem({ size: 8, base: RSP })]));
    expect(m.rip).toBe(0x11000n);
    expect(m.memory.read(STACK - 8n, 8)).toBe(0x10003n);
  });
  it("BRANCH-01: CALL to a non-canonical target faults before pushing anything", () => {
    const r = exec(withRegs(kernel(), { rax: NON_CANONICAL }), insn("call", [reg(RAX)], { length: 2 }));
    expect(r.fault?.rule).toBe("BRANCH-01");
    expect(r.m.gpr[RSP]).toBe(STACK);
    expect(r.m.memory.read(STACK - 8n, 8)).toBe(0n);
  });
  it("CALL with a non-canonical RSP faults #SS(0)", () => {
    const r = exec(withRegs(kernel(), { rsp: NON_CANONICAL + 8n }), insn("call", [rel(0n)], { length: 5 }));
    expect(r.fault).toMatchObject({ vector: 12, errorCode: 0 });
  });
  it("RET pops RIP", () => {
    const m0 = withBytes(kernel(), STACK, bytes8(0x12345n));
    const m = run(m0, insn("ret", [], { length: 1 }));
    expect(m.rip).toBe(0x12345n);
    expect(m.gpr[RSP]).toBe(STACK + 8n);
  });
  it("RET imm16 releases the extra bytes after popping", () => {
    const m0 = withBytes(kernel(), STACK, bytes8(0x12345n));
    const m = run(m0, insn("ret", [imm(0x18n, 2)], { length: 3, operandSize: 8 }));
    expect(m.rip).toBe(0x12345n);
    expect(m.gpr[RSP]).toBe(STACK + 8n + 0x18n);
  });
  it("BRANCH-01: RET to a non-canonical address faults #GP(0); RSP and RIP unchanged", () => {
    const m0 = withBytes(kernel(), STACK, bytes8(NON_CANONICAL));
    const r = exec(m0, insn("ret", [], { length: 1 }));
    expect(r.fault).toMatchObject({ vector: 13, errorCode: 0, rule: "BRANCH-01" });
    expect(r.m.gpr[RSP]).toBe(STACK);
    expect(r.m.rip).toBe(0x10000n);
  });
  it("16-bit RET pops 2 bytes and truncates", () => {
    const m0 = withBytes(kernel(), STACK, [0x34, 0x12, 0xff, 0xff]);
    const m = run(m0, insn("ret", [], { length: 2, operandSize: 2 }));
    expect(m.rip).toBe(0x1234n);
    expect(m.gpr[RSP]).toBe(STACK + 2n);
  });
});
