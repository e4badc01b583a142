// Reading a machine's memory the way its kernel sees it: a small read-only four-level walk over
// the state's physical memory. The checker has its own walk (it watches engines from outside; it
// must not depend on either engine's paging code), and needs only two things from it: reading
// kernel data at linear addresses, and listing every user-accessible mapping of an address space.
import type { ArchState } from "../../contract/state.ts";

const PRESENT = 1n;
const WRITABLE = 2n;
const USER = 4n;
const LARGE = 0x80n;
const ADDRESS = 0x000f_ffff_ffff_f000n;

export function physicalByte(state: ArchState, address: bigint): number {
  return state.memory.get(Number(address >> 12n))?.[Number(address & 0xfffn)] ?? 0;
}

export function physicalQword(state: ArchState, address: bigint): bigint {
  const offset = Number(address & 0xfffn);
  if (offset <= 4088) {
    const page = state.memory.get(Number(address >> 12n));
    return page === undefined ? 0n : new DataView(page.buffer, page.byteOffset, page.byteLength).getBigUint64(offset, true);
  }
  let v = 0n;
  for (let i = 7n; i >= 0n; i--) v = (v << 8n) | BigInt(physicalByte(state, address + i));
  return v;
}

export interface Translation {
  readonly physical: bigint;
  /** U/S and R/W ANDed over every level. */
  readonly user: boolean;
  readonly writable: boolean;
}

/** The physical address of `linear` under `cr3`, or undefined when not present. */
export function translate(state: ArchState, cr3: bigint, linear: bigint): Translation | undefined {
  let table = cr3 & ADDRESS;
  let user = true;
  let writable = true;
  for (let level = 3; level >= 0; level--) {
    const shift = BigInt(12 + 9 * level);
    const entry = physicalQword(state, table + ((linear >> shift) & 511n) * 8n);
    if ((entry & PRESENT) === 0n) return undefined;
    user &&= (entry & USER) !== 0n;
    writable &&= (entry & WRITABLE) !== 0n;
    if (level === 0 || ((level === 1 || level === 2) && (entry & LARGE) !== 0n)) {
      const size = 1n << shift;
      return { physical: (entry & ADDRESS & ~(size - 1n)) | (linear & (size - 1n)), user, writable };
    }
    table = entry & ADDRESS;
  }
  return undefined;
}

/** `length` bytes at `linear` (little-endian value), or undefined if any byte is not mapped. */
export function readLinear(state: ArchState, linear: bigint, length: number, cr3: bigint = state.cr3): bigint | undefined {
  let value = 0n;
  for (let i = length - 1; i >= 0; i--) {
    const t = translate(state, cr3, (linear + BigInt(i)) & 0xffff_ffff_ffff_ffffn);
    if (t === undefined) return undefined;
    value = (value << 8n) | BigInt(physicalByte(state, t.physical));
  }
  return value;
}

export interface UserMapping {
  /** Canonical linear address of the mapping. */
  readonly linear: bigint;
  readonly physical: bigint;
  readonly size: bigint;
  readonly writable: boolean;
}

function canonical(linear: bigint): bigint {
  return (linear & (1n << 47n)) !== 0n ? linear | 0xffff_0000_0000_0000n : linear;
}

/** Every mapping user mode can reach (U/S = 1 at every level), and the page-table pages on the
 *  way. Subtrees with U/S = 0 are not entered; at most `limit` mappings are listed. */
export function userMappings(state: ArchState, cr3: bigint, limit = 1 << 16): { readonly mappings: UserMapping[]; readonly tables: bigint[] } {
  const mappings: UserMapping[] = [];
  const tables: bigint[] = [];
  const visit = (table: bigint, level: number, base: bigint, writable: boolean) => {
    tables.push(table);
    for (let i = 0n; i < 512n && mappings.length < limit; i++) {
      const entry = physicalQword(state, table + i * 8n);
      if ((entry & PRESENT) === 0n || (entry & USER) === 0n) continue;
      const shift = BigInt(12 + 9 * level);
      const linear = base | (i << shift);
      const w = writable && (entry & WRITABLE) !== 0n;
      if (level === 0 || ((level === 1 || level === 2) && (entry & LARGE) !== 0n)) {
        const size = 1n << shift;
        mappings.push({ linear: canonical(linear), physical: entry & ADDRESS & ~(size - 1n), size, writable: w });
      } else visit(entry & ADDRESS, level - 1, linear, w);
    }
  };
  visit(cr3 & ADDRESS, 3, 0n, true);
  return { mappings, tables };
}

/** Every page-table page of an address space (supervisor parts included), at most `limit`. */
export function tablePages(state: ArchState, cr3: bigint, limit = 4096): bigint[] {
  const out: bigint[] = [];
  const visit = (table: bigint, level: number) => {
    if (out.length >= limit) return;
    out.push(table);
    if (level === 0) return;
    for (let i = 0n; i < 512n; i++) {
      const entry = physicalQword(state, table + i * 8n);
      if ((entry & PRESENT) === 0n || ((level === 1 || level === 2) && (entry & LARGE) !== 0n)) continue;
      visit(entry & ADDRESS, level - 1);
    }
  };
  visit(cr3 & ADDRESS, 3);
  return out;
}
