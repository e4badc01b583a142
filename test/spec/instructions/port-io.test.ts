// IO-01..05: IN/OUT, the IOPL check and the TSS I/O permission bitmap (SDM Vol. 1 §19.5).
import { describe, expect, it } from "vitest";
import { RAX, RFLAGS } from "../../../spec/machine/registers.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { kernelMachine, userMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, insn, port, reg } from "./build.ts";

const TSS = 0xa000n;
const MAP = 0x68; // I/O map base used below: right after the 104-byte TSS

/** CPL 3 with IOPL `iopl`, the I/O map base at MAP and TR.limit = MAP + `mapBytes` − 1. */
function user(iopl: number, mapBytes: number, bitmap: readonly [number, number][] = []): Machine {
  let m: Machine = { ...userMachine(), rflags: 0x202n | (BigInt(iopl) << 12n) };
  m = withBytes(m, TSS + 0x66n, [MAP & 0xff, MAP >> 8]);
  for (const [offset, byte] of bitmap) m = withBytes(m, TSS + BigInt(MAP + offset), [byte]);
  return { ...m, tr: { ...m.tr, limit: MAP + mapBytes - 1 } };
}

const inAl = (p: number | "dx") => insn("in", [reg(RAX, 1), port(p)], { length: 2 });
const outDx = (size: 1 | 2 | 4) => insn("out", [port("dx"), reg(RAX, size)], { length: 1, operandSize: size === 1 ? 4 : size });

describe("IO-01: CPL ≤ IOPL allows every port without reading the TSS", () => {
  it("IN AL, 0x60 at CPL 0 returns the port's value as an io outcome", () => {
    const r = exec(withRegs(kernelMachine(), { rax: 0xffff_ff00n }), inAl(0x60), () => 0x1an);
    expect(r.fault).toBeUndefined();
    expect(r.outcome).toEqual({ kind: "io", direction: "in", port: 0x60, size: 1, value: 0x1an });
    expect(r.m.gpr[RAX]).toBe(0xffff_ff1an);
  });
  it("CPL 3 with IOPL 3 is allowed even though this TSS has no bitmap", () => {
    const r = exec(user(3, 0), inAl(0x60));
    expect(r.fault).toBeUndefined();
    expect(r.coverage.has("IO-01")).toBe(true);
  });
  it("CPL 1 with IOPL 1 is allowed", () => {
    const k = kernelMachine();
    const m = { ...k, cs: { ...k.cs, selector: 0x09 }, rflags: 2n | (1n << 12n) };
    expect(exec(m, inAl(0x60)).fault).toBeUndefined();
  });
});

describe("IO-02/03/04: CPL > IOPL consults the I/O permission bitmap", () => {
  it("IO-03: the fixture TSS (limit 0x67, map base 0x68) has no bitmap → #GP(0)", () => {
    const r = exec({ ...userMachine(), rflags: 0x202n }, inAl(0x60));
    expect(r.fault).toMatchObject({ vector: 13, errorCode: 0, rule: "IO-03" });
    expect(r.m.rip).toBe(0x200000n);
  });
  it("IO-04: all bits clear → allowed; IN EAX zero-extends into RAX", () => {
    const m = withRegs(user(0, 0x82), { rax: 0xffff_ffff_ffff_ffffn, rdx: 0x3f8n });
    const r = exec(m, insn("in", [reg(RAX, 4), port("dx")], { length: 1, operandSize: 4 }), () => 0x1234_5678n);
    expect(r.fault).toBeUndefined();
    expect(r.m.gpr[RAX]).toBe(0x1234_5678n);
    expect(r.outcome).toEqual({ kind: "io", direction: "in", port: 0x3f8, size: 4, value: 0x1234_5678n });
  });
  it("IO-02: the port's bit set → #GP(0), AL unchanged", () => {
    const m = withRegs(user(0, 0x82, [[0x7f, 0x02]]), { rax: 0x55n, rdx: 0x3f9n });
    const r = exec(m, insn("in", [reg(RAX, 1), port("dx")], { length: 1 }));
    expect(r.fault).toMatchObject({ vector: 13, errorCode: 0, rule: "IO-02" });
    expect(r.m.gpr[RAX]).toBe(0x55n);
  });
  it("IO-02: a neighbouring port's bit does not matter for a 1-byte access", () => {
    const m = withRegs(user(0, 0x82, [[0x7f, 0xfd]]), { rdx: 0x3f9n });
    expect(exec(m, outDx(1)).fault).toBeUndefined();
  });
  it("IO-02: a 4-byte range straddling two bitmap bytes checks bits in both", () => {
    // Ports 0x3fe..0x401: bits 6, 7 of byte 0x7f and bits 0, 1 of byte 0x80.
    const at = (bitmap: [number, number][]) => exec(withRegs(user(0, 0x82, bitmap), { rdx: 0x3fen, rax: 0xdead_beefn }), outDx(4));
    expect(at([]).outcome).toEqual({ kind: "io", direction: "out", port: 0x3fe, size: 4, value: 0xdead_beefn });
    expect(at([[0x80, 0x02]]).fault?.rule).toBe("IO-02"); // port 0x401
    expect(at([[0x7f, 0x40]]).fault?.rule).toBe("IO-02"); // port 0x3fe
    expect(at([[0x7f, 0x3f], [0x80, 0xfc]]).fault).toBeUndefined(); // only ports outside the range
  });
  it("IO-03: the two bitmap bytes read at base + port/8 must both lie within TR.limit", () => {
    // Port 0x3f8 lives in byte 0x7f; the processor also reads byte 0x80 (the SDM's trailing 0xFF byte).
    const m = (mapBytes: number) => withRegs(user(0, mapBytes), { rdx: 0x3f8n });
    expect(exec(m(0x80), outDx(1)).fault?.rule).toBe("IO-03");
    expect(exec(m(0x81), outDx(1)).fault).toBeUndefined();
  });
  it("IO-03: ports past the end of a short bitmap are denied", () => {
    // SDM §19.5.2 example: limit 10 bytes past the map base → the first 80 ports are mapped.
    const m = withRegs(user(0, 11), { rdx: 80n });
    expect(exec(m, outDx(1)).fault?.rule).toBe("IO-03");
    expect(exec(withRegs(m, { rdx: 72n }), outDx(1)).fault).toBeUndefined();
  });
  it("IO-03: an I/O map base at or beyond the limit denies every port", () => {
    const m = { ...user(0, 0), tr: { ...userMachine().tr, limit: MAP } };
    expect(exec(withRegs(m, { rdx: 0n }), outDx(1)).fault?.rule).toBe("IO-03");
  });
  it("CPL 3 with IOPL 2 still checks the bitmap (CPL > IOPL)", () => {
    const m = withRegs(user(2, 0x82, [[0, 0x01]]), { rdx: 0n });
    expect(exec(m, outDx(1)).fault?.rule).toBe("IO-02");
  });
  it("the TSS is found through TR.base (a relocated TSS)", () => {
    const moved = 0x31000n;
    let m: Machine = withBytes({ ...userMachine(), rflags: 0x202n }, moved + 0x66n, [MAP, 0]);
    m = withBytes(m, moved + BigInt(MAP) + 1n, [0x01]); // port 8 denied
    m = { ...m, tr: { ...m.tr, base: moved, limit: MAP + 0x20 } };
    expect(exec(withRegs(m, { rdx: 8n }), outDx(1)).fault?.rule).toBe("IO-02");
    expect(exec(withRegs(m, { rdx: 9n }), outDx(1)).fault).toBeUndefined();
  });
});

describe("IO-05: data and port operands", () => {
  it("the DX form uses only DX[15:0]", () => {
    const r = exec(withRegs(kernelMachine(), { rdx: 0xffff_0070n, rax: 0x42n }), outDx(1));
    expect(r.outcome).toEqual({ kind: "io", direction: "out", port: 0x70, size: 1, value: 0x42n });
  });
  it("IN AX merges into RAX; the default bus value is all ones", () => {
    const r = exec(withRegs(kernelMachine(), { rax: 0x1111_2222_3333_4444n }), insn("in", [reg(RAX, 2), port(0x80)], { length: 3, operandSize: 2 }));
    expect(r.m.gpr[RAX]).toBe(0x1111_2222_3333_ffffn);
  });
  it("IN and OUT change no flag", () => {
    const r = exec({ ...kernelMachine(), rflags: 2n | RFLAGS.CF | RFLAGS.ZF }, inAl(0x60));
    expect(r.m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.ZF);
  });
});
