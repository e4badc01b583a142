// The software TLB: linear page → pool byte offset of its frame, plus the set of access classes
// (consts.ts C_*) that may use the entry without a walk. Direct-mapped on linear address bits
// 21:12, TLB_ENTRIES entries of TLB_STRIDE int32 fields in Machine.tlb.
//
// Why a hit is invisible: an entry is filled only by a walk that succeeded and set every A bit it
// used (memory/translate.ts); write classes are granted only when the leaf's D bit is already set,
// the frame is neither a page-table, code, system-table nor unallocated frame (F_GUARDED, slot 0),
// and the frame is already marked written (F_TOUCHED, or the walk is for a write and marks it).
// So a hit does exactly what an uncached walk would do (which would find A/D set and change
// nothing), Engine.touched() sees every written frame, and every write that matters to another
// cache still reaches noteWrite.
//
// Invalidated (flushTlb: every entry) by: MOV CR0 changing WP, MOV CR3, MOV CR4, WRMSR EFER
// changing NXE, INVLPG (all entries, whatever the page), a write to a frame a walk read entries from (F_PT), a frame first becoming
// F_PT, F_CODE or F_SYS (to withdraw write classes), the allocation of a frame (entries may point
// at the zero page), the A/D journal's rollback, and load() (a new Machine). Each flush also starts
// a new tlbGeneration (the not-present cache) and a new system-table generation (the system-table
// caches assume the translations and the A bits the TLB stood for).
//
// The probe — entry e = ((lo >>> PAGE_SHIFT) & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT is a hit for
// access class `cls` when tlb[e + TLB_TAG] === lo >>> PAGE_SHIFT, tlb[e + TLB_TAG_HI] === hi and
// (tlb[e + TLB_CLASSES] & cls) !== 0; the page is at pool offset tlb[e + TLB_POOL_OFFSET] — is
// written out inline, from these constants, where it runs hot: memory/translate.ts translate,
// memory/linear.ts writeLinear, memory/compiled-access.ts, tables/iret-cache.ts,
// engine/chain.ts, and the generated code (compile/memory-operands.ts). (As a function it cost
// the syscall loop about 6% in instructions: V8 did not inline it into the run loop.)
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_SHIFT } = constsModule;

export const TLB_ENTRIES = 1024;
/** Entry index of a linear page: its number's low bits. */
export const TLB_INDEX_MASK = TLB_ENTRIES - 1;
/** Int32 fields per entry, and its log2 (entry e starts at tlb[e << TLB_STRIDE_SHIFT]). */
export const TLB_STRIDE_SHIFT = 2;
export const TLB_STRIDE = 1 << TLB_STRIDE_SHIFT;
/** Entry fields: linear address bits 31:12 (the tag; -1 = empty), bits 63:32, the access classes
 *  granted, the pool byte offset of the frame. */
export const TLB_TAG = 0, TLB_TAG_HI = 1, TLB_CLASSES = 2, TLB_POOL_OFFSET = 3;

export function newTlb(): Int32Array {
  return new Int32Array(TLB_ENTRIES * TLB_STRIDE).fill(-1);
}

/** Index in Machine.tlb of the entry for the page of linear address bits 31:0 `lo`. */
export function tlbEntry(lo: number): number {
  return ((lo >>> PAGE_SHIFT) & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
}

/** Records a translation (memory/translate.ts, after a successful walk). */
export function tlbFill(m: Machine, lo: number, hi: number, classes: number, poolOffset: number): void {
  const t = m.tlb;
  const e = tlbEntry(lo);
  t[e + TLB_TAG] = lo >>> PAGE_SHIFT;
  t[e + TLB_TAG_HI] = hi;
  t[e + TLB_CLASSES] = classes;
  t[e + TLB_POOL_OFFSET] = poolOffset;
}

/** Empties the TLB; a new TLB generation and a new system-table generation begin. */
export function flushTlb(m: Machine): void {
  m.tlb.fill(-1);
  m.tlbGeneration = (m.tlbGeneration + 1) | 0;
  // tables/system-tables.ts invalidateSystemTables, inlined (this module stays a leaf).
  m.systemTableGeneration = (m.systemTableGeneration + 1) | 0;
}
