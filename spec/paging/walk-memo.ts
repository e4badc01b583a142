// A memo of successful page walks, so the step loop does not redo the same walk for every access.
// It is exact — never a TLB: a walk (translate.ts) is a pure function of CR3, CR0, CR4, EFER,
// RFLAGS.AC, the access and the bytes of the table pages it reads, and a remembered result is
// used only while all of these are unchanged. Table pages are compared by identity: the memo
// remembers a walk only with its table pages frozen (MemoryDraft.frozenPage: a later write to one
// makes a new page object), so the same object means the same bytes. Only walks that set no A/D
// bit are remembered.
import { fault, PF, type Fault } from "../fault.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";
import type { Machine } from "../machine/machine.ts";
import type { MemoryDraft } from "../machine/physical-memory.ts";
import { RFLAGS } from "../machine/registers.ts";
import { ACCESS_SLOTS, accessOf, type Access } from "./access.ts";
import { walk, type Walk } from "./translate.ts";

/** The registers a walk depends on. */
export type WalkRegisters = Pick<Machine, "cr0" | "cr3" | "cr4" | "efer" | "rflags">;

interface Remembered {
  /** The linear page number it is remembered under. */
  readonly pageNumber: number;
  /** A walk epoch (`walkEpoch`) whose registers are this entry's: then the entry holds for a
   *  machine of that epoch without comparing its registers one by one. */
  epoch: number;
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  readonly ac: bigint;
  readonly entryAddresses: readonly bigint[];
  /** The table pages read (page number and the page object). */
  readonly tableNumbers: readonly number[];
  readonly tables: readonly Uint8Array[];
  /** The 4 KiB physical frame of the linear page, and its number (−1 for a fault). */
  readonly frame: bigint;
  readonly frameNumber: number;
  /** A walk that faulted: the #PF's rule and error code (its address is the linear address). */
  readonly fault: { readonly rule: Fault["rule"]; readonly errorCode: number } | null;
  /** The draft (its serial: the memo outlives runs and must not keep their drafts alive) and its
   *  generation under which `tables` were last found in place: while both stand, no page object
   *  was replaced and the tables need no check. */
  checkedIn: number;
  checkedAt: number;
}

/**
 * Walk epochs: a number for each set of values of the registers a walk depends on (CR0, CR3,
 * CR4, EFER, RFLAGS.AC), a new one whenever `walkEpoch` sees values other than the last it saw,
 * never reused. Two machines of the same epoch have the same walk registers, so a remembered walk
 * found valid under an epoch is valid for every machine of that epoch: the step computes the
 * epoch once (spec/transaction/transaction.ts), and each memory access compares one number where
 * it compared five BigInts.
 */
let seenCr0 = -1n;
let seenCr3 = -1n;
let seenCr4 = -1n;
let seenEfer = -1n;
let seenAc = -1n;
let seenEpoch = 0;

/** RFLAGS.AC (bit 18) of `rflags`: clear in any RFLAGS below 2^18, without a BigInt operation. */
function acOf(rflags: bigint): bigint {
  return rflags < RFLAGS.AC ? 0n : rflags & RFLAGS.AC;
}

/** The walk epoch of `m`'s walk registers. */
export function walkEpoch(m: WalkRegisters): number {
  const ac = acOf(m.rflags);
  if (m.cr3 !== seenCr3 || m.cr0 !== seenCr0 || m.cr4 !== seenCr4 || m.efer !== seenEfer || ac !== seenAc) {
    seenCr0 = m.cr0;
    seenCr3 = m.cr3;
    seenCr4 = m.cr4;
    seenEfer = m.efer;
    seenAc = ac;
    seenEpoch++;
  }
  return seenEpoch;
}

const LIMIT = 4096;
const NONE: Walk["accessedDirty"] = [];
/** One map per access kind and mode, by `Access.slot`, keyed by linear page number. */
const memo: Map<number, Remembered>[] = Array.from({ length: ACCESS_SLOTS }, () => new Map<number, Remembered>());
/** In front of each map, its entries last looked up, direct-mapped by linear page number (the usual
 *  hit then costs no Map lookup): each is an entry its map holds under that page number — set
 *  with the map, emptied with it. */
const FRONT = 64;
const front: (Remembered | undefined)[][] = Array.from({ length: ACCESS_SLOTS }, () => new Array<Remembered | undefined>(FRONT).fill(undefined));

/** The slot `access`'s walks are remembered under (an Access built by hand, not by `accessOf`,
 *  carries no slot: it is looked up). */
function slotOf(access: Access): number {
  return access.slot ?? accessOf(access.kind, access.mode).slot!;
}

/** The walk remembered for linear page `pageNumber` under `slot`, if any. */
function lookUp(slot: number, pageNumber: number): Remembered | undefined {
  const entries = front[slot]!;
  const i = pageNumber & (FRONT - 1);
  const known = entries[i];
  if (known !== undefined && known.pageNumber === pageNumber) return known;
  const r = memo[slot]!.get(pageNumber);
  if (r !== undefined) entries[i] = r;
  return r;
}

/** `walk`, answered from the memo when the same walk was made on the same tables before. A #PF
 *  is remembered too: a faulting walk sets no A/D bit, and its fault depends on the same inputs
 *  (the tables it read up to the faulting entry) and, for CR2, on the linear address. */
export function walkRemembered(m: WalkRegisters, memory: MemoryDraft, linear: bigint, access: Access): Walk | Fault {
  const slot = slotOf(access);
  const pageNumber = Number(linear >> 12n);
  const ac = m.rflags & RFLAGS.AC;
  const r = lookUp(slot, pageNumber);
  if (r !== undefined && r.cr3 === m.cr3 && r.cr0 === m.cr0 && r.cr4 === m.cr4 && r.efer === m.efer && r.ac === ac && sameTables(r, memory)) {
    if (r.fault !== null) {
      // What the walk's pageFault records and returns (spec/paging/error-code.ts).
      recordExecuted(r.fault.rule);
      return fault(r.fault.rule, PF, r.fault.errorCode, linear);
    }
    return { physical: r.frame | (linear & 0xfffn), entryAddresses: r.entryAddresses, accessedDirty: NONE };
  }
  const read: bigint[] = [];
  const w = walk(m, memory, linear, access, read);
  if ("kind" in w) {
    remember(slot, pageNumber, m, ac, memory, read, -1n, { rule: w.rule, errorCode: w.errorCode ?? 0 });
    return w;
  }
  if (w.accessedDirty.length > 0) return w; // (see Transaction.translateOrFault)
  remember(slot, pageNumber, m, ac, memory, w.entryAddresses, w.physical & ~0xfffn, null);
  return w;
}

function remember(
  slot: number, pageNumber: number, m: WalkRegisters, ac: bigint, memory: MemoryDraft,
  entryAddresses: readonly bigint[], frame: bigint, pageFault: Remembered["fault"],
): void {
  const tableNumbers = entryAddresses.map((a) => Number(a >> 12n));
  const tables = tableNumbers.map((n) => memory.frozenPage(n));
  const byPage = memo[slot]!;
  if (byPage.size >= LIMIT) {
    byPage.clear();
    front[slot]!.fill(undefined);
  }
  const r: Remembered = {
    pageNumber, epoch: walkEpoch(m), cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer, ac, entryAddresses, tableNumbers, tables,
    frame, frameNumber: frame < 0n ? -1 : Number(frame >> 12n), fault: pageFault, checkedIn: memory.serial, checkedAt: memory.generation,
  };
  byPage.set(pageNumber, r);
  front[slot]![pageNumber & (FRONT - 1)] = r;
}

function sameTables(r: Remembered, memory: MemoryDraft): boolean {
  if (r.checkedIn === memory.serial && r.checkedAt === memory.generation) return true;
  for (let i = 0; i < r.tables.length; i++) if (memory.page(r.tableNumbers[i]!) !== r.tables[i]) return false;
  r.checkedIn = memory.serial;
  r.checkedAt = memory.generation;
  return true;
}

/** Whether the walk for `linear` is remembered and still valid: then its table pages are frozen,
 *  it sets no A/D bit, and while none of `m`'s walk registers and no page object of `memory`
 *  changes (MemoryDraft.generation), the same walk gives the same translation. */
export function walkIsRemembered(m: WalkRegisters, memory: MemoryDraft, linear: bigint, access: Access): boolean {
  const r = lookUp(slotOf(access), Number(linear >> 12n));
  return r !== undefined && r.fault === null && r.cr3 === m.cr3 && r.cr0 === m.cr0 && r.cr4 === m.cr4 && r.efer === m.efer && r.ac === (m.rflags & RFLAGS.AC) && sameTables(r, memory);
}

/** The physical page number of linear page `linearPage` when the memo remembers its walk and it
 *  is still valid (the walk sets no A/D bit then), else −1: `walkRemembered`'s hit, without
 *  building a Walk. `epoch` is `walkEpoch(m)`. */
export function rememberedFrame(m: WalkRegisters, epoch: number, memory: MemoryDraft, linearPage: number, access: Access): number {
  const r = lookUp(slotOf(access), linearPage);
  if (r === undefined) return -1;
  if (r.epoch !== epoch) {
    if (r.cr3 !== m.cr3 || r.cr0 !== m.cr0 || r.cr4 !== m.cr4 || r.efer !== m.efer || r.ac !== acOf(m.rflags)) return -1;
    r.epoch = epoch;
  }
  return sameTables(r, memory) ? r.frameNumber : -1;
}

/** What the memo keeps, entry by entry (for tests of what it holds on to between runs). */
export function rememberedWalkEntries(): readonly object[] {
  const entries: object[] = [];
  for (const byPage of memo) for (const r of byPage.values()) entries.push(r);
  return entries;
}
