// 4-level page tables (SDM Vol. 3A 4.5) built from a list of mappings. Intermediate entries allow
// everything (present, writable, user); each mapping's rights are in its leaf entries.
import type { GuestMemory } from "./memory.ts";

export type PageSize = "4K" | "2M" | "1G";

/** A range of linear addresses mapped onto physical memory with one set of rights. */
export interface Mapping {
  readonly linear: bigint;
  /** Physical address of the first page (identity when equal to `linear`). */
  readonly physical: bigint;
  /** Bytes; a multiple of the page size. */
  readonly size: bigint;
  readonly page: PageSize;
  /** U/S = 1: CPL 3 may access it. */
  readonly user: boolean;
  readonly writable: boolean;
  /** false sets XD (which needs EFER.NXE). */
  readonly executable: boolean;
  readonly global: boolean;
  /** false: the tables down to the leaves are built, the leaves are left not present (zero). */
  readonly present: boolean;
}

/** One address space: its tables come from `tables` (4 KiB frames) in order, the first being
 *  the PML4 that CR3 points at. */
export interface AddressSpace {
  readonly tables: readonly bigint[];
  readonly mappings: readonly Mapping[];
}

export const PAGE_BYTES: Readonly<Record<PageSize, bigint>> = { "4K": 0x1000n, "2M": 0x20_0000n, "1G": 0x4000_0000n };

/** Entry bits. */
export const PTE = { P: 1n, RW: 2n, US: 4n, PWT: 8n, PCD: 0x10n, A: 0x20n, D: 0x40n, PS: 0x80n, G: 0x100n, XD: 1n << 63n } as const;
const TABLE_ENTRY = PTE.P | PTE.RW | PTE.US;
const FRAME = 0x000f_ffff_ffff_f000n;

/** An identity mapping with the usual rights: present, writable, executable, not global. */
export function identity(linear: bigint, size: bigint, page: PageSize, user: boolean, more: Partial<Mapping> = {}): Mapping {
  return { linear, physical: linear, size, page, user, writable: true, executable: true, global: false, present: true, ...more };
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/** Writes the tables of `space` into `memory`; returns CR3 (the PML4) and the frames used. */
export function buildAddressSpace(memory: GuestMemory, space: AddressSpace): { readonly cr3: bigint; readonly tablesUsed: readonly bigint[] } {
  const pool = [...space.tables];
  for (const t of pool) if ((t & 0xfffn) !== 0n) throw new Error(`page table frame ${hex(t)} is not 4 KiB aligned`);
  const used: bigint[] = [];
  const allocate = (): bigint => {
    const t = pool.shift();
    if (t === undefined) throw new Error(`page tables: out of table frames after ${used.map(hex).join(", ")}`);
    used.push(t);
    memory.write(t, new Uint8Array(4096));
    return t;
  };
  const pml4 = allocate();
  /** The table an entry points to, allocating it when the entry is empty. */
  const next = (entryAddress: bigint, what: string): bigint => {
    const e = memory.read64(entryAddress);
    if ((e & PTE.P) === 0n) {
      const t = allocate();
      memory.write64(entryAddress, t | TABLE_ENTRY);
      return t;
    }
    if ((e & PTE.PS) !== 0n) throw new Error(`page tables: ${what} at ${hex(entryAddress)} is already a large page`);
    return e & FRAME;
  };
  for (const m of space.mappings) {
    const pageBytes = PAGE_BYTES[m.page];
    if (m.linear % pageBytes !== 0n || m.physical % pageBytes !== 0n || m.size % pageBytes !== 0n || m.size <= 0n) {
      throw new Error(`mapping ${hex(m.linear)}→${hex(m.physical)} (${hex(m.size)} bytes): not aligned to its ${m.page} pages`);
    }
    const leafBits = (m.present ? PTE.P : 0n) | (m.writable ? PTE.RW : 0n) | (m.user ? PTE.US : 0n) | (m.page === "4K" ? 0n : PTE.PS) | (m.global ? PTE.G : 0n) | (m.executable ? 0n : PTE.XD);
    for (let off = 0n; off < m.size; off += pageBytes) {
      const linear = m.linear + off;
      if (linear >> 47n !== 0n && linear >> 47n !== 0x1ffffn) throw new Error(`mapping: ${hex(linear)} is not canonical`);
      const index = (level: number) => (linear >> BigInt(12 + 9 * level)) & 0x1ffn;
      const pdpt = next(pml4 + 8n * index(3), "PML4E");
      let leaf: bigint;
      if (m.page === "1G") leaf = pdpt + 8n * index(2);
      else {
        const pd = next(pdpt + 8n * index(2), "PDPTE");
        leaf = m.page === "2M" ? pd + 8n * index(1) : next(pd + 8n * index(1), "PDE") + 8n * index(0);
      }
      if (memory.read64(leaf) !== 0n) throw new Error(`mapping: ${hex(linear)} is mapped twice`);
      if (m.present) memory.write64(leaf, ((m.physical + off) & FRAME) | leafBits);
    }
  }
  return { cr3: pml4, tablesUsed: used };
}

export type Level = "PML4E" | "PDPTE" | "PDE" | "PTE";

/** What 4-level tables say about one linear address (no faults, no accessed bits: a reader of
 *  the tables, for building guests and checking them). */
export interface Translation {
  /** The entries read, top down, up to the leaf or the first not-present one. */
  readonly entries: readonly { readonly level: Level; readonly address: bigint; readonly value: bigint }[];
  /** The physical address, or null when some entry is not present. */
  readonly physical: bigint | null;
  /** Every entry on the way has U/S = 1. */
  readonly user: boolean;
  /** Every entry on the way has R/W = 1. */
  readonly writable: boolean;
  /** No entry on the way has XD = 1. */
  readonly executable: boolean;
}

const LEVELS: readonly Level[] = ["PML4E", "PDPTE", "PDE", "PTE"];

/** The little-endian quadword at physical `address` of a state's pages (absent pages read as
 *  zero): a `read64` for translate over an ArchState's memory. */
export function readPhysical64(pages: ReadonlyMap<number, Uint8Array>, address: bigint): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) {
    const x = address + BigInt(i);
    v = (v << 8n) | BigInt(pages.get(Number(x >> 12n))?.[Number(x & 0xfffn)] ?? 0);
  }
  return v;
}

/** Walks the tables at `cr3` for `linear`, reading quadwords with `read64`. */
export function translate(read64: (address: bigint) => bigint, cr3: bigint, linear: bigint): Translation {
  const entries: { level: Level; address: bigint; value: bigint }[] = [];
  let table = cr3 & FRAME;
  let user = true, writable = true, executable = true;
  for (let i = 0; i < 4; i++) {
    const shift = BigInt(39 - 9 * i);
    const address = table + 8n * ((linear >> shift) & 0x1ffn);
    const value = read64(address);
    entries.push({ level: LEVELS[i]!, address, value });
    if ((value & PTE.P) === 0n) return { entries, physical: null, user: false, writable: false, executable: false };
    user &&= (value & PTE.US) !== 0n;
    writable &&= (value & PTE.RW) !== 0n;
    executable &&= (value & PTE.XD) === 0n;
    const leaf = i === 3 || (i > 0 && (value & PTE.PS) !== 0n);
    if (leaf) {
      const offsetMask = (1n << shift) - 1n;
      return { entries, physical: (value & FRAME & ~offsetMask) | (linear & offsetMask), user, writable, executable };
    }
    table = value & FRAME;
  }
  throw new Error("unreachable");
}
