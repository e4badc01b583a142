// The not-present page cache: linear pages whose last walk ended at an entry with P = 0, so that
// translate() raises the #PF again without walking (a guest that takes page faults in a loop, or a
// handler that maps pages on demand, walks once per miss instead of once per access).
// Direct-mapped on the linear page number, NOT_PRESENT_ENTRIES entries in
// Machine.notPresentCache: linear address bits 31:12, bits 63:32, the tlbGeneration recorded in.
//
// Why a hit is invisible: a walk that ends at a not-present entry changes nothing (no A bits), so
// repeating it gives the same #PF as long as none of the entries it read changed. The frames it
// read entries from are marked F_PT when it is recorded, so a write to any of them flushes the TLB
// (memory/pool.ts noteWrite); an unallocated frame on the path reads as zeros and can only change
// by being allocated, which flushes the TLB too.
//
// Invalidated by: any TLB flush (a record is valid only in the tlbGeneration it was made in) —
// which covers MOV CR3/CR4/CR0.WP, EFER.NXE, INVLPG and writes to those page tables.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { slotOf } from "./pool.ts";
import { flushTlb } from "./tlb.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_BYTES, PAGE_SHIFT, F_PT } = constsModule;

const NOT_PRESENT_ENTRIES = 64;
const NOT_PRESENT_MASK = NOT_PRESENT_ENTRIES - 1;
/** Int32 fields per entry: page bits 31:12, bits 63:32, tlbGeneration. */
const NOT_PRESENT_STRIDE = 3;

export function newNotPresentCache(): Int32Array {
  return new Int32Array(NOT_PRESENT_ENTRIES * NOT_PRESENT_STRIDE).fill(-1);
}

/** True when the page of (lo, hi) is recorded not present in the current TLB generation. */
export function knownNotPresent(m: Machine, lo: number, hi: number): boolean {
  const tag = lo >>> PAGE_SHIFT;
  const n = (tag & NOT_PRESENT_MASK) * NOT_PRESENT_STRIDE;
  const c = m.notPresentCache;
  return c[n] === tag && c[n + 1] === hi && c[n + 2] === m.tlbGeneration;
}

/**
 * Records the page of (lo, hi), whose walk ended at a not-present entry of `level` (0 = PML4).
 * The frames the walk read entries from (Machine.walkEntryAddr[0..level]) become F_PT; if that is
 * new for any of them the TLB is flushed first (it may grant writes to them), so the record starts
 * in the generation that follows.
 */
export function recordNotPresent(m: Machine, lo: number, hi: number, level: number): void {
  let newPt = false;
  for (let k = 0; k <= level; k++) {
    const slot = slotOf(m, Math.floor(m.walkEntryAddr[k]! / PAGE_BYTES));
    const f = m.slotFlags[slot]!;
    if (slot !== 0 && (f & F_PT) === 0) {
      m.slotFlags[slot] = f | F_PT;
      newPt = true;
    }
  }
  if (newPt) flushTlb(m);
  const tag = lo >>> PAGE_SHIFT;
  const n = (tag & NOT_PRESENT_MASK) * NOT_PRESENT_STRIDE;
  const c = m.notPresentCache;
  c[n] = tag;
  c[n + 1] = hi;
  c[n + 2] = m.tlbGeneration;
}
