// The A/D journal: the page-table bytes the current step's walks changed (accessed and dirty
// bits), so that a step ending `unsupported` — which must leave the machine as it was — can put
// them back. The engine starts a journal at every instruction (resetAdJournal); translate.ts
// records every A/D byte it writes (recordAdWrite). Machine.adJournal holds pool offset and
// previous value per entry, oldest first.
//
// Not a cache. Rolling back writes guest memory behind the TLB's back, so it flushes the TLB (its
// entries assumed the bits set), drops blocks decoded from a written frame and starts a new
// system-table generation for a written F_SYS frame — as noteWrite would for any write. When one
// step's walks set more bits than the journal holds, rollback is skipped (and reported).
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { flushTlb } from "./tlb.ts";
import { invalidateCode } from "../blocks/block-cache.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_SHIFT, F_CODE, F_SYS } = constsModule;

/** Entries; one instruction's walks need far fewer. */
const AD_JOURNAL_ENTRIES = 64;

export function newAdJournal(): Int32Array {
  return new Int32Array(2 * AD_JOURNAL_ENTRIES);
}

export function resetAdJournal(m: Machine): void {
  m.adJournalLength = 0;
}

/** Notes that the byte at pool offset `o`, which held `previous`, is about to be changed by a walk. */
export function recordAdWrite(m: Machine, o: number, previous: number): void {
  const n = m.adJournalLength;
  if (n < AD_JOURNAL_ENTRIES) {
    m.adJournal[2 * n] = o;
    m.adJournal[2 * n + 1] = previous;
  }
  m.adJournalLength = n + 1;
}

/** Restores every journaled byte (newest first). Returns false when the journal overflowed (then
 *  nothing is restored). */
export function rollbackAdJournal(m: Machine): boolean {
  const n = m.adJournalLength;
  if (n === 0) return true;
  m.adJournalLength = 0;
  if (n > AD_JOURNAL_ENTRIES) return false;
  const journal = m.adJournal;
  for (let k = n - 1; k >= 0; k--) {
    const o = journal[2 * k]!;
    m.pool8[o] = journal[2 * k + 1]!;
    const slot = o >> PAGE_SHIFT;
    if ((m.slotFlags[slot]! & F_CODE) !== 0) {
      invalidateCode(m, slot);
      m.blockEnd = true;
    }
    if ((m.slotFlags[slot]! & F_SYS) !== 0) m.systemTableGeneration = (m.systemTableGeneration + 1) | 0;
  }
  flushTlb(m);
  return true;
}
