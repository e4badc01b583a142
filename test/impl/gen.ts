// Random guest programs for differential tests: hand-encoded instruction templates over a fixed
// register discipline (RSP the stack, RBP a loop counter, R12 → the page table at 0x4000 that maps
// 6–8 MiB, R13 → 0x600000, R14 → kernel data 0x30000, R15 → 0x30ff8 near a page end), plus writes
// that reach page tables, code, the IDT and the GDT, CR3/CR4 switches and INVLPG.
import fc from "fast-check";
import type { ArchState } from "../../contract/state.ts";
import { gate } from "../../guest/index.ts";
import { baseMemory, layoutState, u64 } from "./helpers.ts";

/** Registers random instructions may write (not RSP, RBP, R12–R15). */
const DST = [0, 1, 2, 3, 6, 7, 8, 9, 10, 11];
/** Registers random instructions may read. */
const SRC = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

function rex(w: boolean, reg: number, rm: number, index = 0): number {
  return 0x40 | (w ? 8 : 0) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (rm >> 3);
}
function modrmReg(reg: number, rm: number): number {
  return 0xc0 | ((reg & 7) << 3) | (rm & 7);
}
/** [base + disp8] with base R12..R15 (base & 7 = 4 needs a SIB byte). */
function memDisp8(reg: number, base: number, disp: number): number[] {
  const out = [0x40 | ((reg & 7) << 3) | (base & 7)];
  if ((base & 7) === 4) out.push(0x24);
  out.push(disp & 0xff);
  return out;
}

type Template = (a: number, b: number, c: number) => number[];

const pick = <T>(xs: readonly T[], n: number): T => xs[Math.abs(n) % xs.length]!;
const BASES = [12, 13, 14, 15, 14, 15];
const SIZES: readonly { readonly prefix: number[]; readonly w: boolean; readonly byte: boolean }[] = [
  { prefix: [], w: true, byte: false },
  { prefix: [], w: false, byte: false },
  { prefix: [0x66], w: false, byte: false },
  { prefix: [], w: false, byte: true },
];

export const TEMPLATES: Template[] = [
  // ALU r, r (ADD..CMP) in every size
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const dst = pick(DST, a), src = pick(SRC, b);
    const op = ((a >>> 8) & 7) * 8 + (sz.byte ? 0 : 1);
    return [...sz.prefix, rex(sz.w, src, dst), op, modrmReg(src, dst)];
  },
  // ALU r, imm8 (83 /n) and r8, imm8 (80 /n)
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const dst = pick(DST, a);
    return [...sz.prefix, rex(sz.w, 0, dst), sz.byte ? 0x80 : 0x83, modrmReg((b >>> 4) & 7, dst), b & 0xff];
  },
  // ALU r, [base+disp8] and [base+disp8], r (RMW), all sizes
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const r = pick(DST, a), base = pick(BASES, b);
    const toMem = (c & 0x100) !== 0;
    const op = ((a >>> 8) & 7) * 8 + (sz.byte ? 0 : 1) + (toMem ? 0 : 2);
    return [...sz.prefix, rex(sz.w, r, base), op, ...memDisp8(r, base, b >>> 8)];
  },
  // MOV r, [base+disp8] / MOV [base+disp8], r
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const r = pick(DST, a), base = pick(BASES, b);
    const op = (sz.byte ? 0x88 : 0x89) + ((c & 0x100) !== 0 ? 0 : 2);
    return [...sz.prefix, rex(sz.w, r, base), op, ...memDisp8(r, base, b >>> 8)];
  },
  // MOV r64, imm32 / MOV r32, imm32 / MOVABS
  (a, b, c) => {
    const dst = pick(DST, a);
    if ((c & 3) === 0) return [rex(true, 0, dst), 0xb8 + (dst & 7), ...u64(BigInt(b) * 0x10001n + BigInt(c))];
    return [rex((c & 1) === 1, 0, dst), 0xc7, modrmReg(0, dst), ...u64(BigInt(b >>> 0)).slice(0, 4)];
  },
  // INC/DEC/NEG/NOT r or [mem]
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const kind = (a >>> 8) & 3;
    const opc = kind < 2 ? (sz.byte ? 0xfe : 0xff) : sz.byte ? 0xf6 : 0xf7;
    const ext = kind < 2 ? kind : kind === 2 ? 3 : 2;
    if ((b & 1) === 0) {
      const dst = pick(DST, a);
      return [...sz.prefix, rex(sz.w, 0, dst), opc, modrmReg(ext, dst)];
    }
    const base = pick(BASES, b);
    return [...sz.prefix, rex(sz.w, 0, base), opc, ...memDisp8(ext, base, b >>> 8)];
  },
  // shifts and rotates by imm8, by 1, by CL
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const dst = pick(DST, a);
    const form = (b >>> 8) % 3;
    const opc = (form === 0 ? 0xc0 : form === 1 ? 0xd0 : 0xd2) + (sz.byte ? 0 : 1);
    const out = [...sz.prefix, rex(sz.w, 0, dst), opc, modrmReg((a >>> 8) & 7, dst)];
    if (form === 0) out.push(b & 0xff);
    return out;
  },
  // MUL / IMUL / DIV / IDIV r, IMUL r, r/m, IMUL r, r/m, imm8
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const src = pick(SRC, b);
    const kind = (a >>> 8) % 6;
    if (kind < 4) return [...sz.prefix, rex(sz.w, 0, src), sz.byte ? 0xf6 : 0xf7, modrmReg(4 + kind, src)];
    const dst = pick(DST, a);
    if (kind === 4) return [rex(sz.w, dst, src), 0x0f, 0xaf, modrmReg(dst, src)];
    return [rex(sz.w, dst, src), 0x6b, modrmReg(dst, src), b & 0xff];
  },
  // PUSH r / POP r / PUSH imm8 / PUSHFQ+POPFQ of a masked value
  (a, b) => {
    const kind = (a >>> 8) & 3;
    const r = pick(DST, a);
    if (kind === 0) return [rex(false, 0, pick(SRC, b)), 0x50 + (pick(SRC, b) & 7)];
    if (kind === 1) return [rex(false, 0, r), 0x58 + (r & 7)];
    if (kind === 2) return [0x6a, b & 0xff];
    // pushfq; and qword [rsp], imm8 (keeps CF..OF, DF); popfq
    return [0x9c, 0x48, 0x83, 0x24, 0x24, (b & 0xd5) | 0x02, 0x9d];
  },
  // LEA, MOVZX, MOVSX, MOVSXD, XCHG, CBW/CWD, BT*, ADC/SBB, flag ops
  (a, b, c) => {
    const dst = pick(DST, a), src = pick(SRC, b);
    switch ((a >>> 8) % 9) {
      case 0: return [rex(true, dst, src), 0x8d, 0x80 | ((dst & 7) << 3) | (src & 7), ...((src & 7) === 4 ? [0x24] : []), ...u64(BigInt(c | 0) & 0xffffffffn).slice(0, 4)];
      case 1: return [rex((c & 1) === 1, dst, src), 0x0f, 0xb6 + (c & 1) + ((c & 2) !== 0 ? 8 : 0), modrmReg(dst, src)];
      case 2: return [rex(true, dst, src), 0x63, modrmReg(dst, src)];
      case 3: return [rex((c & 1) === 1, src, dst), 0x87, modrmReg(src, dst)];
      case 4: return [...((c & 1) === 1 ? [0x48] : []), (c & 2) === 0 ? 0x98 : 0x99];
      case 5: return [rex(true, 0, dst), 0x0f, 0xba, modrmReg(4 + (b & 3), dst), c & 0xff];
      case 6: return [rex(true, src, dst), 0x0f, 0xa3 + 8 * (b & 3), modrmReg(src, dst)];
      case 7: return [rex((c & 1) === 1, src, dst), (b & 1) === 0 ? 0x11 : 0x19, modrmReg(src, dst)];
      default: return [pick([0xf8, 0xf9, 0xf5, 0xfc, 0xfd, 0x90], c)];
    }
  },
  // CMP r, r; Jcc forward over 0..6 bytes (may land inside an instruction)
  (a, b, c) => [rex(true, pick(SRC, b), pick(SRC, a)), 0x39, modrmReg(pick(SRC, b), pick(SRC, a)), 0x70 + (c & 15), (c >>> 4) % 7],
  // write a page-table entry of the 6–8 MiB table: mov qword [r12 + 8k], imm32
  (a, b) => {
    const frames = [0x10, 0x30, 0x31, 0x9, 0x8, 0x3, 0x4, 0x600, 0x601, 0x7ff];
    const flags = [0x3, 0x7, 0x1, 0x5, 0x63, 0x67, 0x83, 0x0, 0x23];
    const v = (pick(frames, a) << 12) | pick(flags, b);
    const slot = ((b >>> 8) & 15) * 8;
    return [0x49, 0xc7, 0x44, 0x24, slot, ...u64(BigInt(v)).slice(0, 4)];
  },
  // touch the 6–8 MiB window: mov rax, [r13 + 0x1000k + d] / mov [r13 + ...], eax
  (a, b) => {
    const disp = ((a & 15) << 12) | (b & 0xff8);
    return (b & 0x10000) === 0
      ? [0x49, 0x8b, 0x85, ...u64(BigInt(disp)).slice(0, 4)]
      : [0x41, 0x89, 0x85, ...u64(BigInt(disp)).slice(0, 4)];
  },
  // INVLPG [r13 + 0x1000k]; reload CR3; switch CR3 to the second address space and back
  (a) => {
    switch ((a >>> 8) & 3) {
      case 0: return [0x41, 0x0f, 0x01, 0xbd, ...u64(BigInt((a & 15) << 12)).slice(0, 4)];
      case 1: return [0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8];
      case 2: return [0x48, 0xc7, 0xc0, 0x00, 0x50, 0x00, 0x00, 0x0f, 0x22, 0xd8];
      default: return [0x48, 0xc7, 0xc0, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8];
    }
  },
  // CR4.SMEP/SMAP toggles, STAC/CLAC, then a supervisor read of a user page
  (a) => {
    const cr4 = [0x620, 0x100620, 0x200620, 0x300620][(a >>> 8) & 3]!;
    return [0x48, 0xc7, 0xc0, ...u64(BigInt(cr4)).slice(0, 4), 0x0f, 0x22, 0xe0,
      ...((a & 1) === 1 ? [0x0f, 0x01, 0xcb] : [0x0f, 0x01, 0xca]),
      0x48, 0x8b, 0x04, 0x25, 0x00, 0x01, 0x20, 0x00];
  },
  // rewrite an IDT gate or a GDT descriptor, then raise #UD / #BP
  (a, b) => {
    const v = pick([6, 3, 13, 14], a);
    const gateAddr = 0x9000 + 16 * v + ((b & 1) === 0 ? 0 : 4);
    const val = pick([0x00008e00, 0x00008f00, 0x0000ee00, 0x00000e00, 0x00008e01, 0x0000a500], b >>> 4);
    const gdt = (b & 2) !== 0;
    const addr = gdt ? 0x8008 + 8 * ((b >>> 8) & 3) + 4 : gateAddr;
    const value = gdt ? pick([0x00af9b00, 0x00af9a00, 0x00cf9300, 0x00af1b00], b >>> 10) : val;
    return [0xc7, 0x04, 0x25, ...u64(BigInt(addr)).slice(0, 4), ...u64(BigInt(value >>> 0)).slice(0, 4),
      ...((a & 0x100) === 0 ? [0x0f, 0x0b] : [0xcc])];
  },
  // self-modifying code: overwrite a byte of code ahead (same block) or on the next code page
  (a, b) => {
    const target = (a & 1) === 0 ? 0x10000 + (b & 0x3ff) : 0x11000 + (b & 0xff);
    return [0xc6, 0x04, 0x25, ...u64(BigInt(target)).slice(0, 4), pick([0x90, 0xc3, 0xf4, 0xcc, 0x48, 0x0f], a >>> 4)];
  },
  // near CALL to a tiny routine on the second code page (inc rbx; ret) and RET
  (a) => [0xe8, ...u64(BigInt(0x11000 - 0x10000)).slice(0, 4), ...((a & 1) === 1 ? [0x90] : [])],
  // SETcc r8 / [base+disp8]; CMOVcc r, r / r, [base+disp8] in 16/32/64 bits
  (a, b, c) => {
    const cc = c & 15;
    if ((a & 0x100) === 0) {
      if ((b & 1) === 0) return [rex(false, 0, pick(DST, a)), 0x0f, 0x90 + cc, modrmReg(0, pick(DST, a))];
      const base = pick(BASES, b);
      return [rex(false, 0, base), 0x0f, 0x90 + cc, ...memDisp8(0, base, b >>> 8)];
    }
    const sz = pick(SIZES.slice(0, 3), c >>> 4);
    const dst = pick(DST, a);
    if ((b & 1) === 0) return [...sz.prefix, rex(sz.w, dst, pick(SRC, b)), 0x0f, 0x40 + cc, modrmReg(dst, pick(SRC, b))];
    const base = pick(BASES, b);
    return [...sz.prefix, rex(sz.w, dst, base), 0x0f, 0x40 + cc, ...memDisp8(dst, base, b >>> 8)];
  },
  // XADD / CMPXCHG r, r and [base+disp8], r (with or without LOCK), every size; CMPXCHG8B/16B
  (a, b, c) => {
    const sz = pick(SIZES, c);
    const r = pick(DST, a);
    const op = ((a >>> 8) & 1) === 0 ? 0xb0 : 0xc0;
    const kind = (b >>> 1) & 3;
    if (kind === 0) return [...sz.prefix, rex(sz.w, r, pick(DST, b >>> 4)), 0x0f, op + (sz.byte ? 0 : 1), modrmReg(r, pick(DST, b >>> 4))];
    const base = pick(BASES, b);
    if (kind === 3) return [rex((c & 1) === 1, 0, base), 0x0f, 0xc7, ...memDisp8(1, base, (b >>> 8) & 0xf0)];
    return [...(kind === 1 ? [0xf0] : []), ...sz.prefix, rex(sz.w, r, base), 0x0f, op + (sz.byte ? 0 : 1), ...memDisp8(r, base, b >>> 8)];
  },
  // BSF / BSR (also F3: TZCNT/LZCNT encodings) / BSWAP / CPUID / fences
  (a, b, c) => {
    const sz = pick(SIZES.slice(0, 3), c);
    const dst = pick(DST, a), src = pick(SRC, b);
    switch ((a >>> 8) % 5) {
      case 0: return [...((b & 0x100) !== 0 ? [0xf3] : []), ...sz.prefix, rex(sz.w, dst, src), 0x0f, 0xbc + (b & 1), modrmReg(dst, src)];
      case 1: return [rex(sz.w, 0, dst), 0x0f, 0xc8 + (dst & 7)];
      case 2: return [0x0f, 0xa2];
      case 3: return [0x0f, 0xae, 0xe8 + 8 * (c % 3)];
      default: return [...sz.prefix, rex(sz.w, dst, 14), 0x0f, 0xbd, ...memDisp8(dst, 14, b >>> 8)];
    }
  },
  // a string instruction over kernel data: mov esi/edi/ecx, then MOVS/STOS/LODS/CMPS/SCAS with or
  // without REP/REPE/REPNE, in every size, either direction
  (a, b, c) => {
    const si = 0x30000 + ((a >>> 4) & 0x7ff), di = 0x30000 + ((b >>> 4) & 0xfff), n = c % 70;
    const prefix = pick([[], [0xf3], [0xf2], [0xf3]], a >>> 16);
    const size = pick([[], [0x66], [0x48], []], b >>> 16);
    const op = pick([0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf], c >>> 8);
    return [0xbe, ...u64(BigInt(si)).slice(0, 4), 0xbf, ...u64(BigInt(di)).slice(0, 4), 0xb9, ...u64(BigInt(n)).slice(0, 4),
      ...((c & 0x10000) !== 0 ? [0xfd] : [0xfc]), ...prefix, ...size, op, 0xfc];
  },
];

/** Fixed RIPs the templates assume: body at 0x10000, routine at 0x11000. */
export function programState(body: readonly number[][], loops: number): ArchState {
  const mem = baseMemory();
  const code: number[] = [];
  for (const insn of body) code.push(...insn);
  // dec ebp; jnz body; hlt
  const back = -(code.length + 2 + 6);
  code.push(0xff, 0xcd, 0x0f, 0x85, ...u64(BigInt(back) & 0xffffffffn).slice(0, 4), 0xf4);
  mem.write(0x10000n, code.slice(0, 0x1000));
  mem.write(0x11000n, [0x48, 0xff, 0xc3, 0xc3]);
  // Second address space: PML4 0x5000 → PDPT 0x6000 → PD 0x7000 (like 0x3000 but 6–8 MiB
  // through the page table at 0xc000, whose entries map frames 0x700.. present).
  mem.write64(0x5000n, 0x6000n | 7n);
  mem.write64(0x6000n, 0x7000n | 7n);
  mem.write64(0x7000n, 0x000000n | 0x83n);
  mem.write64(0x7008n, 0x200000n | 0x87n);
  mem.write64(0x7010n, 0x400000n | 0x83n);
  mem.write64(0x7018n, 0xc000n | 7n);
  for (let k = 0n; k < 16n; k++) mem.write64(0xc000n + 8n * k, ((0x700n + k) << 12n) | 7n);
  // Handlers that resume: #DE #BP #UD skip 2 bytes; #GP #PF drop the error code and skip 2.
  for (const v of [0, 3, 6]) mem.write(0xb000n + 16n * BigInt(v), [0x48, 0x83, 0x04, 0x24, 0x02, 0x48, 0xcf]);
  for (const v of [13, 14]) mem.write(0xb000n + 16n * BigInt(v), [0x48, 0x83, 0xc4, 0x08, 0x48, 0x83, 0x04, 0x24, 0x02, 0x48, 0xcf]);
  const [lo, hi] = gate(0xb030n, { dpl: 3 });
  mem.write64(0x9030n, lo);
  mem.write64(0x9038n, hi);
  const s = layoutState(mem);
  const gpr = [...s.gpr];
  gpr[5] = BigInt(loops);
  gpr[12] = 0x4000n;
  gpr[13] = 0x600000n;
  gpr[14] = 0x30000n;
  gpr[15] = 0x30ff8n;
  gpr[1] = 3n;
  return { ...s, gpr };
}

export const programArb = fc.tuple(
  fc.array(fc.tuple(fc.nat(TEMPLATES.length - 1), fc.integer(), fc.integer()), { minLength: 1, maxLength: 40 }),
  fc.integer({ min: 1, max: 12 }),
).map(([picks, loops]) => ({
  body: picks.map(([t, b, c]) => TEMPLATES[t]!(Math.abs(b) ^ (t << 3), Math.abs(c), (b ^ c) >>> 0)),
  loops,
}));
