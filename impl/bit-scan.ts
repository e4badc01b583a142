// BSF, BSR (and TZCNT/LZCNT encodings, which execute as BSF/BSR on the modelled CPU) and BSWAP
// (SDM Vol. 2A BSF, BSR, BSWAP; docs/model-choices.md rows "BSF, BSR, BSWAP" and "Undefined
// flags"). Not a cache.
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import { PARITY, materialize } from "./flags.ts";
import { getReg, readRM, setReg } from "./exec.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { ARITH, ST_FAULT, ST_OK, ZF } = constsModule;

/** BSF (reverse = false) / BSR: the index of the lowest / highest set bit of the source. Source ≠ 0:
 *  dest ← index, ZF = CF = OF = AF = 0, SF and PF from the index. Source = 0: ZF = 1, the other
 *  flags and the destination unchanged (a 32-bit destination still has bits 63:32 cleared). */
export function execBitScan(m: Machine, i: Insn, reverse: boolean): number {
  const size = i.operandSize;
  const lo0 = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = size === 8 ? m.valueHi : 0;
  const lo = size === 2 ? lo0 & 0xffff : lo0;
  materialize(m);
  if ((lo | hi) === 0) {
    m.flags |= ZF;
    if (size === 4) m.regs[2 * i.reg + 1] = 0;
    return ST_OK;
  }
  let index: number;
  if (reverse) index = hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(lo);
  else index = lo !== 0 ? 31 - Math.clz32(lo & -lo) : 63 - Math.clz32(hi & -hi);
  setReg(m, i.reg, size, index, 0);
  // The flags of a logical result equal to the index (its sign bit is 0), then ZF = 0.
  m.flags = (m.flags & ~ARITH) | PARITY[index]!;
  return ST_OK;
}

/** BSWAP r32 / r64 reverses the bytes (r32 zero-extends); BSWAP r16 clears the low 16 bits. */
export function execBswap(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const n = i.rm;
  if (size === 2) {
    m.regs[2 * n] = m.regs[2 * n]! & ~0xffff;
    return ST_OK;
  }
  const lo = getReg(m, n, size);
  const hi = m.valueHi;
  if (size === 4) setReg(m, n, 4, swap32(lo), 0);
  else setReg(m, n, 8, swap32(hi), swap32(lo));
  return ST_OK;
}

function swap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}
