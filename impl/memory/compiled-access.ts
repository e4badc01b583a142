// Data access for compiled blocks (64-bit mode; compile/ passes these functions to the generated
// code). Generated code first tries its own one-entry page cache (compile/memory-operands.ts) and
// calls here when that misses: the TLB probe again, inline, then the general segmented path.
// `s` is the segment register (only FS/GS add a base in 64-bit mode).
//
// compiledLoad returns the value (high half in m.valueHi); a fault when m.faultVector >= 0.
// compiledStore and compiledRmwCommit return STORE_DONE, STORE_FAULT, or STORE_END_BLOCK (done, but
// the write reached a page-table or code frame: Machine.blockEnd, the block must end).
//
// Not a cache (the TLB and the block page cache say what invalidates them).
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import * as tlbModule from "./tlb.ts";
import { prepareWrite, readPrepared, commitWrite } from "./linear.ts";
import { readSegmented, toLinear, writeSegmented } from "./segmented.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BASE_HI, BASE_LO, FS, SEG_STRIDE, PAGE_BYTES, PAGE_OFFSET_MASK, PAGE_SHIFT } = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

/** Results of compiledStore / compiledRmwCommit. */
export const STORE_DONE = 0, STORE_FAULT = 1, STORE_END_BLOCK = 2;

export function compiledLoad(m: Machine, s: number, lo: number, hi: number, size: number): number {
  let l = lo, h = hi;
  if (s >= FS) {
    const b = s * SEG_STRIDE;
    const blo = m.segments[b + BASE_LO]!;
    l = (lo + blo) | 0;
    h = (hi + m.segments[b + BASE_HI]! + ((l >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
  }
  const off = l & PAGE_OFFSET_MASK;
  // The TLB probe (memory/tlb.ts), inline.
  const tag = l >>> PAGE_SHIFT;
  const t = m.tlb;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  if (t[e + TLB_TAG] === tag && t[e + TLB_TAG_HI] === h && (t[e + TLB_CLASSES]! & m.readFastClass) !== 0 && off <= PAGE_BYTES - size) {
    const o = t[e + TLB_POOL_OFFSET]! + off;
    if (size === 8) {
      if ((o & 3) === 0) {
        m.valueHi = m.pool32[(o >> 2) + 1]!;
        return m.pool32[o >> 2]!;
      }
      m.valueHi = m.poolView.getInt32(o + 4, true);
      return m.poolView.getInt32(o, true);
    }
    if (size === 4) return (o & 3) === 0 ? m.pool32[o >> 2]! : m.poolView.getInt32(o, true);
    if (size === 2) return m.pool8[o]! | (m.pool8[o + 1]! << 8);
    return m.pool8[o]!;
  }
  return readSegmented(m, s, lo, hi, size, m.readClass);
}

export function compiledStore(m: Machine, s: number, lo: number, hi: number, size: number, vlo: number,
  vhi: number): number {
  let l = lo, h = hi;
  if (s >= FS) {
    const b = s * SEG_STRIDE;
    const blo = m.segments[b + BASE_LO]!;
    l = (lo + blo) | 0;
    h = (hi + m.segments[b + BASE_HI]! + ((l >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
  }
  const off = l & PAGE_OFFSET_MASK;
  // The TLB probe (memory/tlb.ts), inline.
  const tag = l >>> PAGE_SHIFT;
  const t = m.tlb;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  if (t[e + TLB_TAG] === tag && t[e + TLB_TAG_HI] === h && (t[e + TLB_CLASSES]! & m.writeFastClass) !== 0 && off <= PAGE_BYTES - size) {
    const o = t[e + TLB_POOL_OFFSET]! + off;
    if (size === 8) {
      if ((o & 3) === 0) {
        m.pool32[o >> 2] = vlo;
        m.pool32[(o >> 2) + 1] = vhi;
      } else {
        m.poolView.setInt32(o, vlo, true);
        m.poolView.setInt32(o + 4, vhi, true);
      }
    } else if (size === 4) {
      if ((o & 3) === 0) m.pool32[o >> 2] = vlo;
      else m.poolView.setInt32(o, vlo, true);
    } else if (size === 2) {
      m.pool8[o] = vlo;
      m.pool8[o + 1] = vlo >> 8;
    } else m.pool8[o] = vlo;
    return STORE_DONE;
  }
  if (!writeSegmented(m, s, lo, hi, size, vlo, vhi, m.writeClass)) return STORE_FAULT;
  return m.blockEnd ? STORE_END_BLOCK : STORE_DONE;
}

/** The read of a read-modify-write: translates with write intent and returns the old value. */
export function compiledRmwRead(m: Machine, s: number, lo: number, hi: number, size: number): number {
  if (!toLinear(m, s, lo, hi, size, true)) return 0;
  if (!prepareWrite(m, m.linearLo, m.linearHi, size, m.writeClass)) return 0;
  return readPrepared(m);
}

/** Completes compiledRmwRead(). */
export function compiledRmwCommit(m: Machine, vlo: number, vhi: number): number {
  commitWrite(m, vlo, vhi);
  return m.blockEnd ? STORE_END_BLOCK : STORE_DONE;
}
