// Paging-structure entries under 4-level paging: bit names, the address field, and which bits are
// reserved (SDM Vol. 3A §4.5.4 and its entry-format tables).
import { MAXPHYADDR } from "../../contract/scope.ts";
import type { PageSource } from "../machine/physical-memory.ts";
import type { RuleId } from "../rules/rule.ts";

/** Entry flags by their SDM names. */
export const P = 1n << 0n;
export const RW = 1n << 1n;
export const US = 1n << 2n;
/** Accessed (§4.8). */
export const A = 1n << 5n;
/** Dirty, leaf entries only (§4.8). */
export const D = 1n << 6n;
/** Page size: maps a 1 GiB page in a PDPTE, a 2 MiB page in a PDE; reserved in a PML4E. */
export const PS = 1n << 7n;
/** Execute-disable (IA32_EFER.NXE = 1); reserved when NXE = 0. */
export const XD = 1n << 63n;

/** Physical-address bits MAXPHYADDR−1:12: the next table, or the page frame of a leaf. */
export const ADDRESS = ((1n << BigInt(MAXPHYADDR)) - 1n) & ~0xfffn;

/** Bits 51:MAXPHYADDR, reserved in every entry. */
const RESERVED_PHYSICAL = ((1n << 52n) - 1n) & ~((1n << BigInt(MAXPHYADDR)) - 1n);
/** Bits 29:13 of a PDPTE that maps a 1 GiB page (bit 12 is PAT). */
const RESERVED_1G = ((1n << 30n) - 1n) & ~((1n << 13n) - 1n);
/** Bits 20:13 of a PDE that maps a 2 MiB page (bit 12 is PAT). */
const RESERVED_2M = ((1n << 21n) - 1n) & ~((1n << 13n) - 1n);

export type EntryName = "PML4E" | "PDPTE" | "PDE" | "PTE";

/** The four levels, top down, with the linear-address bit where each one's 9-bit index starts. */
export const LEVELS: readonly { readonly name: EntryName; readonly shift: bigint }[] = [
  { name: "PML4E", shift: 39n },
  { name: "PDPTE", shift: 30n },
  { name: "PDE", shift: 21n },
  { name: "PTE", shift: 12n },
];

/** Whether a present entry maps a page (ends the walk) rather than pointing at a table. */
export function isLeaf(name: EntryName, entry: bigint): boolean {
  return name === "PTE" || (name !== "PML4E" && (entry & PS) !== 0n);
}

/**
 * The reserved-bit rule a present entry breaks, or null (§4.5.4). Only present entries are
 * checked, so a not-present entry ends the walk with P = 0 first (§4.7).
 */
export function reservedBitRule(name: EntryName, entry: bigint, nxe: boolean): RuleId | null {
  if ((entry & RESERVED_PHYSICAL) !== 0n) return "PF-RSVD-PHYS";
  if (!nxe && (entry & XD) !== 0n) return "PF-RSVD-XD";
  if ((entry & PS) === 0n) return null;
  if (name === "PML4E") return "PF-RSVD-PML4E-PS";
  if (name === "PDPTE" && (entry & RESERVED_1G) !== 0n) return "PF-RSVD-PS1G";
  if (name === "PDE" && (entry & RESERVED_2M) !== 0n) return "PF-RSVD-PS2M";
  return null;
}

/**
 * The 8-byte entry at a physical address. Entries are 8-aligned and so never cross a page; reading
 * the page's bytes directly keeps the walk to two number→BigInt conversions per entry (it runs on
 * every memory access).
 */
export function readEntry(memory: PageSource, address: bigint): bigint {
  const page = memory.page(Number(address >> 12n));
  const o = Number(address & 0xff8n);
  const low = (page[o]! | (page[o + 1]! << 8) | (page[o + 2]! << 16)) + page[o + 3]! * 0x100_0000;
  const high = (page[o + 4]! | (page[o + 5]! << 8) | (page[o + 6]! << 16)) + page[o + 7]! * 0x100_0000;
  return (BigInt(high) << 32n) | BigInt(low);
}
