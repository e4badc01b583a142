// The compare-and-exchange family: CMPXCHG, XADD, CMPXCHG8B/16B (SDM Vol. 2A CMPXCHG, CMPXCHG8B/16B;
// Vol. 2B XADD; docs/model-choices.md row "CMPXCHG, XADD, CMPXCHG8B/16B"). With one CPU, LOCK
// changes nothing but the #UD rules the decoder applies. A memory destination is translated once
// with write intent (rmwRead / prepareWrite: #PF W = 1, the D bit) and written in every outcome,
// so a fault leaves nothing changed. Not a cache.
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import * as insnModule from "./insn.ts";
import { materialize } from "./flags.ts";
import { alu, aluResultHi, eaHi, eaLo, effectiveAddress, getReg, maskOf, rmwRead, setReg } from "./exec.ts";
import { toLinear } from "./memory/segmented.ts";
import { commitWrite, prepareWrite, readPrepared } from "./memory/linear.ts";
import { noteWrite } from "./memory/pool.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  BASE_LO, FS, GP, PAGE_OFFSET_MASK, PAGE_SHIFT, RAX, RBX, RCX, RDX, SEG_STRIDE, ST_FAULT, ST_OK, ZF,
} = constsModule;
const { ALU_ADD, ALU_CMP } = insnModule;

/** CMPXCHG r/m, r: flags of accumulator − dest (as CMP); equal → dest ← source (the accumulator is
 *  not written); not equal → accumulator ← dest, and a memory dest is written back unchanged. */
export function execCmpxchg(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const mem = i.mod !== 3;
  let tl: number;
  if (mem) {
    tl = rmwRead(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
  } else tl = getReg(m, i.rm, size);
  const th = size === 8 ? m.valueHi : 0;
  const al = getReg(m, RAX, size);
  const ah = size === 8 ? m.valueHi : 0;
  alu(m, ALU_CMP, size, al, ah, tl, th);
  const equal = size === 8 ? al === tl && ah === th : ((al ^ tl) & maskOf(size)) === 0;
  if (equal) {
    const sl = getReg(m, i.reg, size);
    const sh = size === 8 ? m.valueHi : 0;
    if (mem) commitWrite(m, sl, sh);
    else setReg(m, i.rm, size, sl, sh);
  } else {
    if (mem) commitWrite(m, tl, th);
    setReg(m, RAX, size, tl, th);
  }
  return ST_OK;
}

/** XADD r/m, r: TEMP ← dest + source (flags as ADD); source ← dest; dest ← TEMP (written last, so
 *  `xadd eax, eax` leaves the sum). */
export function execXadd(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const mem = i.mod !== 3;
  let dl: number;
  if (mem) {
    dl = rmwRead(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
  } else dl = getReg(m, i.rm, size);
  const dh = size === 8 ? m.valueHi : 0;
  const sl = getReg(m, i.reg, size);
  const sh = size === 8 ? m.valueHi : 0;
  const rl = alu(m, ALU_ADD, size, dl, dh, sl, sh);
  const rh = aluResultHi;
  setReg(m, i.reg, size, dl, dh);
  if (mem) commitWrite(m, rl, rh);
  else setReg(m, i.rm, size, rl, rh);
  return ST_OK;
}

/** CMPXCHG8B m64 / CMPXCHG16B m128 (operandSize 8 / 16): compare EDX:EAX (RDX:RAX) with the memory
 *  operand; equal → ZF = 1, m ← ECX:EBX (RCX:RBX); not equal → ZF = 0, EDX:EAX (RDX:RAX) ← m and
 *  m written back. CMPXCHG16B needs a 16-byte aligned linear address (#GP(0) before any access).
 *  Only ZF changes among the flags. */
export function execCmpxchgWide(m: Machine, i: Insn): number {
  const size = i.operandSize;
  effectiveAddress(m, i);
  const seg = i.seg;
  if (size === 16) {
    // The linear address's low bits: only FS/GS have a base in 64-bit mode (16B needs REX.W).
    const baseLo = seg >= FS ? m.segments[seg * SEG_STRIDE + BASE_LO]! : 0;
    if (((eaLo + baseLo) & 15) !== 0) {
      m.raise(GP, 0);
      return ST_FAULT;
    }
  }
  if (!toLinear(m, seg, eaLo, eaHi, size, true)) return ST_FAULT;
  if (!prepareWrite(m, m.linearLo, m.linearHi, size, m.writeClass)) return ST_FAULT;
  const r = m.regs;
  materialize(m);
  if (size === 8) {
    const lo = readPrepared(m);
    const hi = m.valueHi;
    const equal = lo === r[2 * RAX] && hi === r[2 * RDX];
    if (equal) commitWrite(m, r[2 * RBX]!, r[2 * RCX]!);
    else {
      commitWrite(m, lo, hi);
      setReg(m, RAX, 4, lo, 0);
      setReg(m, RDX, 4, hi, 0);
    }
    m.flags = equal ? m.flags | ZF : m.flags & ~ZF;
    return ST_OK;
  }
  // 16 bytes, aligned: in one page.
  const o = m.preparedPage0 + (m.linearLo & PAGE_OFFSET_MASK);
  const v = m.poolView;
  const w0 = v.getInt32(o, true), w1 = v.getInt32(o + 4, true), w2 = v.getInt32(o + 8, true), w3 = v.getInt32(o + 12, true);
  const equal = w0 === r[2 * RAX] && w1 === r[2 * RAX + 1] && w2 === r[2 * RDX] && w3 === r[2 * RDX + 1];
  if (equal) {
    v.setInt32(o, r[2 * RBX]!, true);
    v.setInt32(o + 4, r[2 * RBX + 1]!, true);
    v.setInt32(o + 8, r[2 * RCX]!, true);
    v.setInt32(o + 12, r[2 * RCX + 1]!, true);
  } else {
    setReg(m, RAX, 8, w0, w1);
    setReg(m, RDX, 8, w2, w3);
  }
  noteWrite(m, m.preparedPage0 >> PAGE_SHIFT);
  m.flags = equal ? m.flags | ZF : m.flags & ~ZF;
  return ST_OK;
}
