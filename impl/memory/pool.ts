// The physical memory pool: guest frames live in 4 KiB slots of one growing buffer
// (Machine.pool8/pool32/poolView). Slot 0 is the zero page: every unallocated frame reads as it,
// and a frame gets a slot of its own when first written (or loaded). A two-level directory maps
// frame → slot for lookups (Machine.slotDirectory); Machine.frameSlot keeps allocation order.
//
// Each slot carries flags (consts.ts F_*) that tie the caches to the memory they were filled
// from. noteWrite() is the one place a write to guest memory is reacted to:
//   F_PT   a walk read page-table entries from this frame → the write flushes the TLB;
//   F_CODE blocks were decoded from it → the write drops them (blocks/block-cache.ts);
//   F_SYS  a system-table cache was filled from it → a new system-table generation;
//   F_TOUCHED it was written (Engine.touched()).
// Frames with F_PT, F_CODE or F_SYS (F_GUARDED) never get TLB write classes, so no write reaches
// them without passing here. Either of the first two also ends the running block (blockEnd).
//
// Not a cache: nothing here is invalidated. Allocating a frame flushes the TLB (entries for it
// pointed at the zero page) and drops the blocks decoded from the zero page.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { flushTlb } from "./tlb.ts";
import { invalidateCode } from "../blocks/block-cache.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_BYTES, PAGE_OFFSET_MASK, F_PT, F_CODE, F_TOUCHED, F_SYS, F_GUARDED } = constsModule;

/** Frames per chunk of the slot directory (frames < 2^34 with MAXPHYADDR 46; missing chunks
 *  mean unallocated). */
const DIRECTORY_CHUNK = 1024;
/** Index within a chunk (`&`, not `%`: frames above 2^31 are doubles and `%` would be fmod). */
const DIRECTORY_MASK = DIRECTORY_CHUNK - 1;

/** Slot of a frame; 0 (the zero page) when unallocated. */
export function slotOf(m: Machine, frame: number): number {
  const chunk = m.slotDirectory[Math.floor(frame / DIRECTORY_CHUNK)];
  return chunk === undefined ? 0 : chunk[frame & DIRECTORY_MASK]!;
}

/** Allocates a slot for `frame` (or returns its slot); -1 when the page budget is exhausted. */
export function allocateFrame(m: Machine, frame: number): number {
  const existing = m.frameSlot.get(frame);
  if (existing !== undefined) return existing;
  if (m.slotCount > m.maxPages) return -1;
  const slot = m.slotCount++;
  if (slot >= m.slotFrame.length) growPool(m, slot + 1);
  m.frameSlot.set(frame, slot);
  const ci = Math.floor(frame / DIRECTORY_CHUNK);
  let chunk = m.slotDirectory[ci];
  if (chunk === undefined) m.slotDirectory[ci] = chunk = new Int32Array(DIRECTORY_CHUNK);
  chunk[frame & DIRECTORY_MASK] = slot;
  m.slotFrame[slot] = frame;
  m.slotFlags[slot] = 0;
  // TLB entries for this frame pointed at the zero page.
  flushTlb(m);
  // Blocks decoded while the frame read as zeros are now stale.
  if (m.blocksBySlot[0] !== undefined) invalidateCode(m, 0);
  return slot;
}

function growPool(m: Machine, need: number): void {
  let n = m.slotFrame.length;
  while (n < need) n *= 2;
  n = Math.min(n, m.maxPages + 1);
  const pool8 = new Uint8Array(n * PAGE_BYTES);
  pool8.set(m.pool8);
  m.pool8 = pool8;
  m.pool32 = new Int32Array(pool8.buffer);
  m.poolView = new DataView(pool8.buffer);
  const frames = new Float64Array(n).fill(-1);
  frames.set(m.slotFrame);
  m.slotFrame = frames;
  const flags = new Uint8Array(n);
  flags.set(m.slotFlags);
  m.slotFlags = flags;
}

/** Reads the 8 bytes at physical address `pa` (8-byte aligned: page-table entries); returns the low
 *  dword, the high one in m.valueHi. */
export function readPhysical64(m: Machine, pa: number): number {
  const slot = slotOf(m, Math.floor(pa / PAGE_BYTES));
  const o = slot * PAGE_BYTES + (pa & PAGE_OFFSET_MASK);
  m.valueHi = m.pool32[(o >> 2) + 1]!;
  return m.pool32[o >> 2]!;
}

/** Marks a slot written and reacts to a write into page tables, code or system tables. */
export function noteWrite(m: Machine, slot: number): void {
  const f = m.slotFlags[slot]!;
  if ((f & (F_GUARDED | F_TOUCHED)) === F_TOUCHED) return;
  m.slotFlags[slot] = f | F_TOUCHED;
  // tables/system-tables.ts invalidateSystemTables, inlined.
  if ((f & F_SYS) !== 0) m.systemTableGeneration = (m.systemTableGeneration + 1) | 0;
  if ((f & F_PT) !== 0) {
    flushTlb(m);
    m.blockEnd = true;
  }
  if ((f & F_CODE) !== 0) {
    invalidateCode(m, slot);
    m.blockEnd = true;
  }
}
