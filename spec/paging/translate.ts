// 4-level paging (SDM Vol. 3A §4.5): the walk from CR3 to a physical address, with the reserved-bit
// checks (§4.5.4), access rights (§4.6), the #PF it raises (§4.7) and the accessed/dirty bits it
// sets (§4.8). Pure: the same inputs always give the same result, and `memory` is never changed.
// The caller has already checked that `linear` is canonical (PF-05); bits 63:48 are not used.
import type { Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import type { PageSource, PhysicalMemory } from "../machine/physical-memory.ts";
import { EFER } from "../machine/registers.ts";
import type { Access } from "./access.ts";
import * as entryModule from "./entry.ts";
import { pageFault } from "./error-code.ts";
import { accessRightsRule } from "./rights.ts";

// Module-local copies of what the walk uses on every access: under the tsx/vitest module transforms
// each use of an imported binding is a getter call, about a third of the walk's time.
const { A, ADDRESS, D, isLeaf, LEVELS, P, readEntry, reservedBitRule, RW, US, XD } = entryModule;
const { NXE } = EFER;

export interface Translation {
  readonly physical: bigint;
  /** Memory with the accessed/dirty bits this walk set (the same object when none changed). */
  readonly memory: PhysicalMemory;
}

/** A successful walk: where the access goes, the entries it read, and the A/D bits it sets. */
export interface Walk {
  readonly physical: bigint;
  /** Physical addresses of the entries used, PML4E first. */
  readonly entryAddresses: readonly bigint[];
  /** Entries whose A/D bits change: their physical address and new value (usually none). */
  readonly accessedDirty: readonly { readonly address: bigint; readonly entry: bigint }[];
}

const NO_UPDATES: Walk["accessedDirty"] = [];

export function translate(
  m: Pick<Machine, "cr0" | "cr3" | "cr4" | "efer" | "rflags">,
  memory: PhysicalMemory,
  linear: bigint,
  access: Access,
): Translation | Fault {
  const w = walk(m, memory, linear, access);
  if ("kind" in w) return w; // a fault (see Transaction.translateOrFault)
  let updated = memory;
  for (const { address, entry } of w.accessedDirty) updated = updated.write(address, 8, entry);
  return { physical: w.physical, memory: updated };
}

/** The walk itself: `memory` is only read; the A/D bits to set come back in the result. With
 *  `read`, the physical address of every entry the walk reads is added to it (a faulting walk's
 *  too: spec/paging/walk-memo.ts remembers faults by the tables they read). */
export function walk(
  m: Pick<Machine, "cr0" | "cr3" | "cr4" | "efer" | "rflags">,
  memory: PageSource,
  linear: bigint,
  access: Access,
  read?: bigint[],
): Walk | Fault {
  const nxe = (m.efer & NXE) !== 0n;
  // §4.5.2 (use of CR3): bits MAXPHYADDR−1:12 locate the PML4 (PCIDE = 0; bits 4:3 are PWT/PCD).
  let table = m.cr3 & ADDRESS;
  let writable = true;
  let user = true;
  let executeDisable = false;
  // The entries the walk used, for the A/D update once the access is known to succeed.
  const addresses: bigint[] = [];
  const entries: bigint[] = [];
  let physical: bigint;
  for (let level = 0; ; level++) {
    const { name, shift } = LEVELS[level]!;
    const address = table | (((linear >> shift) & 0x1ffn) << 3n);
    const entry = readEntry(memory, address);
    read?.push(address);
    if ((entry & P) === 0n) return pageFault("PF-NP", "not-present", linear, access, m);
    const reserved = reservedBitRule(name, entry, nxe);
    if (reserved !== null) return pageFault(reserved, "reserved-bit", linear, access, m);
    // PF-04: R/W and U/S are ANDed over the levels, XD ORed (§4.6.1).
    writable &&= (entry & RW) !== 0n;
    user &&= (entry & US) !== 0n;
    executeDisable ||= (entry & XD) !== 0n;
    addresses.push(address);
    entries.push(entry);
    if (isLeaf(name, entry)) {
      const offset = (1n << shift) - 1n;
      physical = (entry & ADDRESS & ~offset) | (linear & offset);
      break;
    }
    table = entry & ADDRESS;
  }

  const denied = accessRightsRule(access, { writable, user, executeDisable }, m);
  if (denied !== null) return pageFault(denied, "protection", linear, access, m);

  // §4.8 (docs/model-choices.md): A in every entry used, D in the leaf for a write; an entry is
  // rewritten only when a bit changes.
  let accessedDirty = NO_UPDATES;
  const leaf = entries.length - 1;
  for (let i = 0; i <= leaf; i++) {
    const entry = entries[i]!;
    const wanted = entry | A | (i === leaf && access.kind === "write" ? D : 0n);
    if (wanted === entry) continue;
    if (accessedDirty === NO_UPDATES) accessedDirty = [];
    (accessedDirty as { address: bigint; entry: bigint }[]).push({ address: addresses[i]!, entry: wanted });
  }
  return { physical, entryAddresses: addresses, accessedDirty };
}
