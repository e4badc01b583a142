// Segment descriptors: reading the descriptor a selector names (through the descriptor cache),
// loading a segment register's hidden part from one, and setting its accessed bit (an implicit
// supervisor write, SDM Vol. 3A §3.4.5).
//
// Not a cache itself (tables/descriptor-cache.ts is).
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { lookupDescriptor, storeDescriptor } from "./descriptor-cache.ts";
import { markSystemTableFrame, readSystemTable } from "./system-tables.ts";
import { translate } from "../memory/translate.ts";
import { writeLinear } from "../memory/linear.ts";
import { noteWrite } from "../memory/pool.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  A_UNUSABLE, ATTR, BASE_HI, BASE_LO, C_SR, C_SW, GP, LDTR, LIMIT, SEG_STRIDE, SEL, PAGE_BYTES, PAGE_SHIFT,
  PAGE_OFFSET_MASK,
} = constsModule;

/** Descriptor type bit 0 (the accessed bit) within the high dword. */
const DESC_ACCESSED = 0x100;
/** prepareAccessedBit's result when the bit is already set. */
export const ACCESSED_ALREADY_SET = -2;

/**
 * Reads the descriptor `selector` names into m.descriptorLo/Hi (and its linear address into
 * m.descriptorAddrLo/Hi); false with #GP(selector) (or the fault of the implicit read) when it
 * cannot. `ext` is OR'ed into the error code.
 */
export function readDescriptor(m: Machine, selector: number, ext: number): boolean {
  if (lookupDescriptor(m, selector)) return true;
  const index = selector & 0xfff8;
  let baseLo: number;
  let baseHi: number;
  let limit: number;
  const segments = m.segments;
  if ((selector & 4) !== 0) {
    const b = LDTR * SEG_STRIDE;
    if ((segments[b + ATTR]! & A_UNUSABLE) !== 0 || (segments[b + SEL]! & 0xfffc) === 0) {
      m.raise(GP, (selector & 0xfffc) | ext);
      return false;
    }
    baseLo = segments[b + BASE_LO]!;
    baseHi = segments[b + BASE_HI]!;
    limit = segments[b + LIMIT]! >>> 0;
  } else {
    baseLo = m.gdtrLo;
    baseHi = m.gdtrHi;
    limit = m.gdtrLimit;
  }
  if (index + 7 > limit) {
    m.raise(GP, (selector & 0xfffc) | ext);
    return false;
  }
  const lo = (baseLo + index) | 0;
  const hi = (lo >>> 0) < (baseLo >>> 0) ? (baseHi + 1) | 0 : baseHi;
  m.descriptorAddrLo = lo;
  m.descriptorAddrHi = hi;
  const endHi = (lo >>> 0) + 7 > 0xffffffff ? (hi + 1) | 0 : hi;
  if (hi >> 15 !== hi >> 31 || endHi >> 15 !== endHi >> 31) {
    m.raise(GP, (selector & 0xfffc) | ext);
    return false;
  }
  const d = readSystemTable(m, lo, hi, 8);
  if (m.faultVector >= 0) return false;
  m.descriptorLo = d;
  m.descriptorHi = m.valueHi;
  // Cache it when the 8 bytes lie in one allocated frame (now F_SYS).
  if ((lo & PAGE_OFFSET_MASK) <= PAGE_BYTES - 8) {
    const base = translate(m, lo, hi, C_SR);
    if (base > 0) {
      markSystemTableFrame(m, base >> PAGE_SHIFT);
      storeDescriptor(m, selector);
    }
  }
  return true;
}

/** Loads the hidden part of segment register `s` from a descriptor (dlo = bytes 0–3, dhi = bytes
 *  4–7; baseHi = base bits 63:32 of a 16-byte system descriptor, else 0). */
export function loadHiddenPart(m: Machine, s: number, selector: number, dlo: number, dhi: number, baseHi: number): void {
  const b = s * SEG_STRIDE;
  const segments = m.segments;
  const g = (dhi >>> 23) & 1;
  const rawLimit = (dlo & 0xffff) | (dhi & 0x000f0000);
  segments[b + SEL] = selector;
  segments[b + BASE_LO] = (dlo >>> 16) | ((dhi & 0xff) << 16) | (dhi & 0xff000000);
  segments[b + BASE_HI] = baseHi;
  segments[b + LIMIT] = g === 1 ? (rawLimit << 12) | 0xfff : rawLimit;
  segments[b + ATTR] = (dhi >>> 8) & 0xf0ff;
}

/**
 * Translates the byte holding the accessed bit of the descriptor at (addrLo, addrHi) for an
 * implicit supervisor write: its pool offset, ACCESSED_ALREADY_SET when there is nothing to write,
 * or -1 with the fault raised. commitAccessedBit() then writes it — so a transition that sets two
 * accessed bits can check both before writing either.
 */
export function prepareAccessedBit(m: Machine, addrLo: number, addrHi: number, dhi: number): number {
  if ((dhi & DESC_ACCESSED) !== 0) return ACCESSED_ALREADY_SET;
  const lo = (addrLo + 5) | 0;
  const hi = (lo >>> 0) < (addrLo >>> 0) ? (addrHi + 1) | 0 : addrHi;
  const base = translate(m, lo, hi, C_SW);
  if (base < 0) return -1;
  return base + (lo & PAGE_OFFSET_MASK);
}

/** Writes the accessed bit prepared by prepareAccessedBit (nothing for a negative offset). */
export function commitAccessedBit(m: Machine, off: number): void {
  if (off < 0) return;
  m.pool8[off] = m.pool8[off]! | 1;
  noteWrite(m, off >> PAGE_SHIFT);
}

/** Sets the accessed bit of the descriptor at (addrLo, addrHi) if clear (an implicit supervisor
 *  write). Returns false on a fault. */
export function setAccessedBit(m: Machine, addrLo: number, addrHi: number, dhi: number): boolean {
  if ((dhi & DESC_ACCESSED) !== 0) return true;
  const lo = (addrLo + 5) | 0;
  const hi = (lo >>> 0) < (addrLo >>> 0) ? (addrHi + 1) | 0 : addrHi;
  return writeLinear(m, lo, hi, 1, ((dhi >>> 8) & 0xff) | 1, 0, C_SW);
}
