// translate() against a tiny independent model of SDM Vol. 3A §4.5–4.8 on random page tables:
// random flags, large pages, reserved bits, control bits and accesses (fixed seed).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Machine } from "../../../spec/machine/machine.ts";
import { PhysicalMemory } from "../../../spec/machine/physical-memory.ts";
import { CR0, CR4, EFER, RFLAGS } from "../../../spec/machine/registers.ts";
import type { AccessKind, AccessMode } from "../../../spec/paging/access.ts";
import { translate } from "../../../spec/paging/translate.ts";
import { kernelMachine } from "../../helpers/fixture.ts";
import { le64 } from "./tables.ts";

interface EntrySpec {
  readonly p: boolean;
  readonly rw: boolean;
  readonly us: boolean;
  readonly ps: boolean;
  readonly xd: boolean;
  readonly a: boolean;
  readonly d: boolean;
  /** A bit to set on top (may be reserved: 46–51 physical, 13–29 large-page low bits), or null. */
  readonly extra: number | null;
}

interface Case {
  readonly entries: readonly EntrySpec[]; // PML4E, PDPTE, PDE, PTE
  readonly indices: readonly number[];
  readonly offset: number;
  readonly wp: boolean;
  readonly smep: boolean;
  readonly smap: boolean;
  readonly nxe: boolean;
  readonly ac: boolean;
  readonly kind: AccessKind;
  readonly mode: AccessMode;
}

// Table and frame addresses. Each table is a distinct power of two, so an extra address bit in a
// non-leaf entry always points the walk at empty memory, never at another table.
const TABLES = [0x10_0000, 0x20_0000, 0x40_0000, 0x80_0000];
const FRAMES = { 1: 0x2_4000_0000, 2: 0x1_2340_0000, 3: 0x7654_3000 } as const;
const PAGE_BITS = [0, 30, 21, 12] as const;

/** True with probability 1/n. */
const oneIn = (n: number): fc.Arbitrary<boolean> => fc.integer({ min: 1, max: n }).map((k) => k === 1);

/** Mostly well-formed entries, so that walks often succeed; `psOneIn` tunes PS per level. */
const entrySpec = (psOneIn: number): fc.Arbitrary<EntrySpec> =>
  fc.record({
    p: oneIn(12).map((b) => !b),
    rw: oneIn(4).map((b) => !b),
    us: oneIn(4).map((b) => !b),
    ps: oneIn(psOneIn),
    xd: oneIn(5),
    a: fc.boolean(),
    d: fc.boolean(),
    extra: fc.oneof(
      { weight: 8, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.integer({ min: 12, max: 29 }) },
      { weight: 1, arbitrary: fc.integer({ min: 45, max: 62 }) },
    ),
  });

const caseArb: fc.Arbitrary<Case> = fc.record({
  entries: fc.tuple(entrySpec(20), entrySpec(4), entrySpec(4), entrySpec(4)),
  indices: fc.array(fc.integer({ min: 0, max: 511 }), { minLength: 4, maxLength: 4 }),
  offset: fc.integer({ min: 0, max: 0xfff }),
  wp: fc.boolean(),
  smep: fc.boolean(),
  smap: fc.boolean(),
  nxe: oneIn(4).map((b) => !b),
  ac: fc.boolean(),
  kind: fc.constantFrom<AccessKind>("read", "write", "execute"),
  mode: fc.constantFrom<AccessMode>("user", "supervisor", "implicit"),
});

/** The raw entry at `level`: next table (or frame for a leaf) | flags | extra bit. */
function entryValue(c: Case, level: number): bigint {
  const e = c.entries[level]!;
  const leaf = level === 3 || (level > 0 && e.ps);
  const base = leaf ? FRAMES[level as 1 | 2 | 3] : TABLES[level + 1]!;
  let v = BigInt(base);
  if (e.p) v |= 1n;
  if (e.rw) v |= 2n;
  if (e.us) v |= 4n;
  if (e.a) v |= 0x20n;
  if (e.d) v |= 0x40n;
  if (e.ps && level < 3) v |= 0x80n;
  if (e.xd) v |= 1n << 63n;
  if (e.extra !== null) v |= 1n << BigInt(e.extra);
  return v;
}

function linearOf(c: Case): bigint {
  const [i4, i3, i2, i1] = c.indices as [number, number, number, number];
  const low = (BigInt(i4) << 39n) | (BigInt(i3) << 30n) | (BigInt(i2) << 21n) | (BigInt(i1) << 12n) | BigInt(c.offset);
  return i4 >= 256 ? low | 0xffff_0000_0000_0000n : low;
}

function entryAddress(c: Case, level: number): bigint {
  return BigInt(TABLES[level]! + c.indices[level]! * 8);
}

function machineFor(c: Case): Machine {
  const base = kernelMachine();
  let memory = PhysicalMemory.empty();
  for (let level = 0; level < 4; level++) memory = memory.writeBytes(entryAddress(c, level), le64(entryValue(c, level)));
  const flag = (on: boolean, bit: bigint): bigint => (on ? bit : 0n);
  return {
    ...base,
    memory,
    cr3: BigInt(TABLES[0]!),
    cr0: (base.cr0 & ~CR0.WP) | flag(c.wp, CR0.WP),
    cr4: (base.cr4 & ~(CR4.SMEP | CR4.SMAP)) | flag(c.smep, CR4.SMEP) | flag(c.smap, CR4.SMAP),
    efer: (base.efer & ~EFER.NXE) | flag(c.nxe, EFER.NXE),
    rflags: (base.rflags & ~RFLAGS.AC) | flag(c.ac, RFLAGS.AC),
  };
}

type Outcome = { fault: number } | { physical: bigint; entriesAfter: bigint[] };

/** The model: SDM §4.5.4 (walk, reserved bits), §4.6.1 (rights, as "may" statements), §4.7, §4.8. */
function model(c: Case): Outcome {
  const user = c.mode === "user";
  const fetch = c.kind === "execute";
  const write = c.kind === "write";
  const code = (present: boolean, rsvd: boolean): number =>
    (present ? 1 : 0) | (write ? 2 : 0) | (user ? 4 : 0) | (rsvd ? 8 : 0) | (fetch && (c.nxe || c.smep) ? 16 : 0);
  const used: number[] = [];
  for (let level = 0; level < 4; level++) {
    const e = c.entries[level]!;
    if (!e.p) return { fault: code(false, false) };
    const x = e.extra;
    const large = level > 0 && level < 3 && e.ps;
    const reserved =
      (x !== null && x >= 46 && x <= 51) ||
      (e.xd && !c.nxe) ||
      (level === 0 && e.ps) ||
      (large && level === 1 && x !== null && x >= 13 && x <= 29) ||
      (large && level === 2 && x !== null && x >= 13 && x <= 20);
    if (reserved) return { fault: code(true, true) };
    used.push(level);
    if (level === 3 || large) break;
    // An extra address bit (12–45) moves the next table to empty memory: not present there.
    if (x !== null && x >= 12 && x <= 45 && (TABLES[level + 1]! & 2 ** x) === 0) return { fault: code(false, false) };
  }
  const entries = used.map((l) => c.entries[l]!);
  const userAddress = entries.every((e) => e.us);
  const writable = entries.every((e) => e.rw);
  const executable = !c.nxe || entries.every((e) => !e.xd);
  let allowed: boolean;
  if (user) allowed = userAddress && (write ? writable : fetch ? executable : true);
  else if (fetch) allowed = executable && !(c.smep && userAddress);
  else {
    const smapBlocks = c.smap && userAddress && (c.mode === "implicit" || !c.ac);
    allowed = !smapBlocks && (!write || !c.wp || writable);
  }
  if (!allowed) return { fault: code(true, false) };

  const leafLevel = used[used.length - 1]!;
  const pageBits = leafLevel === 3 ? 12 : PAGE_BITS[leafLevel]!;
  const leafValue = entryValue(c, leafLevel);
  // Frame: the entry's bits 45:pageBits (the extra bit may be an address bit, e.g. 45 or PAT 12).
  const frame = leafValue & ((1n << 46n) - 1n) & ~((1n << BigInt(pageBits)) - 1n);
  const physical = frame | (linearOf(c) & ((1n << BigInt(pageBits)) - 1n));
  const entriesAfter = used.map((l) => entryValue(c, l) | 0x20n | (l === leafLevel && write ? 0x40n : 0n));
  return { physical, entriesAfter };
}

describe("translate against an independent model", () => {
  it("PF-02 PF-04 PF-ACCESSED: random tables and accesses give the model's fault, physical address and A/D bits", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const m = machineFor(c);
        const linear = linearOf(c);
        const got = translate(m, m.memory, linear, { kind: c.kind, mode: c.mode });
        const want = model(c);
        // Here and below, expect only when the check fails (1,000 cases; vitest's expect costs
        // more than the checks): the same assertions.
        if ("fault" in want) {
          if (!("kind" in got) || got.errorCode !== want.fault || got.address !== linear) {
            expect("kind" in got ? { fault: got.errorCode, address: got.address } : got).toEqual({ fault: want.fault, address: linear });
          }
        } else {
          if ("kind" in got) throw new Error(`unexpected #PF(0x${got.errorCode?.toString(16)}) [${got.rule}], model allows`);
          if (got.physical !== want.physical) expect(got.physical).toBe(want.physical);
          want.entriesAfter.forEach((value, level) => {
            const entry = got.memory.read(entryAddress(c, level), 8);
            if (entry !== value) expect(entry).toBe(value);
          });
          // Nothing changed → the same memory object.
          const unchanged = want.entriesAfter.every((value, level) => value === entryValue(c, level));
          if ((got.memory === m.memory) !== unchanged) expect(got.memory === m.memory).toBe(unchanged);
        }
      }),
      { seed: 4_5_7_8, numRuns: 1000 },
    );
  });
});
