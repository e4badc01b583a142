// Directed tests of issue 11's general kernel subset (SETcc, CMOVcc, CMPXCHG, XADD, CMPXCHG8B/16B,
// the string instructions with REP/REPE/REPNE, LEAVE, LOOPcc/JRCXZ, BSF/BSR, BSWAP, CPUID, fences,
// PREFETCHh, ENDBR), on real bytes through the Engine interface, on every engine that models the
// family (each family probes its first encoding): spec and impl, which both model all of it. The
// expected values come from the SDM pages, written out here independently of both engines.
import { describe, expect, it } from "vitest";
import { createEngine, ENGINE_NAMES } from "../../engines/registry.ts";
import type { Engine, EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { GPR_NAMES, type GprName } from "../../contract/schema.ts";
import { INTEL_CPUID, AMD_CPUID } from "../../contract/cpuid.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { kernelMachine, userMachine, withBytes, withCode, withRegs } from "../helpers/fixture.ts";

const CODE = 0x10000n;
const DATA = 0x40000n;
const M64 = (1n << 64n) - 1n;
const FLAG = { CF: 1n, PF: 4n, AF: 0x10n, ZF: 0x40n, SF: 0x80n, TF: 0x100n, IF: 0x200n, DF: 0x400n, OF: 0x800n, RF: 0x1_0000n } as const;
const STATUS = FLAG.CF | FLAG.PF | FLAG.AF | FLAG.ZF | FLAG.SF | FLAG.OF;

interface Setup {
  readonly regs?: Partial<Record<GprName, bigint>>;
  readonly rflags?: bigint;
  readonly data?: readonly number[];
  /** More bytes anywhere: [physical address, bytes]. */
  readonly poke?: readonly (readonly [bigint, readonly number[]])[];
  readonly cr4?: bigint;
  readonly user?: boolean;
}

/** The kernel fixture (CPL 0, RIP 0x10000) with `code` at RIP and the setup applied. */
function stateOf(code: readonly number[], setup: Setup = {}): ArchState {
  const base = setup.user === true ? userMachine() : kernelMachine();
  let m = withCode(base, code);
  if (setup.data !== undefined) m = withBytes(m, DATA, setup.data);
  for (const [at, bytes] of setup.poke ?? []) m = withBytes(m, at, bytes);
  if (setup.regs !== undefined) m = withRegs(m, setup.regs);
  m = { ...m, rflags: setup.rflags ?? 2n, cr4: setup.cr4 ?? m.cr4 };
  return stateFromMachine(m);
}

/** The engines that model the first instruction of `probe` (its step is not `unsupported`). */
function modelling(probe: readonly number[]): string[] {
  return ENGINE_NAMES.filter((name) => {
    const e = createEngine(name);
    e.load(stateOf(probe), "intel");
    return e.step().kind !== "unsupported";
  });
}

interface Ran {
  readonly engine: Engine;
  readonly events: EngineEvent[];
  readonly state: ArchState;
}

function run(name: string, state: ArchState, steps: number, profile: ProfileName = "intel"): Ran {
  const engine = createEngine(name);
  engine.load(state, profile);
  const events = Array.from({ length: steps }, () => engine.step());
  return { engine, events, state: engine.state() };
}

const gpr = (s: ArchState, name: GprName) => s.gpr[GPR_NAMES.indexOf(name)]!;
const read = (s: ArchState, address: bigint, size: number) => {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) {
    const a = address + BigInt(i);
    v = (v << 8n) | BigInt(s.memory.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0);
  }
  return v;
};
const le = (v: bigint, size: number) => Array.from({ length: size }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));

/** Both engines model the whole subset: each family runs on spec and on impl. */
function engines(probe: readonly number[]): string[] {
  const names = modelling(probe);
  expect(names).toEqual(expect.arrayContaining(["spec", "impl"]));
  return names;
}

/** SDM Vol. 1 Appendix B: condition tttn on the flags, written out independently. */
function holds(condition: number, rflags: bigint): boolean {
  const f = (bit: bigint) => (rflags & bit) !== 0n;
  const table = [
    f(FLAG.OF), f(FLAG.CF), f(FLAG.ZF), f(FLAG.CF) || f(FLAG.ZF), f(FLAG.SF), f(FLAG.PF), f(FLAG.SF) !== f(FLAG.OF), f(FLAG.ZF) || f(FLAG.SF) !== f(FLAG.OF),
  ];
  const base = table[condition >> 1]!;
  return (condition & 1) === 0 ? base : !base;
}

const FLAG_SAMPLES = [0x2n, 0x2n | FLAG.CF | FLAG.ZF, 0x2n | FLAG.SF, 0x2n | FLAG.OF, 0x2n | FLAG.SF | FLAG.OF | FLAG.PF, 0x2n | STATUS];

describe("SETCC-01: SETcc r/m8 for all 16 conditions", () => {
  for (const name of engines([0x0f, 0x94, 0xc0]))
    it(`${name}: register (AL, AH, SIL with REX) and memory destinations`, () => {
      for (let cc = 0; cc < 16; cc++)
        for (const rflags of FLAG_SAMPLES) {
          const expected = holds(cc, rflags) ? 1n : 0n;
          // setcc %al ; setcc %ah ; 40 setcc %sil ; setcc (%rbx)
          const code = [0x0f, 0x90 + cc, 0xc0, 0x0f, 0x90 + cc, 0xc4, 0x40, 0x0f, 0x90 + cc, 0xc6, 0x0f, 0x90 + cc, 0x03];
          const r = run(name, stateOf(code, { rflags, regs: { rax: 0xffff_ffff_ffff_5555n, rsi: 0xaaaa_aaaa_aaaa_aaaan, rbx: DATA }, data: [0x77] }), 4);
          expect(r.events.map((e) => e.kind)).toEqual(["retired", "retired", "retired", "retired"]);
          expect(gpr(r.state, "rax")).toBe(0xffff_ffff_ffff_0000n | (expected << 8n) | expected);
          expect(gpr(r.state, "rsi")).toBe(0xaaaa_aaaa_aaaa_aa00n | expected);
          expect(read(r.state, DATA, 1)).toBe(expected);
          expect(r.state.rflags).toBe(rflags);
        }
    });
});

describe("CMOV-01 CMOV-02: CMOVcc, all 16 conditions, 16/32/64-bit", () => {
  for (const name of engines([0x48, 0x0f, 0x44, 0xc1]))
    it(`${name}: moves when the condition holds; a false 32-bit CMOV still clears bits 63:32; a memory source is read (and faults) either way`, () => {
      for (let cc = 0; cc < 16; cc++)
        for (const rflags of FLAG_SAMPLES) {
          const taken = holds(cc, rflags);
          const init = { rax: 0x1111_2222_3333_4444n, rcx: 0x9999_8888_7777_6666n, rdx: 0x1111_2222_3333_4444n, rbx: 0x1111_2222_3333_4444n };
          // 48 cmovcc %rcx,%rax ; cmovcc %ecx,%edx ; 66 cmovcc %cx,%bx
          const code = [0x48, 0x0f, 0x40 + cc, 0xc1, 0x0f, 0x40 + cc, 0xd1, 0x66, 0x0f, 0x40 + cc, 0xd9];
          const r = run(name, stateOf(code, { rflags, regs: init }), 3);
          expect(gpr(r.state, "rax")).toBe(taken ? 0x9999_8888_7777_6666n : init.rax);
          expect(gpr(r.state, "rdx")).toBe(taken ? 0x7777_6666n : 0x3333_4444n);
          expect(gpr(r.state, "rbx")).toBe(taken ? 0x1111_2222_3333_6666n : init.rbx);
          expect(r.state.rflags).toBe(rflags);
        }
      // cmovz (%rbx), %eax with ZF = 0 and RBX on a not-present page: #PF, a read (error code 0).
      const f = run(name, stateOf([0x0f, 0x44, 0x03], { regs: { rbx: 0x600000n } }), 1);
      expect(f.events[0]).toMatchObject({ kind: "delivered", vector: 14, errorCode: 0 });
      expect(f.state.cr2).toBe(0x600000n);
    });
});

describe("CMPXCHG-01 CMPXCHG-02 CMPXCHG-03: CMPXCHG, with and without LOCK", () => {
  for (const name of engines([0x0f, 0xb1, 0x0b]))
    it(`${name}: equal stores the source and leaves the accumulator; not equal loads the accumulator and writes memory back; flags as CMP`, () => {
      // lock cmpxchg %edx,(%rbx), equal: memory ← EDX, RAX untouched (bits 63:32 kept), ZF = 1.
      const eq = run(name, stateOf([0xf0, 0x0f, 0xb1, 0x13], { regs: { rax: 0xdead_0000_0000_0005n, rdx: 0x77n, rbx: DATA }, data: [5, 0, 0, 0] }), 1);
      expect(read(eq.state, DATA, 4)).toBe(0x77n);
      expect(gpr(eq.state, "rax")).toBe(0xdead_0000_0000_0005n);
      expect(eq.state.rflags & STATUS).toBe(FLAG.ZF | FLAG.PF);
      // Not equal (3 vs 5): EAX ← 5 (zero-extended), memory unchanged, flags of 3 − 5.
      const ne = run(name, stateOf([0x0f, 0xb1, 0x13], { regs: { rax: 0xdead_0000_0000_0003n, rdx: 0x77n, rbx: DATA }, data: [5, 0, 0, 0] }), 1);
      expect(read(ne.state, DATA, 4)).toBe(5n);
      expect(gpr(ne.state, "rax")).toBe(5n);
      expect(ne.state.rflags & STATUS).toBe(FLAG.CF | FLAG.SF | FLAG.AF); // 0xfffffffe: PF odd
      // Register destination, not equal: the destination is not written (RCX keeps bits 63:32).
      const reg = run(name, stateOf([0x0f, 0xb1, 0xd1], { regs: { rax: 1n, rcx: 0xffff_ffff_0000_0002n, rdx: 9n } }), 1);
      expect(gpr(reg.state, "rcx")).toBe(0xffff_ffff_0000_0002n);
      expect(gpr(reg.state, "rax")).toBe(2n);
      // cmpxchg %ecx,%eax: always equal; EAX ← ECX zero-extended.
      const self = run(name, stateOf([0x0f, 0xb1, 0xc8], { regs: { rax: 0xffff_ffff_0000_0001n, rcx: 0xaaaa_aaaa_0000_0009n } }), 1);
      expect(gpr(self.state, "rax")).toBe(9n);
      // Byte and 64-bit forms: cmpxchg %cl,(%rbx) ; 48 cmpxchg %rcx,8(%rbx)
      const sizes = run(name, stateOf([0x0f, 0xb0, 0x0b, 0x48, 0x0f, 0xb1, 0x4b, 0x08], { regs: { rax: 0x44n, rcx: 0xfedc_ba98_7654_3210n, rbx: DATA }, data: [0x44, 0, 0, 0, 0, 0, 0, 0, ...le(0x44n, 8)] }), 2);
      expect(read(sizes.state, DATA, 1)).toBe(0x10n);
      expect(read(sizes.state, DATA + 8n, 8)).toBe(0xfedc_ba98_7654_3210n);
    });
});

describe("XADD-01: XADD, with and without LOCK", () => {
  for (const name of engines([0x0f, 0xc1, 0xc1]))
    it(`${name}: the source gets the old destination, the destination the sum; flags as ADD; xadd %eax,%eax leaves the sum`, () => {
      // lock xadd %edx,(%rbx): [rbx] 0xffffffff + 1 → 0, EDX ← 0xffffffff; CF ZF AF PF.
      const m = run(name, stateOf([0xf0, 0x0f, 0xc1, 0x13], { regs: { rdx: 0xffff_ffff_0000_0001n, rbx: DATA }, data: [0xff, 0xff, 0xff, 0xff] }), 1);
      expect(read(m.state, DATA, 4)).toBe(0n);
      expect(gpr(m.state, "rdx")).toBe(0xffff_ffffn);
      expect(m.state.rflags & STATUS).toBe(FLAG.CF | FLAG.ZF | FLAG.AF | FLAG.PF);
      // 4c lock xadd %r13, (%rbx) (the C kernel's `ticks` counter)
      const q = run(name, stateOf([0xf0, 0x4c, 0x0f, 0xc1, 0x2b], { regs: { r13: 1n, rbx: DATA }, data: le(41n, 8) }), 1);
      expect([read(q.state, DATA, 8), gpr(q.state, "r13")]).toEqual([42n, 41n]);
      const self = run(name, stateOf([0x0f, 0xc1, 0xc0], { regs: { rax: 0x7n } }), 1);
      expect(gpr(self.state, "rax")).toBe(14n);
      const byte = run(name, stateOf([0x0f, 0xc0, 0xe0], { regs: { rax: 0x0102n } }), 1); // xadd %ah,%al
      expect(gpr(byte.state, "rax")).toBe(0x0203n); // AH ← old AL (2), AL ← 2 + 1
    });
});

describe("CMPXCHG8B-01 CMPXCHG8B-02 CMPXCHG16B-01: CMPXCHG8B and CMPXCHG16B", () => {
  for (const name of engines([0x0f, 0xc7, 0x0b]))
    it(`${name}: equal stores ECX:EBX / RCX:RBX; not equal loads EDX:EAX / RDX:RAX (zero-extended); only ZF changes; 16B needs 16-byte alignment`, () => {
      const eq = run(name, stateOf([0x0f, 0xc7, 0x0e], { rflags: 0x2n | FLAG.CF, regs: { rdx: 0x1111n, rax: 0x2222n, rcx: 0xaaaan, rbx: 0xbbbbn, rsi: DATA }, data: [0x22, 0x22, 0, 0, 0x11, 0x11, 0, 0] }), 1);
      expect(read(eq.state, DATA, 8)).toBe(0x0000_aaaa_0000_bbbbn);
      expect(eq.state.rflags & STATUS).toBe(FLAG.ZF | FLAG.CF);
      const ne = run(name, stateOf([0xf0, 0x0f, 0xc7, 0x0e], { rflags: 0x2n | FLAG.ZF | FLAG.OF, regs: { rdx: 0xffff_ffff_ffff_ffffn, rax: 0xffff_ffff_ffff_ffffn, rsi: DATA }, data: le(0x0123_4567_89ab_cdefn, 8) }), 1);
      expect([gpr(ne.state, "rdx"), gpr(ne.state, "rax")]).toEqual([0x0123_4567n, 0x89ab_cdefn]);
      expect(ne.state.rflags & STATUS).toBe(FLAG.OF);
      const wide = run(name, stateOf([0x48, 0x0f, 0xc7, 0x0e], { regs: { rdx: 1n, rax: 2n, rcx: 3n, rbx: 4n, rsi: DATA }, data: [...le(2n, 8), ...le(1n, 8)] }), 1);
      expect([read(wide.state, DATA, 8), read(wide.state, DATA + 8n, 8)]).toEqual([4n, 3n]);
      const misaligned = run(name, stateOf([0x48, 0x0f, 0xc7, 0x0e], { regs: { rsi: DATA + 8n } }), 1);
      expect(misaligned.events[0]).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(run(name, stateOf([0x0f, 0xc7, 0xc8]), 1).events[0]).toMatchObject({ kind: "delivered", vector: 6 });
    });
});

describe("STR-01 STR-02 STR-03 STR-04 STR-05: MOVS STOS LODS CMPS SCAS without a prefix", () => {
  for (const name of engines([0xa4]))
    it(`${name}: one element, RSI/RDI forward or (DF = 1) backward by the element size`, () => {
      const data = Array.from({ length: 32 }, (_, i) => i + 1);
      // movsq ; std ; movsb (back) ; cld ; stosw ; lodsl
      const r = run(name, stateOf([0x48, 0xa5, 0xfd, 0xa4, 0xfc, 0x66, 0xab, 0xad], { regs: { rsi: DATA, rdi: DATA + 0x100n, rax: 0xffff_ffff_ffff_abcdn }, data }), 6);
      // movsq: 8 bytes to DATA + 0x100; std; movsb copies DATA + 8 to DATA + 0x108, both then − 1;
      // cld; stosw at DATA + 0x107 overwrites the last byte of the movsq and the movsb's byte.
      expect(read(r.state, DATA + 0x100n, 7)).toBe(0x07_0605_0403_0201n);
      expect(read(r.state, DATA + 0x107n, 2)).toBe(0xabcdn);
      expect(gpr(r.state, "rdi")).toBe(DATA + 0x109n);
      expect(gpr(r.state, "rax")).toBe(0x0b0a_0908n); // lodsl at RSI = DATA + 7, zero-extended
      expect(gpr(r.state, "rsi")).toBe(DATA + 11n);
      // cmpsb: [DATA] − [DATA + 1] = 1 − 2 = 0xff (CF SF AF, PF even)
      const c1 = run(name, stateOf([0xa6], { regs: { rsi: DATA, rdi: DATA + 1n }, data }), 1);
      expect(c1.state.rflags & STATUS).toBe(FLAG.CF | FLAG.SF | FLAG.AF | FLAG.PF);
      // then scasb: AL (1) − [DATA + 2] (3) = 0xfe (CF SF AF, PF odd)
      const c = run(name, stateOf([0xa6, 0xae], { regs: { rsi: DATA, rdi: DATA + 1n, rax: 1n }, data }), 2);
      expect(c.state.rflags & STATUS).toBe(FLAG.CF | FLAG.SF | FLAG.AF);
      expect([gpr(c.state, "rsi"), gpr(c.state, "rdi")]).toEqual([DATA + 1n, DATA + 3n]);
    });
});

describe("REP-01 REP-02 REP-03 REP-04: REP/REPE/REPNE, one iteration a step", () => {
  for (const name of engines([0xf3, 0xa4]))
    it(`${name}: RIP stays at the instruction and RF = 1 until the count runs out; count 0 does nothing; REPE/REPNE stop on ZF`, () => {
      const data = Array.from({ length: 16 }, (_, i) => 0x40 + i);
      // rep movsb with RCX = 3, then nop
      const r = run(name, stateOf([0xf3, 0xa4, 0x90], { regs: { rcx: 3n, rsi: DATA, rdi: DATA + 0x80n }, data }), 4);
      expect(r.events.map((e) => [e.kind, e.rip])).toEqual([["retired", CODE], ["retired", CODE], ["retired", CODE], ["retired", CODE + 2n]]);
      expect(read(r.state, DATA + 0x80n, 3)).toBe(0x42_41_40n);
      expect([gpr(r.state, "rcx"), gpr(r.state, "rsi"), gpr(r.state, "rdi"), r.state.rip]).toEqual([0n, DATA + 3n, DATA + 0x83n, CODE + 3n]);
      const mid = run(name, stateOf([0xf3, 0xa4], { regs: { rcx: 3n, rsi: DATA, rdi: DATA + 0x80n }, data }), 1).state;
      expect([mid.rip, mid.rflags & FLAG.RF, gpr(mid, "rcx")]).toEqual([CODE, FLAG.RF, 2n]);
      const last = run(name, stateOf([0xf3, 0xa4], { regs: { rcx: 1n, rsi: DATA, rdi: DATA + 0x80n }, data }), 1).state;
      expect([last.rip, last.rflags & FLAG.RF]).toEqual([CODE + 2n, 0n]);
      // Count 0: one step, nothing accessed (RSI on a not-present page), RIP moves on.
      const zero = run(name, stateOf([0xf3, 0xa4], { regs: { rcx: 0n, rsi: 0x600000n, rdi: 0x600000n } }), 1);
      expect(zero.events[0]!.kind).toBe("retired");
      expect([zero.state.rip, gpr(zero.state, "rsi")]).toEqual([CODE + 2n, 0x600000n]);
      // rep stosq with ECX (67): RCX's upper half is cleared by the 32-bit count writes.
      const stos = run(name, stateOf([0x67, 0xf3, 0x48, 0xab], { regs: { rcx: 0xffff_ffff_0000_0002n, rdi: DATA, rax: 0x5a5a_5a5a_5a5a_5a5an } }), 2);
      expect([gpr(stos.state, "rcx"), stos.state.rip, read(stos.state, DATA + 8n, 8)]).toEqual([0n, CODE + 4n, 0x5a5a_5a5a_5a5a_5a5an]);
      // repe cmpsb stops at the first difference (index 2), repne scasb at the first match.
      const a = [1, 2, 3, 4], b = [1, 2, 9, 4];
      const cmps = run(name, stateOf([0xf3, 0xa6], { regs: { rcx: 4n, rsi: DATA, rdi: DATA + 0x10n }, poke: [[DATA, a], [DATA + 0x10n, b]] }), 3);
      expect([gpr(cmps.state, "rcx"), cmps.state.rip, cmps.state.rflags & FLAG.ZF]).toEqual([1n, CODE + 2n, 0n]);
      const scas = run(name, stateOf([0xf2, 0xae], { regs: { rcx: 10n, rdi: DATA, rax: 0n }, data: [7, 7, 0, 7] }), 3);
      expect([gpr(scas.state, "rcx"), gpr(scas.state, "rdi"), scas.state.rip, scas.state.rflags & FLAG.ZF]).toEqual([7n, DATA + 3n, CODE + 2n, FLAG.ZF]);
      // F2 on MOVS repeats like F3.
      const f2 = run(name, stateOf([0xf2, 0xa4], { regs: { rcx: 2n, rsi: DATA, rdi: DATA + 0x80n }, data }), 2);
      expect([gpr(f2.state, "rcx"), f2.state.rip]).toEqual([0n, CODE + 2n]);
    });
});

describe("REP-03 REP-05: events between iterations and faults in an iteration", () => {
  for (const name of engines([0xf3, 0xa4]))
    it(`${name}: an interrupt between iterations pushes RIP = the instruction and RF = 1, and IRET resumes the string; a fault keeps the completed iterations`, () => {
      const data = Array.from({ length: 16 }, (_, i) => 0x40 + i);
      // Vector 0x30's stub becomes `iretq`.
      const iretStub: readonly [bigint, readonly number[]] = [0xb000n + 16n * 0x30n, [0x48, 0xcf]];
      const e = createEngine(name);
      e.load(stateOf([0xf3, 0xa4], { rflags: 0x202n, regs: { rcx: 3n, rsi: DATA, rdi: DATA + 0x80n }, data, poke: [iretStub] }), "intel");
      expect(e.step().kind).toBe("retired");
      e.raise({ irq: 0x30 });
      expect(e.step()).toMatchObject({ kind: "delivered", vector: 0x30, source: "external", rip: CODE });
      const s = e.state();
      const rsp = gpr(s, "rsp");
      expect(read(s, rsp, 8)).toBe(CODE); // saved RIP
      expect(read(s, rsp + 16n, 8) & FLAG.RF).toBe(FLAG.RF); // saved RFLAGS.RF
      expect(e.step().kind).toBe("retired"); // iretq
      expect(e.state().rip).toBe(CODE);
      expect(e.step().kind).toBe("retired");
      expect(e.step().kind).toBe("retired");
      const end = e.state();
      expect([end.rip, gpr(end, "rcx"), read(end, DATA + 0x80n, 3)]).toEqual([CODE + 2n, 0n, 0x42_41_40n]);
      // rep movsb into the not-present page at 0x600000: two bytes land, the third faults.
      const f = run(name, stateOf([0xf3, 0xa4], { regs: { rcx: 4n, rsi: DATA, rdi: 0x5f_fffen }, data }), 3);
      expect(f.events.map((x) => x.kind)).toEqual(["retired", "retired", "delivered"]);
      expect(f.events[2]).toMatchObject({ vector: 14, errorCode: 0b10, rip: CODE });
      expect([gpr(f.state, "rcx"), gpr(f.state, "rsi"), gpr(f.state, "rdi"), f.state.cr2]).toEqual([2n, DATA + 2n, 0x60_0000n, 0x60_0000n]);
      expect(read(f.state, 0x5f_fffen, 2)).toBe(0x4140n);
      const frame = gpr(f.state, "rsp");
      expect(read(f.state, frame + 8n, 8)).toBe(CODE); // pushed RIP (after the error code)
      expect(read(f.state, frame + 24n, 8) & FLAG.RF).toBe(FLAG.RF);
      // TF = 1: a single-step trap after each iteration, saved RIP = the instruction while it repeats.
      const t = run(name, stateOf([0xf3, 0xa4], { rflags: 0x2n | FLAG.TF, regs: { rcx: 2n, rsi: DATA, rdi: DATA + 0x80n }, data }), 2);
      expect(t.events[1]).toMatchObject({ kind: "delivered", vector: 1, rip: CODE });
      expect(read(t.state, gpr(t.state, "rsp"), 8)).toBe(CODE);
    });
});

describe("LEAVE-01 LOOP-01 JRCXZ-01: LEAVE, LOOP/LOOPE/LOOPNE, JRCXZ", () => {
  for (const name of engines([0xc9]))
    it(`${name}: LEAVE restores RSP from RBP and pops RBP`, () => {
      const frame = 0x1f000n;
      const r = run(name, stateOf([0xc9], { regs: { rbp: frame, rsp: 0x1e000n }, poke: [[frame, le(0x1234_5678_9abc_def0n, 8)]] }), 1);
      expect([gpr(r.state, "rsp"), gpr(r.state, "rbp")]).toEqual([frame + 8n, 0x1234_5678_9abc_def0n]);
      const w = run(name, stateOf([0x66, 0xc9], { regs: { rbp: frame, rsp: 0x1e000n }, poke: [[frame, [0x34, 0x12]]] }), 1);
      expect([gpr(w.state, "rsp"), gpr(w.state, "rbp")]).toEqual([frame + 2n, (frame & ~0xffffn) | 0x1234n]);
      // RBP non-canonical: #SS(0), nothing changed.
      const bad = run(name, stateOf([0xc9], { regs: { rbp: 0x8000_0000_0000_0000n, rsp: 0x1e000n } }), 1);
      expect(bad.events[0]).toMatchObject({ kind: "delivered", vector: 12 });
    });
  for (const name of engines([0xe2, 0xfe]))
    it(`${name}: LOOP counts RCX down and branches while it is not 0; LOOPE/LOOPNE add ZF; JRCXZ branches on 0; flags untouched`, () => {
      // loop . with RCX = 3: two taken, then falls through
      const l = run(name, stateOf([0xe2, 0xfe], { regs: { rcx: 3n }, rflags: 0x2n | FLAG.ZF }), 3);
      expect(l.events.map((e) => e.rip)).toEqual([CODE, CODE, CODE]);
      expect([gpr(l.state, "rcx"), l.state.rip, l.state.rflags]).toEqual([0n, CODE + 2n, 0x2n | FLAG.ZF]);
      const loope = run(name, stateOf([0xe1, 0x10], { regs: { rcx: 5n }, rflags: 0x2n }), 1);
      expect([gpr(loope.state, "rcx"), loope.state.rip]).toEqual([4n, CODE + 2n]); // ZF = 0: not taken
      const loopne = run(name, stateOf([0xe0, 0x10], { regs: { rcx: 5n }, rflags: 0x2n }), 1);
      expect(loopne.state.rip).toBe(CODE + 2n + 0x10n);
      const e32 = run(name, stateOf([0x67, 0xe2, 0x10], { regs: { rcx: 0xffff_ffff_0000_0000n } }), 1); // ECX 0 → 0xffffffff
      expect([gpr(e32.state, "rcx"), e32.state.rip]).toEqual([0xffff_ffffn, CODE + 3n + 0x10n]);
      expect(run(name, stateOf([0xe3, 0x10], { regs: { rcx: 0n } }), 1).state.rip).toBe(CODE + 2n + 0x10n);
      expect(run(name, stateOf([0xe3, 0x10], { regs: { rcx: 1n } }), 1).state.rip).toBe(CODE + 2n);
      expect(run(name, stateOf([0x67, 0xe3, 0x10], { regs: { rcx: 0x1_0000_0000n } }), 1).state.rip).toBe(CODE + 3n + 0x10n);
    });
});

describe("BSF-01 BSF-02 BSWAP-01: BSF, BSR (and F3 0F BC/BD), BSWAP", () => {
  for (const name of engines([0x0f, 0xbc, 0xc1]))
    it(`${name}: bit indexes, ZF; a zero source leaves the destination (a 32-bit one loses bits 63:32)`, () => {
      for (const [code, src, index] of [
        [[0x48, 0x0f, 0xbc, 0xc1], 0x8000_0000_0000_0000n, 63n], [[0x48, 0x0f, 0xbd, 0xc1], 0x0000_0000_0001_0010n, 16n],
        [[0x0f, 0xbc, 0xc1], 0x0000_0000_0000_0600n, 9n], [[0xf3, 0x0f, 0xbc, 0xc1], 0x0000_0000_0000_0600n, 9n], [[0xf3, 0x0f, 0xbd, 0xc1], 0x0000_0000_0000_0600n, 10n],
        // Index 0 (bit 0 set): ZF = 0 all the same (ZF says the source was 0, not the index).
        [[0x48, 0x0f, 0xbc, 0xc1], 0x0000_0000_0000_0001n, 0n], [[0x0f, 0xbd, 0xc1], 0x0000_0000_0000_0001n, 0n],
      ] as const) {
        const r = run(name, stateOf(code, { regs: { rcx: src, rax: M64 }, rflags: 0x2n | STATUS }), 1);
        expect(gpr(r.state, "rax")).toBe(index);
        expect(r.state.rflags & STATUS).toBe((r.state.rflags & FLAG.PF) | 0n); // CF OF AF ZF SF clear (index < 128)
      }
      const z32 = run(name, stateOf([0x0f, 0xbc, 0xc1], { regs: { rcx: 0xffff_ffff_0000_0000n, rax: 0xdead_beef_0000_0007n }, rflags: 0x2n | FLAG.CF }), 1);
      expect([gpr(z32.state, "rax"), z32.state.rflags & STATUS]).toEqual([7n, FLAG.ZF | FLAG.CF]);
      const z64 = run(name, stateOf([0x48, 0x0f, 0xbd, 0xc1], { regs: { rcx: 0n, rax: 0xdead_beef_0000_0007n } }), 1);
      expect(gpr(z64.state, "rax")).toBe(0xdead_beef_0000_0007n);
    });
  for (const name of engines([0x0f, 0xc8]))
    it(`${name}: BSWAP r32 zero-extends, r64 reverses 8 bytes, r16 clears the low word`, () => {
      const r = run(name, stateOf([0x0f, 0xc8, 0x48, 0x0f, 0xc9, 0x66, 0x0f, 0xca], { regs: { rax: 0xffff_ffff_1122_3344n, rcx: 0x0102_0304_0506_0708n, rdx: 0xaaaa_bbbb_cccc_ddddn } }), 3);
      expect([gpr(r.state, "rax"), gpr(r.state, "rcx"), gpr(r.state, "rdx")]).toEqual([0x4433_2211n, 0x0807_0605_0403_0201n, 0xaaaa_bbbb_cccc_0000n]);
    });
});

describe("CPUID-01 CPUID-02 CPUID-03: CPUID", () => {
  for (const name of engines([0x0f, 0xa2]))
    it(`${name}: the profile's leaves, subleaves of leaf 7, OSXSAVE from CR4, leaves beyond the highest, 32-bit register writes`, () => {
      const cpuid = (eax: bigint, ecx: bigint, profile: ProfileName = "intel", cr4?: bigint) => {
        const s = run(name, stateOf([0x0f, 0xa2], { regs: { rax: 0xffff_ffff_0000_0000n | eax, rcx: ecx, rbx: M64, rdx: M64 }, ...(cr4 === undefined ? {} : { cr4 }) }), 1, profile).state;
        return { eax: Number(gpr(s, "rax")), ebx: Number(gpr(s, "rbx")), ecx: Number(gpr(s, "rcx")), edx: Number(gpr(s, "rdx")) };
      };
      expect(cpuid(0n, 0n)).toEqual(INTEL_CPUID.basic[0]);
      expect(cpuid(0n, 0n, "amd")).toEqual(AMD_CPUID.basic[0]);
      expect(cpuid(7n, 0n)).toEqual(INTEL_CPUID.basic[7]);
      expect(cpuid(7n, 1n)).toEqual({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
      expect(cpuid(0x8000_0004n, 0n)).toEqual(INTEL_CPUID.extended[4]);
      const base = kernelMachine().cr4;
      expect(cpuid(1n, 0n, "intel", base & ~(1n << 18n)).ecx).toBe(INTEL_CPUID.basic[1]!.ecx);
      expect(cpuid(1n, 0n, "intel", base | (1n << 18n)).ecx).toBe((INTEL_CPUID.basic[1]!.ecx | (1 << 27)) >>> 0);
      expect(cpuid(0x4000_0000n, 0n)).toEqual(INTEL_CPUID.basic[7]);
      expect(cpuid(0x8000_0009n, 0n)).toEqual(INTEL_CPUID.basic[7]);
      expect(cpuid(0x4000_0000n, 0n, "amd")).toEqual({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
      // At CPL 3 too.
      const user = run(name, stateOf([0x0f, 0xa2], { user: true, regs: { rax: 0n } }), 1);
      expect(user.events[0]!.kind).toBe("retired");
    });
});

describe("FENCE-01 PREFETCH-01 ENDBR-01: fences, PREFETCHh, ENDBR", () => {
  for (const name of engines([0x0f, 0xae, 0xf0]))
    it(`${name}: no effect but RIP; a prefetch of a not-present address does not fault`, () => {
      // lfence ; mfence ; sfence ; prefetcht0 (%rax) ; endbr64 ; endbr32
      const code = [0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0xf8, 0x0f, 0x18, 0x08, 0xf3, 0x0f, 0x1e, 0xfa, 0xf3, 0x0f, 0x1e, 0xfb];
      const start = stateOf(code, { regs: { rax: 0x600000n }, rflags: 0x2n | FLAG.CF });
      const r = run(name, start, 6);
      expect(r.events.every((e) => e.kind === "retired")).toBe(true);
      expect({ ...r.state, memory: undefined }).toEqual({ ...start, rip: CODE + BigInt(code.length), memory: undefined });
    });
});
