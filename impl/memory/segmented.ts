// Segmented addresses → linear (SDM Vol. 3A §3.4, §5.3; 64-bit mode: GLOBAL-03), and the
// segmented reads and writes built on it: 64-bit mode adds the FS/GS bases and checks that the
// first and last byte are canonical; compatibility mode applies 32-bit offsets, the base, the
// limit (expand-down included) and the type checks. Alignment checking (#AC(0)) is applied here
// too, on the linear address. Faults: #SS(0) for SS, else #GP(0).
//
// Not a cache.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { readLinear, writeLinear } from "./linear.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AC_VEC, A_DB, A_S, A_TYPE, A_UNUSABLE, ATTR, BASE_HI, BASE_LO, FS, GP, GS, LIMIT, SEG_STRIDE, SS, SS_VEC,
} = constsModule;

/**
 * Forms the linear address of an access of `size` bytes at offset (lo, hi) in segment `s` into
 * m.linearLo/linearHi. Returns false on a fault.
 */
export function toLinear(m: Machine, s: number, lo: number, hi: number, size: number, write: boolean): boolean {
  const segments = m.segments;
  const b = s * SEG_STRIDE;
  if (m.mode64) {
    if (s === FS || s === GS) {
      const blo = segments[b + BASE_LO]!;
      const nlo = (lo + blo) | 0;
      const carry = (nlo >>> 0) < (lo >>> 0) ? 1 : 0;
      hi = (hi + segments[b + BASE_HI]! + carry) | 0;
      lo = nlo;
    }
    // canonical first byte and last byte
    const ehi = (lo >>> 0) + (size - 1) > 0xffffffff ? (hi + 1) | 0 : hi;
    if ((hi >> 15) !== (hi >> 31) || (ehi >> 15) !== (ehi >> 31) || (ehi !== hi && hi === 0x7fffffff)) {
      m.raise(s === SS ? SS_VEC : GP, 0);
      return false;
    }
    m.linearLo = lo;
    m.linearHi = hi;
    if (m.alignmentCheck && size > 1 && size <= 8 && (lo & (size - 1)) !== 0) {
      m.raise(AC_VEC, 0);
      return false;
    }
    return true;
  }
  // Compatibility mode.
  const fault = s === SS ? SS_VEC : GP;
  const attr = segments[b + ATTR]!;
  // Unusable, or a system descriptor in the hidden part (only a state file can put one there):
  // no access (docs/model-choices.md "Compatibility-mode segmentation").
  if ((attr & A_UNUSABLE) !== 0 || (attr & A_S) === 0) {
    m.raise(fault, 0);
    return false;
  }
  const type = attr & A_TYPE;
  const code = (type & 8) !== 0;
  if (write && (code || (type & 2) === 0)) {
    m.raise(fault, 0);
    return false;
  }
  // Reads need data or readable code — through any segment register, CS included (instruction
  // fetches do not come here).
  if (!write && code && (type & 2) === 0) {
    m.raise(fault, 0);
    return false;
  }
  const off = lo >>> 0;
  const last = off + size - 1;
  const limit = segments[b + LIMIT]! >>> 0;
  if (!code && (type & 4) !== 0) {
    // expand-down: valid offsets are limit+1 .. (B ? 0xffffffff : 0xffff)
    const top = (attr & A_DB) !== 0 ? 0xffffffff : 0xffff;
    if (off <= limit || last > top) {
      m.raise(fault, 0);
      return false;
    }
  } else if (last > limit) {
    m.raise(fault, 0);
    return false;
  }
  m.linearLo = (off + (segments[b + BASE_LO]! >>> 0)) | 0;
  m.linearHi = 0;
  if (m.alignmentCheck && size > 1 && size <= 8 && (m.linearLo & (size - 1)) !== 0) {
    m.raise(AC_VEC, 0);
    return false;
  }
  return true;
}

/**
 * The segment checks (compatibility mode: usable, type, limit; 64-bit mode: canonical) of a whole
 * multi-part operand of `size` bytes — a far pointer m16:16/32/64 — before any part of it is read,
 * so that a part beyond the limit faults before the paging of the parts before it (the operand is
 * one access of 4, 6 or 10 bytes, as SGDT/SIDT's is). No alignment check here: each part's read
 * applies its own. Returns false on a fault.
 */
export function checkOperandRange(m: Machine, s: number, lo: number, hi: number, size: number): boolean {
  const ac = m.alignmentCheck;
  m.alignmentCheck = false;
  const ok = toLinear(m, s, lo, hi, size, false);
  m.alignmentCheck = ac;
  return ok;
}

/** Reads `size` bytes at offset (lo, hi) of segment `s` (toLinear, then readLinear). */
export function readSegmented(m: Machine, s: number, lo: number, hi: number, size: number, cls: number): number {
  if (!toLinear(m, s, lo, hi, size, false)) return 0;
  return readLinear(m, m.linearLo, m.linearHi, size, cls);
}

/** Writes `size` bytes at offset (lo, hi) of segment `s`; false on a fault (nothing written). */
export function writeSegmented(m: Machine, s: number, lo: number, hi: number, size: number, vlo: number, vhi: number,
  cls: number): boolean {
  if (!toLinear(m, s, lo, hi, size, true)) return false;
  return writeLinear(m, m.linearLo, m.linearHi, size, vlo, vhi, cls);
}
