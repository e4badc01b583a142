// Reading guest memory out of Bochs. Its debugger reads physical memory only as text (`xp`) and
// dumps binary only by linear address (`writemem`); so the engine walks the final 4-level page
// tables (read with `xp`), dumps every mapped linear run that lands in RAM with `writemem`, and
// reads with `xp` the page-table pages and any loaded page the tables do not map. Physical pages
// that are neither mapped at the end nor part of the loaded state are not read (a case could only
// have written them through other page tables).
import { EngineError } from "../host/errors.ts";

const XP_LINE = /^0x([0-9a-f]+) <[^>]*>:((?:\s+0x[0-9a-f]+)+)\s*$/;

/** Parses `xp /Ngx ADDR` output into bytes (little-endian 64-bit words, as Bochs prints them). */
export function parseXpGiant(text: string, address: bigint, count: number): Uint8Array {
  const out = new Uint8Array(count * 8);
  let filled = 0;
  for (const raw of text.split("\n")) {
    const m = XP_LINE.exec(raw.trim());
    if (m === null) continue;
    const at = BigInt("0x" + m[1]!);
    const words = m[2]!.trim().split(/\s+/).map((w) => BigInt(w));
    words.forEach((w, i) => {
      const offset = Number(at - address) + 8 * i;
      if (offset < 0 || offset + 8 > out.length) throw new EngineError("protocol", `bochs: xp line for 0x${at.toString(16)} outside the range asked`);
      new DataView(out.buffer).setBigUint64(offset, w, true);
      filled += 8;
    });
  }
  if (filled !== out.length) throw new EngineError("protocol", `bochs: xp returned ${filled} of ${out.length} bytes at 0x${address.toString(16)}`);
  return out;
}

export interface Mapping {
  /** Canonical linear address. */
  readonly linear: bigint;
  readonly physical: bigint;
  readonly size: bigint;
}

const PRESENT = 1n;
const PAGE_SIZE_BIT = 1n << 7n;
const ADDRESS = 0x000f_ffff_ffff_f000n;

function canonical(linear: bigint): bigint {
  return linear & (1n << 47n) ? linear | 0xffff_0000_0000_0000n : linear;
}

/**
 * Walks 4-level page tables from CR3. `readTable` returns a 4 KiB table (or null if the physical
 * page cannot be read). Returns leaf mappings and the table pages visited.
 */
export async function walkPageTables(cr3: bigint, readTable: (physical: bigint) => Promise<Uint8Array | null>): Promise<{ mappings: Mapping[]; tables: bigint[] }> {
  const mappings: Mapping[] = [];
  const tables: bigint[] = [];
  const entries = async (physical: bigint): Promise<bigint[] | null> => {
    const page = await readTable(physical);
    if (page === null) return null;
    tables.push(physical);
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    return Array.from({ length: 512 }, (_, i) => view.getBigUint64(8 * i, true));
  };
  const pml4 = await entries(cr3 & ADDRESS);
  if (pml4 === null) return { mappings, tables };
  for (let i4 = 0; i4 < 512; i4++) {
    const e4 = pml4[i4]!;
    if (!(e4 & PRESENT)) continue;
    const pdpt = await entries(e4 & ADDRESS);
    if (pdpt === null) continue;
    for (let i3 = 0; i3 < 512; i3++) {
      const e3 = pdpt[i3]!;
      if (!(e3 & PRESENT)) continue;
      const base3 = (BigInt(i4) << 39n) | (BigInt(i3) << 30n);
      if (e3 & PAGE_SIZE_BIT) {
        mappings.push({ linear: canonical(base3), physical: e3 & 0x000f_ffff_c000_0000n, size: 1n << 30n });
        continue;
      }
      const pd = await entries(e3 & ADDRESS);
      if (pd === null) continue;
      for (let i2 = 0; i2 < 512; i2++) {
        const e2 = pd[i2]!;
        if (!(e2 & PRESENT)) continue;
        const base2 = base3 | (BigInt(i2) << 21n);
        if (e2 & PAGE_SIZE_BIT) {
          mappings.push({ linear: canonical(base2), physical: e2 & 0x000f_ffff_ffe0_0000n, size: 1n << 21n });
          continue;
        }
        const pt = await entries(e2 & ADDRESS);
        if (pt === null) continue;
        for (let i1 = 0; i1 < 512; i1++) {
          const e1 = pt[i1]!;
          if (!(e1 & PRESENT)) continue;
          mappings.push({ linear: canonical(base2 | (BigInt(i1) << 12n)), physical: e1 & ADDRESS, size: 4096n });
        }
      }
    }
  }
  return { mappings, tables };
}

/** Mappings clipped to physical [0, ramEnd) minus the hole, merged into runs contiguous in both
 *  linear and physical space. */
export function ramRuns(mappings: readonly Mapping[], ramEnd: bigint, hole: { start: bigint; end: bigint }): Mapping[] {
  const pieces: Mapping[] = [];
  for (const m of mappings) {
    // Split around the hole and clip to RAM.
    const ranges: [bigint, bigint][] = [[m.physical, m.physical + m.size]];
    const cut: [bigint, bigint][] = [];
    for (const [s, e] of ranges) {
      if (e <= hole.start || s >= hole.end) cut.push([s, e]);
      else {
        if (s < hole.start) cut.push([s, hole.start]);
        if (e > hole.end) cut.push([hole.end, e]);
      }
    }
    for (const [s, e0] of cut) {
      const e = e0 < ramEnd ? e0 : ramEnd;
      if (s >= e) continue;
      pieces.push({ linear: m.linear + (s - m.physical), physical: s, size: e - s });
    }
  }
  pieces.sort((a, b) => (a.linear < b.linear ? -1 : a.linear > b.linear ? 1 : 0));
  const out: Mapping[] = [];
  for (const p of pieces) {
    const last = out[out.length - 1];
    if (last !== undefined && last.linear + last.size === p.linear && last.physical + last.size === p.physical) {
      out[out.length - 1] = { ...last, size: last.size + p.size };
    } else out.push(p);
  }
  return out;
}
