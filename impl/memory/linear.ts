// Access at canonical linear addresses (paging only; segmentation is memory/segmented.ts). Values
// are int32 halves: the low half is returned, the high half of an 8-byte value is in m.valueHi.
// On a fault the result is 0 (or false) and m.faultVector >= 0; nothing has been written.
//
// An access that crosses a page translates both pages (the first first) before touching either.
// Writes go through prepareWrite (translate every page) and commitWrite (store, then noteWrite),
// which read-modify-write instructions and transitions also use to check every page before
// writing any. writeLinear's fast path stores straight through a TLB entry that grants the write
// class (such entries never point at guarded or unallocated frames: memory/tlb.ts).
//
// Not a cache.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { translate } from "./translate.ts";
import * as tlbModule from "./tlb.ts";
import { noteWrite } from "./pool.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_BYTES, PAGE_SHIFT, PAGE_OFFSET_MASK } = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

/** Reads `size` (1, 2, 4, 8) bytes at a linear address with access class `cls`. */
export function readLinear(m: Machine, lo: number, hi: number, size: number, cls: number): number {
  const off = lo & PAGE_OFFSET_MASK;
  if (off + size <= PAGE_BYTES) {
    const base = translate(m, lo, hi, cls);
    if (base < 0) return 0;
    const o = base + off;
    switch (size) {
      case 1:
        return m.pool8[o]!;
      case 2:
        return m.pool8[o]! | (m.pool8[o + 1]! << 8);
      case 4:
        return (o & 3) === 0 ? m.pool32[o >> 2]! : m.poolView.getInt32(o, true);
      default:
        if ((o & 3) === 0) {
          m.valueHi = m.pool32[(o >> 2) + 1]!;
          return m.pool32[o >> 2]!;
        }
        m.valueHi = m.poolView.getInt32(o + 4, true);
        return m.poolView.getInt32(o, true);
    }
  }
  // Crosses a page: translate both pages first (first page first), then gather bytes.
  const b0 = translate(m, lo, hi, cls);
  if (b0 < 0) return 0;
  const nlo = (lo + (PAGE_BYTES - off)) | 0;
  const nhi = nlo === 0 && lo !== 0 ? (hi + 1) | 0 : hi;
  const b1 = translate(m, nlo, nhi, cls);
  if (b1 < 0) return 0;
  let vlo = 0;
  let vhi = 0;
  for (let k = 0; k < size; k++) {
    const o = off + k < PAGE_BYTES ? b0 + off + k : b1 + off + k - PAGE_BYTES;
    const b = m.pool8[o]!;
    if (k < 4) vlo |= b << (8 * k);
    else vhi |= b << (8 * (k - 4));
  }
  m.valueHi = vhi;
  return vlo;
}

/** Translates every page of a write (for read-modify-write: with write intent) without writing;
 *  false on a fault. commitWrite() or readPrepared() use the result. */
export function prepareWrite(m: Machine, lo: number, hi: number, size: number, cls: number): boolean {
  const off = lo & PAGE_OFFSET_MASK;
  m.preparedOffset = off;
  m.preparedSize = size;
  const b0 = translate(m, lo, hi, cls);
  if (b0 < 0) return false;
  m.preparedPage0 = b0;
  if (off + size > PAGE_BYTES) {
    const nlo = (lo + (PAGE_BYTES - off)) | 0;
    const nhi = nlo === 0 && lo !== 0 ? (hi + 1) | 0 : hi;
    const b1 = translate(m, nlo, nhi, cls);
    if (b1 < 0) return false;
    m.preparedPage1 = b1;
  } else m.preparedPage1 = -1;
  return true;
}

/** Reads the bytes of a prepared write (the read of a read-modify-write). */
export function readPrepared(m: Machine): number {
  const size = m.preparedSize;
  const off = m.preparedOffset;
  const b0 = m.preparedPage0, b1 = m.preparedPage1;
  if (b1 < 0) {
    const o = b0 + off;
    switch (size) {
      case 1:
        return m.pool8[o]!;
      case 2:
        return m.pool8[o]! | (m.pool8[o + 1]! << 8);
      case 4:
        return m.poolView.getInt32(o, true);
      default:
        m.valueHi = m.poolView.getInt32(o + 4, true);
        return m.poolView.getInt32(o, true);
    }
  }
  let vlo = 0;
  let vhi = 0;
  for (let k = 0; k < size; k++) {
    const o = off + k < PAGE_BYTES ? b0 + off + k : b1 + off + k - PAGE_BYTES;
    const b = m.pool8[o]!;
    if (k < 4) vlo |= b << (8 * k);
    else vhi |= b << (8 * (k - 4));
  }
  m.valueHi = vhi;
  return vlo;
}

/** Stores into a prepared write. */
export function commitWrite(m: Machine, vlo: number, vhi: number): void {
  const size = m.preparedSize;
  const off = m.preparedOffset;
  const b0 = m.preparedPage0, b1 = m.preparedPage1;
  if (b1 < 0) {
    const o = b0 + off;
    switch (size) {
      case 1:
        m.pool8[o] = vlo;
        break;
      case 2:
        m.pool8[o] = vlo;
        m.pool8[o + 1] = vlo >> 8;
        break;
      case 4:
        m.poolView.setInt32(o, vlo, true);
        break;
      default:
        m.poolView.setInt32(o, vlo, true);
        m.poolView.setInt32(o + 4, vhi, true);
    }
    noteWrite(m, b0 >> PAGE_SHIFT);
    return;
  }
  for (let k = 0; k < size; k++) {
    const o = off + k < PAGE_BYTES ? b0 + off + k : b1 + off + k - PAGE_BYTES;
    m.pool8[o] = k < 4 ? vlo >> (8 * k) : vhi >> (8 * (k - 4));
  }
  noteWrite(m, b0 >> PAGE_SHIFT);
  noteWrite(m, b1 >> PAGE_SHIFT);
}

/**
 * Stores `size` (1–8) bytes at byte `at` of a prepared write wider than 8 bytes (SGDT/SIDT's 6- or
 * 10-byte operand), through the translations prepareWrite made: the whole operand is one access,
 * translated once, so a part written first cannot change where a later part goes (no TLB is
 * observable, but neither is a re-walk in the middle of one access). finishPrepared() reacts to
 * the stores once they are all made.
 */
export function storePrepared(m: Machine, at: number, size: number, vlo: number, vhi: number): void {
  const off = m.preparedOffset + at;
  const b0 = m.preparedPage0, b1 = m.preparedPage1;
  for (let k = 0; k < size; k++) {
    const o = off + k < PAGE_BYTES ? b0 + off + k : b1 + off + k - PAGE_BYTES;
    m.pool8[o] = k < 4 ? vlo >> (8 * k) : vhi >> (8 * (k - 4));
  }
}

/** The reactions (noteWrite) to the stores of a prepared write made with storePrepared. */
export function finishPrepared(m: Machine): void {
  noteWrite(m, m.preparedPage0 >> PAGE_SHIFT);
  if (m.preparedPage1 >= 0) noteWrite(m, m.preparedPage1 >> PAGE_SHIFT);
}

/** Writes `size` bytes at a linear address; false on a fault (nothing written). */
export function writeLinear(m: Machine, lo: number, hi: number, size: number, vlo: number, vhi: number,
  cls: number): boolean {
  const off = lo & PAGE_OFFSET_MASK;
  if (off + size <= PAGE_BYTES) {
    // Fast path: a TLB entry granting the write class (never a guarded or zero frame), probed
    // inline (memory/tlb.ts).
    const tag = lo >>> PAGE_SHIFT;
    const t = m.tlb;
    const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
    if (t[e + TLB_TAG] === tag && t[e + TLB_TAG_HI] === hi && (t[e + TLB_CLASSES]! & cls) !== 0 && !m.uncached) {
      const o = t[e + TLB_POOL_OFFSET]! + off;
      switch (size) {
        case 1:
          m.pool8[o] = vlo;
          return true;
        case 2:
          m.pool8[o] = vlo;
          m.pool8[o + 1] = vlo >> 8;
          return true;
        case 4:
          if ((o & 3) === 0) m.pool32[o >> 2] = vlo;
          else m.poolView.setInt32(o, vlo, true);
          return true;
        default:
          if ((o & 3) === 0) {
            m.pool32[o >> 2] = vlo;
            m.pool32[(o >> 2) + 1] = vhi;
          } else {
            m.poolView.setInt32(o, vlo, true);
            m.poolView.setInt32(o + 4, vhi, true);
          }
          return true;
      }
    }
  }
  if (!prepareWrite(m, lo, hi, size, cls)) return false;
  commitWrite(m, vlo, vhi);
  return true;
}
