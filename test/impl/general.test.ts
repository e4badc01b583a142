// The general kernel subset in impl/ (issue 11): SETcc, CMOVcc, CMPXCHG, XADD, CMPXCHG8B/16B,
// LEAVE, LOOPcc, JrCXZ, BSF/BSR/BSWAP, CPUID, fences and hint NOPs — expected values from the SDM
// pages and docs/model-choices.md, on every engine configuration (uncached, interpreted,
// compiled: runAll checks they agree).
import { describe, expect, it } from "vitest";
import { Code, Instruction, Program, Register as R, icedMem, mem, type IcedInstruction } from "../../guest/index.ts";
import { AMD_CPUID, INTEL_CPUID } from "../../contract/cpuid.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { RAX, RBX, RCX, RDX, RSP, RBP, RSI, RDI, kernel, runAll, u64, type Memory } from "./helpers.ts";

const CODE = 0x10000n;
const DATA = 0x30000n;
const M64 = (1n << 64n) - 1n;

function locked(x: IcedInstruction): IcedInstruction {
  x.hasLockPrefix = true;
  return x;
}

/** Assembles `build` at 0x10000 followed by HLT. */
function code(build: (p: Program) => void): Uint8Array {
  const p = new Program(CODE);
  build(p);
  p.emit(Code.Hlt);
  return p.encode();
}

function run(build: (p: Program) => void, regs: Record<number, bigint> = {}, setup?: (m: Memory) => void, steps = 200) {
  return runAll(kernel(code(build), setup, regs), steps);
}

/** The value of condition `cc` (SDM Vol. 1 Appendix B) for RFLAGS `f`. */
function holds(cc: number, f: number): boolean {
  const CF = f & 1, PF = (f >> 2) & 1, ZF = (f >> 6) & 1, SF = (f >> 7) & 1, OF = (f >> 11) & 1;
  const base = [OF, CF, ZF, CF | ZF, SF, PF, SF ^ OF, ZF | (SF ^ OF)][cc >> 1]!;
  return (cc & 1) === 0 ? base === 1 : base === 0;
}

/** Flag images covering every combination the conditions read. */
const FLAG_IMAGES = [0x002, 0x003, 0x006, 0x042, 0x043, 0x082, 0x802, 0x882, 0x842, 0x8c7, 0x0c2, 0x803];

const SETCC = [Code.Seto_rm8, Code.Setno_rm8, Code.Setb_rm8, Code.Setae_rm8, Code.Sete_rm8, Code.Setne_rm8, Code.Setbe_rm8,
  Code.Seta_rm8, Code.Sets_rm8, Code.Setns_rm8, Code.Setp_rm8, Code.Setnp_rm8, Code.Setl_rm8, Code.Setge_rm8, Code.Setle_rm8, Code.Setg_rm8];
const CMOV64 = [Code.Cmovo_r64_rm64, Code.Cmovno_r64_rm64, Code.Cmovb_r64_rm64, Code.Cmovae_r64_rm64, Code.Cmove_r64_rm64,
  Code.Cmovne_r64_rm64, Code.Cmovbe_r64_rm64, Code.Cmova_r64_rm64, Code.Cmovs_r64_rm64, Code.Cmovns_r64_rm64, Code.Cmovp_r64_rm64,
  Code.Cmovnp_r64_rm64, Code.Cmovl_r64_rm64, Code.Cmovge_r64_rm64, Code.Cmovle_r64_rm64, Code.Cmovg_r64_rm64];
const CMOV32 = [Code.Cmovo_r32_rm32, Code.Cmovno_r32_rm32, Code.Cmovb_r32_rm32, Code.Cmovae_r32_rm32, Code.Cmove_r32_rm32,
  Code.Cmovne_r32_rm32, Code.Cmovbe_r32_rm32, Code.Cmova_r32_rm32, Code.Cmovs_r32_rm32, Code.Cmovns_r32_rm32, Code.Cmovp_r32_rm32,
  Code.Cmovnp_r32_rm32, Code.Cmovl_r32_rm32, Code.Cmovge_r32_rm32, Code.Cmovle_r32_rm32, Code.Cmovg_r32_rm32];
const CMOV16 = [Code.Cmovo_r16_rm16, Code.Cmovno_r16_rm16, Code.Cmovb_r16_rm16, Code.Cmovae_r16_rm16, Code.Cmove_r16_rm16,
  Code.Cmovne_r16_rm16, Code.Cmovbe_r16_rm16, Code.Cmova_r16_rm16, Code.Cmovs_r16_rm16, Code.Cmovns_r16_rm16, Code.Cmovp_r16_rm16,
  Code.Cmovnp_r16_rm16, Code.Cmovl_r16_rm16, Code.Cmovge_r16_rm16, Code.Cmovle_r16_rm16, Code.Cmovg_r16_rm16];

describe("SETcc", () => {
  it("every condition, every flag image, register (low byte and AH) and memory destinations", () => {
    for (const f of FLAG_IMAGES) {
      const out = run((p) => {
        p.emit(Code.Pushq_imm32, f).emit(Code.Popfq);
        for (let cc = 0; cc < 16; cc++) p.emit(SETCC[cc]!, mem(R.RDI, BigInt(cc)));
        p.emit(SETCC[4]!, R.AH).emit(SETCC[5]!, R.SIL);
      }, { [RDI]: DATA, [RAX]: 0x1111_2222_3333_4444n, [RSI]: 0xffffn });
      const page = out.state.memory.get(Number(DATA >> 12n))!;
      for (let cc = 0; cc < 16; cc++) expect(page[cc], `cc ${cc} flags ${f.toString(16)}`).toBe(holds(cc, f) ? 1 : 0);
      const e = holds(4, f) ? 1n : 0n;
      expect(out.state.gpr[RAX]).toBe(0x1111_2222_3333_0044n | (e << 8n));
      expect(out.state.gpr[RSI]).toBe(0xff00n | (holds(5, f) ? 1n : 0n));
      expect(out.state.rflags & 0x8d5n).toBe(BigInt(f & 0x8d5));
    }
  });
});

describe("CMOVcc", () => {
  it("every condition at 16, 32 and 64 bits: moved when true; a false 32-bit move still clears bits 63:32", () => {
    const src = 0x8877_6655_4433_2211n, dst = 0xaaaa_bbbb_cccc_ddddn;
    for (const f of FLAG_IMAGES) {
      for (let cc = 0; cc < 16; cc++) {
        const out = run((p) => {
          p.emit(Code.Pushq_imm32, f).emit(Code.Popfq);
          p.emit(CMOV64[cc]!, R.RAX, R.RSI).emit(CMOV32[cc]!, R.EBX, R.ESI).emit(CMOV16[cc]!, R.CX, R.SI);
          p.emit(CMOV64[cc]!, R.RDX, mem(R.RDI));
        }, { [RSI]: src, [RAX]: dst, [RBX]: dst, [RCX]: dst, [RDX]: dst, [RDI]: DATA }, (m) => m.write(DATA, u64(src)));
        const t = holds(cc, f);
        const g = out.state.gpr;
        expect(g[RAX], `cmov64 cc ${cc}`).toBe(t ? src : dst);
        expect(g[RBX], `cmov32 cc ${cc}`).toBe(t ? src & 0xffff_ffffn : dst & 0xffff_ffffn);
        expect(g[RCX], `cmov16 cc ${cc}`).toBe(t ? (dst & ~0xffffn) | (src & 0xffffn) : dst);
        expect(g[RDX]).toBe(t ? src : dst);
      }
    }
  });

  it("a memory source is read whatever the condition: a false CMOVcc from an unmapped page faults (#PF)", () => {
    // cmovo rax, [0x600000] with OF = 0: #PF, delivered to the stub of vector 14 (0xb000 + 14·16).
    const out = run((p) => p.emit(Code.Cmovo_r64_rm64, R.RAX, mem(R.RDI)), { [RDI]: 0x600000n, [RAX]: 5n });
    expect(out.state.rip).toBe(0xb0e1n);
    expect(out.state.cr2).toBe(0x600000n);
    expect(out.state.gpr[RAX]).toBe(5n);
  });
});

describe("CMPXCHG and XADD", () => {
  it("CMPXCHG equal: dest ← source, the accumulator untouched (bits 63:32 kept); flags of CMP", () => {
    const out = run((p) => {
      p.add(locked(Instruction.createMemReg(Code.Cmpxchg_rm32_r32, icedMem(R.RDI), R.EDX))); // LOCK on a memory destination is legal
      p.emit(Code.Cmpxchg_rm64_r64, R.RBX, R.RSI);
    }, { [RAX]: 0xffff_ffff_0000_0007n, [RDX]: 0x99n, [RDI]: DATA, [RBX]: 0xffff_ffff_0000_0007n, [RSI]: 0x1234n }, (m) => m.write(DATA, [7, 0, 0, 0, 0xee]));
    expect(out.state.memory.get(Number(DATA >> 12n))!.subarray(0, 5)).toEqual(Uint8Array.from([0x99, 0, 0, 0, 0xee]));
    expect(out.state.gpr[RAX]).toBe(0xffff_ffff_0000_0007n);
    expect(out.state.gpr[RBX]).toBe(0x1234n);
    expect(out.state.rflags & 0x8d5n).toBe(0x44n); // ZF PF of a zero result
  });

  it("CMPXCHG not equal: accumulator ← dest (32-bit zero-extends), memory written back, a register dest unchanged", () => {
    const out = run((p) => {
      p.emit(Code.Cmpxchg_rm32_r32, mem(R.RDI), R.EDX);
      p.emit(Code.Mov_r64_imm64, R.RAX, 0x10n);
      p.emit(Code.Cmpxchg_rm32_r32, R.EBX, R.ESI);
      p.emit(Code.Cmpxchg_rm8_r8, R.CH, R.DL);
    }, { [RAX]: 0xffff_ffff_0000_0001n, [RDX]: 0x99n, [RDI]: DATA, [RBX]: 0xdead_0000_0000_0020n, [RSI]: 0x55n, [RCX]: 0x3300n },
    (m) => m.write(DATA, [9, 0, 0, 0]));
    expect(out.state.gpr[RBX]).toBe(0xdead_0000_0000_0020n);
    // the byte compare: AL (0x20) vs CH (0x33): not equal, AL ← 0x33
    expect(out.state.gpr[RAX]).toBe(0x33n);
    expect(out.state.gpr[RCX]).toBe(0x3300n);
    // first: EAX (1) − 9 → CF SF AF; last: 0x20 − 0x33 → CF SF AF (flags of the last)
    expect(out.state.rflags & 0x8d5n).toBe(0x95n);
  });

  it("XADD: dest ← dest + source, source ← old dest; xadd eax, eax leaves the sum; flags of ADD", () => {
    const out = run((p) => {
      p.add(locked(Instruction.createMemReg(Code.Xadd_rm64_r64, icedMem(R.RDI), R.R13)));
      p.emit(Code.Xadd_rm32_r32, R.EAX, R.EAX);
      p.emit(Code.Xadd_rm16_r16, R.BX, R.CX);
    }, { [RDI]: DATA, 13: 5n, [RAX]: 0x1_8000_0000n, [RBX]: 0xffff_0000_0000_ffffn, [RCX]: 0x2n }, (m) => m.write(DATA, u64(0x7fff_ffff_ffff_fffen)));
    expect(out.state.gpr[13]).toBe(0x7fff_ffff_ffff_fffen);
    expect(out.state.memory.get(Number(DATA >> 12n))!.subarray(0, 8)).toEqual(Uint8Array.from(u64(0x8000_0000_0000_0003n)));
    expect(out.state.gpr[RAX]).toBe(0n); // 0x80000000 + 0x80000000 = 0 (32 bits), zero-extended
    expect(out.state.gpr[RBX]).toBe(0xffff_0000_0000_0001n);
    expect(out.state.gpr[RCX]).toBe(0xffffn);
    expect(out.state.rflags & 0x8d5n).toBe(0x11n); // 0xffff + 2: CF, AF
  });

  it("LOCK with a register destination, on CMP, on SETcc or on a string instruction is #UD", () => {
    for (const bytes of [[0xf0, 0x0f, 0xb1, 0xc3], [0xf0, 0x0f, 0xc1, 0xc3], [0xf0, 0x0f, 0x94, 0x07], [0xf0, 0xaa], [0xf0, 0x0f, 0xc7, 0xc9]]) {
      const out = runAll(kernel([...bytes, 0xf4], undefined, { [RDI]: DATA }), 5);
      expect(out.state.rip, bytes.join(" ")).toBe(0xb061n); // vector 6 stub, halted
    }
  });

  it("a faulting CMPXCHG / XADD changes nothing (#PF with W = 1 on a read-only mapping)", () => {
    // cmpxchg [rdi], edx with rdi in the unmapped 6 MiB window
    const out = run((p) => p.emit(Code.Cmpxchg_rm32_r32, mem(R.RDI), R.EDX), { [RDI]: 0x600010n, [RAX]: 1n });
    expect(out.state.rip).toBe(0xb0e1n);
    expect(out.state.gpr[RAX]).toBe(1n);
    // error code 2 (write, not present) on the handler's stack
    const rsp = out.state.gpr[RSP]!;
    const page = out.state.memory.get(Number(rsp >> 12n))!;
    expect(page[Number(rsp & 0xfffn)]).toBe(2);
  });
});

describe("CMPXCHG8B / CMPXCHG16B", () => {
  it("8B equal stores ECX:EBX and sets ZF; not equal loads EDX:EAX (zero-extended) and clears ZF only", () => {
    const out = run((p) => {
      p.emit(Code.Cmpxchg8b_m64, mem(R.RDI));
      p.emit(Code.Stc);
      p.emit(Code.Cmpxchg8b_m64, mem(R.RDI));
    }, { [RAX]: 0xffff_ffff_1111_1111n, [RDX]: 0xffff_ffff_2222_2222n, [RBX]: 0x3333_3333n, [RCX]: 0x4444_4444n, [RDI]: DATA },
    (m) => m.write(DATA, u64(0x2222_2222_1111_1111n)));
    expect(out.state.memory.get(Number(DATA >> 12n))!.subarray(0, 8)).toEqual(Uint8Array.from(u64(0x4444_4444_3333_3333n)));
    // the second compares 0x2222222211111111 (EDX:EAX kept by the first) with the new value: not equal
    expect(out.state.gpr[RAX]).toBe(0x3333_3333n);
    expect(out.state.gpr[RDX]).toBe(0x4444_4444n);
    expect(out.state.rflags & 0x41n).toBe(1n); // ZF clear, CF (set by STC) kept
  });

  it("16B compares RDX:RAX with m128; a misaligned operand is #GP(0) before any access; the register form is #UD", () => {
    const eq = run((p) => p.emit(Code.Cmpxchg16b_m128, mem(R.RDI)),
      { [RAX]: 1n, [RDX]: 2n, [RBX]: 0x1111_2222_3333_4444n, [RCX]: 0x5555_6666_7777_8888n, [RDI]: DATA },
      (m) => { m.write(DATA, u64(1n)); m.write(DATA + 8n, u64(2n)); });
    const page = eq.state.memory.get(Number(DATA >> 12n))!;
    expect(page.subarray(0, 16)).toEqual(Uint8Array.from([...u64(0x1111_2222_3333_4444n), ...u64(0x5555_6666_7777_8888n)]));
    expect(eq.state.rflags & 0x40n).toBe(0x40n);
    const ne = run((p) => p.emit(Code.Cmpxchg16b_m128, mem(R.RDI)), { [RAX]: 0n, [RDX]: 0n, [RDI]: DATA },
      (m) => { m.write(DATA, u64(M64)); m.write(DATA + 8n, u64(0x8000_0000_0000_0000n)); });
    expect(ne.state.gpr[RAX]).toBe(M64);
    expect(ne.state.gpr[RDX]).toBe(0x8000_0000_0000_0000n);
    expect(ne.state.rflags & 0x40n).toBe(0n);
    // misaligned and non-canonical: the alignment #GP(0) (vector 13) comes first
    const mis = run((p) => p.emit(Code.Cmpxchg16b_m128, mem(R.RDI)), { [RDI]: 0x8000_0000_0000_0008n });
    expect(mis.state.rip).toBe(0xb0d1n);
  });
});

describe("LEAVE, LOOPcc, JrCXZ", () => {
  it("LEAVE: RSP ← RBP, then pop RBP; with 66 a 2-byte pop into BP", () => {
    const out = run((p) => {
      p.emit(Code.Leaveq);
      p.emit(Code.Mov_rm64_r64, R.RCX, R.RBP);
      p.emit(Code.Mov_r64_imm64, R.RBP, 0x1ff00n);
      p.emit(Code.Leavew);
    }, { [RBP]: 0x1fe00n }, (m) => { m.write(0x1fe00n, u64(0x7777_6666_5555_4444n)); m.write(0x1ff00n, [0x34, 0x12]); });
    expect(out.state.gpr[RSP]).toBe(0x1ff02n);
    expect(out.state.gpr[RCX]).toBe(0x7777_6666_5555_4444n);
    // the first LEAVE popped 0x7777666655554444; BP then came from 0x1ff00
    expect(out.state.gpr[RBP]).toBe(0x1_1234n);
  });

  it("a LEAVE whose pop faults changes nothing (RSP included)", () => {
    const out = run((p) => p.emit(Code.Leaveq), { [RBP]: 0x600000n });
    expect(out.state.rip).toBe(0xb0e1n);
    expect(out.state.gpr[RBP]).toBe(0x600000n);
  });

  it("LOOP counts RCX down without flags; LOOPE/LOOPNE also test ZF; JRCXZ / JECXZ test the count register", () => {
    const out = run((p) => {
      p.label("a").emit(Code.Inc_rm64, R.RBX).emit(Code.Loop_rel8_64_RCX, "a"); // 5 rounds
      p.emit(Code.Mov_r32_imm32, R.ECX, 10);
      p.label("b").emit(Code.Inc_rm64, R.RDX).emit(Code.Cmp_rm64_imm8, R.RDX, 3).emit(Code.Loopne_rel8_64_RCX, "b"); // stops when RDX = 3
      p.emit(Code.Mov_r64_imm64, R.RCX, 0x1_0000_0000n);
      p.emit(Code.Jecxz_rel8_64, "c"); // ECX = 0: taken
      p.emit(Code.Inc_rm64, R.RSI);
      p.label("c").emit(Code.Jrcxz_rel8_64, "d"); // RCX ≠ 0: not taken
      p.emit(Code.Inc_rm64, R.RDI);
      p.label("d");
    }, { [RCX]: 5n });
    const g = out.state.gpr;
    expect(g[RBX]).toBe(5n);
    expect(g[RDX]).toBe(3n);
    expect(g[RSI]).toBe(0n);
    expect(g[RDI]).toBe(1n);
    expect(g[RCX]).toBe(0x1_0000_0000n);
  });

  it("LOOP with a 32-bit count (67) writes ECX zero-extended", () => {
    // 67 e2 fe: loop $ with ECX; RCX = 0xffff_ffff_0000_0002 → two rounds, RCX = 0
    const out = runAll(kernel([0x67, 0xe2, 0xfe, 0xf4], undefined, { [RCX]: 0xffff_ffff_0000_0002n }), 10);
    expect(out.state.gpr[RCX]).toBe(0n);
    expect(out.state.rip).toBe(0x10004n);
  });
});

describe("BSF, BSR, BSWAP", () => {
  it("BSF/BSR give the lowest/highest set bit with ZF = CF = OF = SF = AF = 0 and PF of the index", () => {
    const out = run((p) => {
      p.emit(Code.Bsf_r64_rm64, R.RAX, R.RSI);
      p.emit(Code.Bsr_r64_rm64, R.RBX, R.RSI);
      p.emit(Code.Bsr_r32_rm32, R.ECX, R.EDI);
    }, { [RSI]: 0x0040_0000_0000_1000n, [RDI]: 0x8000_0001n });
    const g = out.state.gpr;
    expect(g[RAX]).toBe(12n);
    expect(g[RBX]).toBe(54n);
    expect(g[RCX]).toBe(31n);
    expect(out.state.rflags & 0x8d5n).toBe(0n); // 31 = 0b11111: odd parity
  });

  it("a zero source sets ZF and leaves the destination (a 32-bit one loses bits 63:32) and the other flags", () => {
    const out = run((p) => {
      p.emit(Code.Stc);
      p.emit(Code.Bsf_r64_rm64, R.RAX, R.RSI);
      p.emit(Code.Bsr_r32_rm32, R.EBX, R.ESI);
      p.emit(Code.Bsf_r16_rm16, R.CX, R.SI);
    }, { [RSI]: 0n, [RAX]: M64, [RBX]: M64, [RCX]: M64 });
    const g = out.state.gpr;
    expect(g[RAX]).toBe(M64);
    expect(g[RBX]).toBe(0xffff_ffffn);
    expect(g[RCX]).toBe(M64);
    expect(out.state.rflags & 0x41n).toBe(0x41n);
  });

  it("TZCNT/LZCNT encodings (F3 0F BC/BD) run as BSF/BSR", () => {
    // f3 48 0f bc c6: tzcnt rax, rsi → bsf
    const out = runAll(kernel([0xf3, 0x48, 0x0f, 0xbc, 0xc6, 0xf3, 0x48, 0x0f, 0xbd, 0xde, 0xf4], undefined, { [RSI]: 0x10n, [RBX]: 7n }), 10);
    expect(out.state.gpr[RAX]).toBe(4n);
    expect(out.state.gpr[RBX]).toBe(4n);
  });

  it("BSWAP r64 / r32 (zero-extends) / r16 (clears the low word)", () => {
    const out = run((p) => {
      p.emit(Code.Bswap_r64, R.RAX);
      p.emit(Code.Bswap_r32, R.EBX);
    }, { [RAX]: 0x0102_0304_0506_0708n, [RBX]: 0xffff_ffff_1122_3344n });
    expect(out.state.gpr[RAX]).toBe(0x0807_0605_0403_0201n);
    expect(out.state.gpr[RBX]).toBe(0x4433_2211n);
    const w = runAll(kernel([0x66, 0x0f, 0xc9, 0xf4], undefined, { [RCX]: 0x1234_5678n }), 5);
    expect(w.state.gpr[RCX]).toBe(0x1234_0000n);
  });
});

describe("CPUID", () => {
  function cpuid(leaf: bigint, subleaf: bigint, profile: "intel" | "amd" = "intel", cr4Extra = 0n): bigint[] {
    const s = kernel([0x0f, 0xa2, 0xf4], undefined, { [RAX]: leaf | 0xdead_0000_0000_0000n, [RCX]: subleaf, [RBX]: M64, [RDX]: M64 });
    const e = new ImplEngine();
    e.load({ ...s, cr4: s.cr4 | cr4Extra }, profile);
    expect(e.step().kind).toBe("retired");
    const g = e.state().gpr;
    return [g[RAX]!, g[RBX]!, g[RCX]!, g[RDX]!];
  }
  const regs = (l: { eax: number; ebx: number; ecx: number; edx: number }) => [l.eax, l.ebx, l.ecx, l.edx].map((v) => BigInt(v >>> 0));

  it("returns the profile's table (contract/cpuid.ts), 32-bit writes, any ECX outside leaf 7", () => {
    expect(cpuid(0n, 5n)).toEqual(regs(INTEL_CPUID.basic[0]!));
    expect(cpuid(1n, 0n)).toEqual(regs(INTEL_CPUID.basic[1]!));
    expect(cpuid(0x8000_0002n, 0n, "amd")).toEqual(regs(AMD_CPUID.extended[2]!));
    expect(cpuid(0x8000_0008n, 0n)).toEqual(regs(INTEL_CPUID.extended[8]!));
    // "GenuineIntel" in EBX EDX ECX
    const text = (v: bigint) => String.fromCharCode(...[0, 1, 2, 3].map((k) => Number((v >> BigInt(8 * k)) & 0xffn)));
    const [, b, c, d] = cpuid(0n, 0n);
    expect(text(b!) + text(d!) + text(c!)).toBe("GenuineIntel");
  });

  it("leaf 7 takes a subleaf; beyond the highest leaf Intel repeats the highest basic leaf, AMD gives zeros", () => {
    expect(cpuid(7n, 0n)).toEqual(regs(INTEL_CPUID.basic[7]!));
    expect(cpuid(7n, 1n)).toEqual([0n, 0n, 0n, 0n]);
    expect(cpuid(0x20n, 0n)).toEqual(regs(INTEL_CPUID.basic[7]!));
    expect(cpuid(0x8000_0009n, 1n)).toEqual([0n, 0n, 0n, 0n]);
    expect(cpuid(0x4000_0000n, 0n, "amd")).toEqual([0n, 0n, 0n, 0n]);
  });

  it("CPUID.01H:ECX[27] copies CR4.OSXSAVE", () => {
    expect((cpuid(1n, 0n)[2]! >> 27n) & 1n).toBe(0n);
    expect((cpuid(1n, 0n, "intel", 1n << 18n)[2]! >> 27n) & 1n).toBe(1n);
  });
});

describe("fences, PREFETCHh, ENDBR64", () => {
  it("run as NOPs; PREFETCH of an unmapped address does not fault", () => {
    // lfence; mfence; sfence; prefetcht0 [rdi]; endbr64; hlt
    const out = runAll(kernel([0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0xf8, 0x0f, 0x18, 0x0f, 0xf3, 0x0f, 0x1e, 0xfa, 0xf4], undefined, { [RDI]: 0x600000n }), 10);
    expect(out.stop).toEqual({ reason: "hlt", steps: 6 });
    expect(out.state.rip).toBe(0x10011n);
  });

  it("neighbouring encodings stay unsupported (CLFLUSH, 66-prefixed fences, other 0F 1E and 0F 18 forms)", () => {
    for (const bytes of [[0x0f, 0xae, 0x3f], [0x66, 0x0f, 0xae, 0xf0], [0xf3, 0x0f, 0x1e, 0xc8], [0x0f, 0x18, 0xc0], [0x0f, 0x18, 0x27]]) {
      const e = new ImplEngine();
      e.load(kernel([...bytes, 0xf4]), "intel");
      expect(e.step().kind, bytes.join(" ")).toBe("unsupported");
    }
  });

  it("0F C7 /6 memory (VMPTRLD: VMX is absent) is #UD, not unsupported (model-choices \"CPU features\")", () => {
    const e = new ImplEngine();
    e.load(kernel([0x0f, 0xc7, 0x37, 0xf4]), "intel");
    expect(e.step()).toMatchObject({ kind: "delivered", vector: 6 });
  });
});
