// Segment descriptors in the GDT/LDT (SDM Vol. 3A §3.4.5, §7.2.3 for the 16-byte system form).
// Every read here is an implicit supervisor access (PF-03, SMAP-02).
import { isFault, type Fault } from "../fault.ts";
import type { Segment } from "../../contract/state.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { split64, splitHigh, splitLow } from "../machine/registers.ts";

export interface Descriptor {
  /** Linear address of the descriptor (for busy/accessed-bit writes). */
  readonly address: bigint;
  /** The low 8 bytes as stored. */
  readonly low: bigint;
  /** The next 8 bytes for system descriptors (16 bytes in IA-32e mode), else 0n. */
  readonly high: bigint;
  readonly base: bigint;
  /** Limit in bytes (scaled by G). */
  readonly limit: number;
  readonly type: number;
  readonly s: number;
  readonly dpl: number;
  readonly present: number;
  readonly avl: number;
  readonly l: number;
  readonly db: number;
  readonly g: number;
}

export const isNullSelector = (selector: number): boolean => (selector & 0xfffc) === 0;
export const selectorIndex = (selector: number): number => selector >> 3;
export const selectorTi = (selector: number): number => (selector >> 2) & 1;
export const selectorRpl = (selector: number): number => selector & 3;

/** S = 1 and type bit 3: a code segment. */
export const isCode = (d: { s: number; type: number }): boolean => d.s === 1 && (d.type & 8) !== 0;
/** Code with type bit 2 (C). */
export const isConformingCode = (d: { s: number; type: number }): boolean => isCode(d) && (d.type & 4) !== 0;
/** S = 1, not code, W bit. */
export const isWritableData = (d: { s: number; type: number }): boolean => d.s === 1 && (d.type & 8) === 0 && (d.type & 2) !== 0;
/** Data, or code with R bit. */
export const isReadable = (d: { s: number; type: number }): boolean => d.s === 1 && ((d.type & 8) === 0 || (d.type & 2) !== 0);

/**
 * Whether `bytes` bytes of the descriptor for `selector` lie inside the GDT (TI = 0) or LDT (TI = 1)
 * limit, and the descriptor's linear address. Callers raise their own fault (error codes differ).
 */
export function descriptorLocation(t: Transaction, selector: number, bytes = 8): { address: bigint; inside: boolean } {
  const m = t.now;
  const offset = selectorIndex(selector) * 8;
  if (selectorTi(selector) === 1) {
    const usable = m.ldtr.unusable === 0 && !isNullSelector(m.ldtr.selector);
    return { address: m.ldtr.base + BigInt(offset), inside: usable && offset + bytes - 1 <= m.ldtr.limit };
  }
  return { address: m.gdtr.base + BigInt(offset), inside: offset + bytes - 1 <= m.gdtr.limit };
}

/** Reads and decodes a descriptor (16 bytes when `system16`). Reading may #PF (implicit access). */
export function readDescriptor(t: Transaction, address: bigint, system16 = false): Descriptor | Fault {
  const low = t.readLinear(address, 8, "implicit");
  if (isFault(low)) return low;
  let high = 0n;
  if (system16) {
    const h = t.readLinear(address + 8n, 8, "implicit");
    if (isFault(h)) return h;
    high = h;
  }
  // The fields from the two 32-bit halves of the low quadword, in plain numbers (SDM Vol. 3A
  // Figure 3-8: bytes 0–3 limit 15:0 and base 15:0; bytes 4–7 base 23:16, type, S, DPL, P,
  // limit 19:16, AVL, L, D/B, G, base 31:24), split without a BigInt-to-Number conversion.
  split64(low);
  const word0 = splitLow();
  const word1 = splitHigh();
  const rawLimit = (word0 & 0xffff) | (word1 & 0xf_0000);
  const g = (word1 >>> 23) & 1;
  const base32 = (word0 >>> 16) | ((word1 & 0xff) << 16) | ((word1 >>> 24) << 24);
  return {
    address,
    low,
    high,
    base: system16 ? BigInt(base32 >>> 0) | ((high & 0xffff_ffffn) << 32n) : BigInt(base32 >>> 0),
    limit: g === 1 ? rawLimit * 4096 + 4095 : rawLimit,
    type: (word1 >>> 8) & 0xf,
    s: (word1 >>> 12) & 1,
    dpl: (word1 >>> 13) & 3,
    present: (word1 >>> 15) & 1,
    avl: (word1 >>> 20) & 1,
    l: (word1 >>> 21) & 1,
    db: (word1 >>> 22) & 1,
    g,
  };
}

/** The hidden part loaded from a descriptor, with the given visible selector. */
export function segmentFromDescriptor(selector: number, d: Descriptor): Segment {
  return {
    selector, base: d.base, limit: d.limit, type: d.type, s: d.s, dpl: d.dpl, present: d.present,
    db: d.db, l: d.l, g: d.g, avl: d.avl, unusable: 0,
  };
}

/** A NULL selector loaded into a data segment register: the hidden part is marked unusable. */
export function nullSegment(selector: number, base = 0n): Segment {
  return { selector, base, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}
