// Linear → physical translation: translate() asks the TLB (memory/tlb.ts), then the not-present
// cache (memory/not-present.ts), and walks the 4-level page tables (SDM Vol. 3A §4.5) only when
// neither answers. The walk checks every entry first and sets A bits (and the leaf's D bit for a
// write) only when the access succeeds, journaling each change (memory/ad-journal.ts); it marks
// the frames it read entries from F_PT (so writes to them flush the TLB) and fills the TLB with
// every access class the combined rights allow (not just the one asked for).
//
// Not a cache itself: the two caches it consults say what invalidates them.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import * as tlbModule from "./tlb.ts";
import { tlbFill, flushTlb } from "./tlb.ts";
import { knownNotPresent, recordNotPresent } from "./not-present.ts";
import { recordAdWrite } from "./ad-journal.ts";
import { allocateFrame, readPhysical64, slotOf } from "./pool.ts";
import { invalidateCode } from "../blocks/block-cache.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  C_FETCH, C_SR, C_SRA, C_SW, C_SWA, C_SX, C_UR, C_USER, C_UW, C_UX, C_WRITE, CR0_WP, CR4_SMAP, CR4_SMEP,
  EFER_NXE, PF_VEC, VEC_MEMLIMIT, PAGE_BYTES, PAGE_SHIFT, PAGE_OFFSET_MASK, F_PT, F_CODE, F_SYS, F_TOUCHED,
  F_GUARDED,
} = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

const TWO32 = 4294967296;

/** #PF error-code bits (SDM Vol. 3A §4.7). */
const PF_P = 1, PF_WR = 2, PF_US = 4, PF_RSVD = 8, PF_ID = 16;
/** Page-table entry bits (low dword). */
const PTE_P = 1, PTE_RW = 2, PTE_US = 4, PTE_A = 0x20, PTE_D = 0x40, PTE_PS = 0x80;

/**
 * Translates the page of linear address (lo, hi) for one access class; returns the pool byte
 * offset of the page, or -1 with a #PF raised (CR2 written). The address must be canonical.
 * A TLB hit is used only when it grants `cls`; otherwise the page tables are walked.
 */
export function translate(m: Machine, lo: number, hi: number, cls: number): number {
  // The TLB probe (memory/tlb.ts), inline.
  const tag = lo >>> PAGE_SHIFT;
  const t = m.tlb;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  if (t[e + TLB_TAG] === tag && t[e + TLB_TAG_HI] === hi && (t[e + TLB_CLASSES]! & cls) !== 0 && !m.uncached) {
    return t[e + TLB_POOL_OFFSET]!;
  }
  if (!m.uncached && knownNotPresent(m, lo, hi)) return pageFault(m, lo, hi, faultBits(m, cls));
  return walk(m, lo, hi, cls);
}

/** The #PF error-code bits an access class contributes (W/R, U/S, I/D). */
function faultBits(m: Machine, cls: number): number {
  const fetch = (cls & C_FETCH) !== 0;
  return ((cls & C_WRITE) !== 0 ? PF_WR : 0) | ((cls & C_USER) !== 0 ? PF_US : 0) |
    (fetch && ((m.efer & EFER_NXE) !== 0 || (m.cr4 & CR4_SMEP) !== 0) ? PF_ID : 0);
}

/** The 4-level walk, setting A/D bits only when it succeeds. */
function walk(m: Machine, lo: number, hi: number, cls: number): number {
  const nxe = (m.efer & EFER_NXE) !== 0;
  const user = (cls & C_USER) !== 0;
  const write = (cls & C_WRITE) !== 0;
  const fetch = (cls & C_FETCH) !== 0;
  const smap = (m.cr4 & CR4_SMAP) !== 0;
  const smep = (m.cr4 & CR4_SMEP) !== 0;
  const wp = (m.cr0 & CR0_WP) !== 0;
  let code = (write ? PF_WR : 0) | (user ? PF_US : 0) | (fetch && (nxe || smep) ? PF_ID : 0);

  // Entry physical addresses and values, top-down (at most 4 levels).
  let tableLo = m.cr3Lo & ~PAGE_OFFSET_MASK;
  let tableHi = m.cr3Hi & 0x3fff;
  const idx0 = (hi >>> 7) & 0x1ff;
  const idx1 = ((hi & 0x7f) << 2) | (lo >>> 30);
  const idx2 = (lo >>> 21) & 0x1ff;
  const idx3 = (lo >>> PAGE_SHIFT) & 0x1ff;
  let allUser = true;
  let allWrite = true;
  let nx = false;
  let leafLevel = 3;
  const entryAddr = m.walkEntryAddr;
  const entryLo = m.walkEntryLo;
  for (let level = 0; level < 4; level++) {
    const idx = level === 0 ? idx0 : level === 1 ? idx1 : level === 2 ? idx2 : idx3;
    const pa = tableHi * TWO32 + (tableLo >>> 0) + idx * 8;
    const elo = readPhysical64(m, pa);
    const ehi = m.valueHi;
    entryAddr[level] = pa;
    entryLo[level] = elo;
    if ((elo & PTE_P) === 0) {
      if (!m.uncached) recordNotPresent(m, lo, hi, level);
      return pageFault(m, lo, hi, code);
    }
    // Reserved bits: 51:MAXPHYADDR(46), XD without NXE, PS in a PML4E, the low address bits of a
    // large-page leaf.
    let rsvd = (ehi & 0x000fc000) !== 0 || (!nxe && ehi < 0);
    const ps = (elo & PTE_PS) !== 0;
    if (level === 0 && ps) rsvd = true;
    if (level === 1 && ps && (elo & 0x3fffe000) !== 0) rsvd = true;
    if (level === 2 && ps && (elo & 0x001fe000) !== 0) rsvd = true;
    if (rsvd) return pageFault(m, lo, hi, code | PF_P | PF_RSVD);
    if ((elo & PTE_US) === 0) allUser = false;
    if ((elo & PTE_RW) === 0) allWrite = false;
    if (ehi < 0) nx = true;
    if ((level === 1 || level === 2) && ps) {
      leafLevel = level;
      break;
    }
    tableLo = elo & ~PAGE_OFFSET_MASK;
    tableHi = ehi & 0x3fff;
  }
  // Access rights on the combined entries.
  code |= PF_P;
  if (user) {
    if (!allUser) return pageFault(m, lo, hi, code);
    if (write && !allWrite) return pageFault(m, lo, hi, code);
    if (fetch && nx && nxe) return pageFault(m, lo, hi, code);
  } else if (fetch) {
    if (nx && nxe) return pageFault(m, lo, hi, code);
    if (allUser && smep) return pageFault(m, lo, hi, code);
  } else {
    if (allUser && smap && (cls === C_SR || cls === C_SW)) return pageFault(m, lo, hi, code);
    if (write && !allWrite && wp) return pageFault(m, lo, hi, code);
  }
  // Frame of the 4 KiB page.
  const leafLo = entryLo[leafLevel]!;
  readPhysical64(m, entryAddr[leafLevel]!);
  const leafHi = m.valueHi;
  let frameLo: number;
  if (leafLevel === 1) frameLo = (leafLo & 0xc0000000) | (lo & 0x3ffff000);
  else if (leafLevel === 2) frameLo = (leafLo & 0xffe00000) | (lo & 0x001ff000);
  else frameLo = leafLo & ~PAGE_OFFSET_MASK;
  const frame = (leafHi & 0x3fff) * (TWO32 / PAGE_BYTES) + (frameLo >>> PAGE_SHIFT);

  // Success: set A in every entry used, D in the leaf for a write; note page-table frames.
  let newPt = false;
  for (let level = 0; level <= leafLevel; level++) {
    const pa = entryAddr[level]!;
    const slot = slotOf(m, Math.floor(pa / PAGE_BYTES));
    const o = slot * PAGE_BYTES + (pa & PAGE_OFFSET_MASK);
    const b = m.pool8[o]!;
    const want = b | PTE_A | (write && level === leafLevel ? PTE_D : 0);
    if (want !== b) {
      recordAdWrite(m, o, b);
      m.pool8[o] = want;
      const f = m.slotFlags[slot]!;
      m.slotFlags[slot] = f | F_TOUCHED;
      if ((f & F_CODE) !== 0) {
        invalidateCode(m, slot);
        m.blockEnd = true;
      }
      if ((f & F_SYS) !== 0) m.systemTableGeneration = (m.systemTableGeneration + 1) | 0;
    }
    if ((m.slotFlags[slot]! & F_PT) === 0) {
      m.slotFlags[slot] = m.slotFlags[slot]! | F_PT;
      newPt = true;
    }
  }
  if (newPt) flushTlb(m);
  const leafAddr = entryAddr[leafLevel]!;
  const dirty = (m.pool8[slotOf(m, Math.floor(leafAddr / PAGE_BYTES)) * PAGE_BYTES + (leafAddr & PAGE_OFFSET_MASK)]! & PTE_D) !== 0;

  let slot = slotOf(m, frame);
  if (slot === 0 && write) {
    slot = allocateFrame(m, frame);
    if (slot < 0) {
      m.raise(VEC_MEMLIMIT, -1);
      return -1;
    }
  }
  // Classes this entry grants from now on (the rights above, evaluated for every class).
  const sf = m.slotFlags[slot]!;
  // Write classes skip noteWrite, so they are granted only to a frame already marked written (or
  // marked below, for this write): a read through a dirty entry must not let a later store reach
  // the frame unmarked, or Engine.touched() would miss the page.
  const writable = dirty && slot !== 0 && (sf & F_GUARDED) === 0 && (write || (sf & F_TOUCHED) !== 0);
  let classes = C_SRA;
  if (!(allUser && smap)) classes |= C_SR;
  if (allUser) classes |= C_UR;
  if (!(nx && nxe)) {
    if (allUser) classes |= C_UX;
    if (!(allUser && smep)) classes |= C_SX;
  }
  if (writable) {
    if (allUser && allWrite) classes |= C_UW;
    if (allWrite || !wp) {
      classes |= C_SWA;
      if (!(allUser && smap)) classes |= C_SW;
    }
  }
  tlbFill(m, lo, hi, classes, slot * PAGE_BYTES);
  if ((cls & C_WRITE) !== 0) m.slotFlags[slot] = m.slotFlags[slot]! | F_TOUCHED;
  return slot * PAGE_BYTES;
}

/** Raises #PF with `code`, CR2 = the linear address; returns -1. */
function pageFault(m: Machine, lo: number, hi: number, code: number): number {
  m.cr2Lo = lo;
  m.cr2Hi = hi;
  m.raise(PF_VEC, code);
  return -1;
}
