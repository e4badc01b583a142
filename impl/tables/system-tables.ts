// The system-table generation: the protocol the three system-table caches share
// (tables/descriptor-cache.ts: GDT/LDT descriptors, tables/gate-cache.ts: IDT gates with their
// target code descriptor and TSS stack pointer, tables/iret-cache.ts: IRET return checks). Each
// entry records Machine.systemTableGeneration when filled and is used only while it is unchanged.
//
// Why that is enough: an entry is filled only from table bytes that lie in one allocated frame,
// which becomes F_SYS (markSystemTableFrame). F_SYS frames get no TLB write classes, so every
// write to them reaches noteWrite (memory/pool.ts), which starts a new generation; and the
// translations and "A bits already set" the entries assume are those of the TLB, so every TLB
// flush starts one too.
//
// A new generation (invalidateSystemTables, or the same increment inlined where noted) begins at:
// every TLB flush (memory/tlb.ts), LGDT, LIDT, LTR, a write to an F_SYS frame (noteWrite, a walk's
// A/D update, the A/D journal's rollback), and load() (a new Machine).
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { flushTlb } from "../memory/tlb.ts";
import { readLinear } from "../memory/linear.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { C_SR, EFER_LMA, F_SYS, GP } = constsModule;

export function invalidateSystemTables(m: Machine): void {
  m.systemTableGeneration = (m.systemTableGeneration + 1) | 0;
}

/** Marks a slot as holding a system-table entry a cache was filled from; the first time, the TLB
 *  is flushed (its entries may grant writes to the frame). The zero page is never marked. */
export function markSystemTableFrame(m: Machine, slot: number): void {
  const f = m.slotFlags[slot]!;
  if ((f & F_SYS) !== 0 || slot === 0) return;
  m.slotFlags[slot] = f | F_SYS;
  flushTlb(m);
}

/** Implicit supervisor read of a system table (GDT/LDT/IDT/TSS) at a linear address; #GP(0) for a
 *  non-canonical address in IA-32e mode. */
export function readSystemTable(m: Machine, lo: number, hi: number, size: number): number {
  const ehi = (lo >>> 0) + (size - 1) > 0xffffffff ? (hi + 1) | 0 : hi;
  if ((m.efer & EFER_LMA) !== 0 && ((hi >> 15) !== (hi >> 31) || (ehi >> 15) !== (ehi >> 31))) {
    m.raise(GP, 0);
    return 0;
  }
  return readLinear(m, lo, hi, size, C_SR);
}
