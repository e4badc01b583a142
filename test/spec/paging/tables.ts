// Page tables for the paging tests: one walk for LINEAR through tables at 0x50000–0x53fff (outside
// the fixture's own tables), each entry's flags chosen by the test.
import type { Machine } from "../../../spec/machine/machine.ts";
import type { PhysicalMemory } from "../../../spec/machine/physical-memory.ts";
import { kernelMachine, userMachine } from "../../helpers/fixture.ts";

export const PML4 = 0x50000n, PDPT = 0x51000n, PD = 0x52000n, PT = 0x53000n;
/** The 4 KiB frame LINEAR maps to; 2 MiB and 1 GiB frames below are aligned to their size. */
export const FRAME = 0x7654_3000n;
export const FRAME_2M = 0x1_2340_0000n;
export const FRAME_1G = 0x2_4000_0000n;

/** Indices 3, 5, 7, 9 at the four levels (so a wrong shift shows) and page offset 0x123. */
export const LINEAR = (3n << 39n) | (5n << 30n) | (7n << 21n) | (9n << 12n) | 0x123n;

/** The physical address of the entry LINEAR uses at each level. */
export const ENTRY = {
  PML4E: PML4 + 3n * 8n,
  PDPTE: PDPT + 5n * 8n,
  PDE: PD + 7n * 8n,
  PTE: PT + 9n * 8n,
} as const;
export type Level = keyof typeof ENTRY;
export const LEVEL_NAMES: readonly Level[] = ["PML4E", "PDPTE", "PDE", "PTE"];

export const P = 1n, RW = 2n, US = 4n, A = 0x20n, D = 0x40n, PS = 0x80n, XD = 1n << 63n;
/** Present, writable, user: every right. */
export const ALL = P | RW | US;

export function le64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

export function writeEntry(memory: PhysicalMemory, address: bigint, value: bigint): PhysicalMemory {
  return memory.writeBytes(address, le64(value));
}

export function entryAt(memory: PhysicalMemory, address: bigint): bigint {
  return memory.read(address, 8);
}

/**
 * Tables that map LINEAR through a 4 KiB page (flags per level, default ALL; extra bits are ORed
 * into the entry as given). `leaf: "2M"` / `"1G"` ends the walk at the PDE / PDPTE with PS = 1.
 */
export function mapLinear(
  m: Machine,
  flags: Partial<Record<Level, bigint>> = {},
  leaf: "4K" | "2M" | "1G" = "4K",
): Machine {
  let memory = m.memory;
  memory = writeEntry(memory, ENTRY.PML4E, PDPT | (flags.PML4E ?? ALL));
  if (leaf === "1G") {
    memory = writeEntry(memory, ENTRY.PDPTE, FRAME_1G | PS | (flags.PDPTE ?? ALL));
  } else {
    memory = writeEntry(memory, ENTRY.PDPTE, PD | (flags.PDPTE ?? ALL));
    if (leaf === "2M") memory = writeEntry(memory, ENTRY.PDE, FRAME_2M | PS | (flags.PDE ?? ALL));
    else {
      memory = writeEntry(memory, ENTRY.PDE, PT | (flags.PDE ?? ALL));
      memory = writeEntry(memory, ENTRY.PTE, FRAME | (flags.PTE ?? ALL));
    }
  }
  return { ...m, cr3: PML4, memory };
}

/** CPL 0 / CPL 3 machines from the fixture with LINEAR mapped. */
export function kernelWith(flags: Partial<Record<Level, bigint>> = {}, leaf: "4K" | "2M" | "1G" = "4K"): Machine {
  return mapLinear(kernelMachine(), flags, leaf);
}

export function userWith(flags: Partial<Record<Level, bigint>> = {}, leaf: "4K" | "2M" | "1G" = "4K"): Machine {
  return mapLinear(userMachine(), flags, leaf);
}
