// pagesFromRegions (every vector and engine-protocol state goes through it) against a byte-by-byte
// reference: regions in order, later ones overwriting earlier ones, unaligned, crossing pages,
// at high addresses; and the hex decoders against bytesToHex.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pagesFromRegions, pageSlab, PAGE_SIZE } from "../../contract/state.ts";
import { bytesToHex, hexDecoder, hexInto, hexToBytes } from "../../contract/hex.ts";
import { expectSameBytes, expectSamePages } from "../helpers/bytes.ts";

/** The reference: one byte at a time into a Map of zeroed pages. */
function reference(regions: readonly { gpa: bigint; bytes: string }[]): Map<number, Uint8Array> {
  const pages = new Map<number, Uint8Array>();
  for (const r of regions) {
    for (let k = 0; k < r.bytes.length / 2; k++) {
      const address = r.gpa + BigInt(k);
      const n = Number(address / 4096n);
      if (!pages.has(n)) pages.set(n, new Uint8Array(PAGE_SIZE));
      pages.get(n)![Number(address % 4096n)] = parseInt(r.bytes.slice(2 * k, 2 * k + 2), 16);
    }
  }
  return pages;
}

const hexText = fc.uint8Array({ maxLength: 5000 }).chain((b) => fc.constantFrom(bytesToHex(b), bytesToHex(b).toUpperCase()));
const region = fc.record({
  gpa: fc.oneof(fc.bigInt({ min: 0n, max: 0x40000n }), fc.bigInt({ min: (1n << 64n) - 0x10000n, max: (1n << 64n) - 1n })),
  bytes: hexText,
});

describe("pagesFromRegions", () => {
  it("matches a byte-by-byte reference for any regions (overlapping, unaligned, crossing pages, near 2^64)", () => {
    fc.assert(
      fc.property(fc.array(region, { maxLength: 4 }), (regions) => {
        const got = pagesFromRegions(regions);
        const want = reference(regions);
        expect([...got.keys()].sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
        for (const [n, page] of want) expectSameBytes(got.get(n), page);
      }),
      { seed: 14, numRuns: 25 },
    );
  });

  it("gives every page PAGE_SIZE bytes of a buffer that holds only that state's pages, none shared", () => {
    const pages = pagesFromRegions([
      { gpa: 0x1ffen, bytes: "0102030405" },
      { gpa: 0x9000n, bytes: "ff" },
    ]);
    expect([...pages.keys()]).toEqual([1, 2, 9]);
    const buffer = pages.get(1)!.buffer;
    const offsets = new Set<number>();
    for (const page of pages.values()) {
      expect(page.byteLength).toBe(PAGE_SIZE);
      expect(page.buffer).toBe(buffer);
      offsets.add(page.byteOffset);
    }
    // One slot each, and nothing else in the buffer (no view into a shared decode pool).
    expect([...offsets].sort((a, b) => a - b)).toEqual([0, PAGE_SIZE, 2 * PAGE_SIZE]);
    expect(buffer.byteLength).toBe(3 * PAGE_SIZE);
    expect([...pages.get(1)!.subarray(4094)]).toEqual([1, 2]);
    expect([...pages.get(2)!.subarray(0, 4)]).toEqual([3, 4, 5, 0]);
    // A write to one page shows in no other.
    pages.get(2)!.fill(0xaa);
    expect([...pages.get(1)!.subarray(4094)]).toEqual([1, 2]);
    expect(pages.get(9)![0]).toBe(0xff);
    expect(pages.get(9)!.subarray(1).every((b) => b === 0)).toBe(true);
    // Another call's pages are another buffer.
    expect(pagesFromRegions([{ gpa: 0x1000n, bytes: "01" }]).get(1)!.buffer).not.toBe(buffer);
  });

  it("reads an address given as text (as files write it, with leading zeros or near 2^64) as the same address given as a bigint", () => {
    fc.assert(
      fc.property(fc.array(region, { maxLength: 4 }), fc.boolean(), (regions, padded) => {
        const asText = regions.map((r) => ({ gpa: `0x${r.gpa.toString(16).padStart(padded ? 16 : 1, "0")}`, bytes: r.bytes }));
        const got = pagesFromRegions(asText);
        const want = reference(regions);
        expect([...got.keys()]).toEqual([...pagesFromRegions(regions).keys()]);
        for (const [n, page] of want) expectSameBytes(got.get(n), page);
      }),
      { seed: 15, numRuns: 12 },
    );
  });

  it("takes pages from a slab when given one: the same contents, zeroed pages, none shared between states or slabs", () => {
    // Two slab pages a slab: the states below need five, so they span three slabs.
    const takePage = pageSlab(2 * PAGE_SIZE);
    const first = pagesFromRegions([{ gpa: "0x1ffe", bytes: "0102030405" }, { gpa: "0x9000", bytes: "ff" }], takePage);
    const second = pagesFromRegions([{ gpa: "0x1000", bytes: "aa" }, { gpa: "0x3fff", bytes: "bbcc" }], takePage);
    expect([...first.keys()]).toEqual([1, 2, 9]);
    expect([...second.keys()]).toEqual([1, 3, 4]);
    const all = [...first.values(), ...second.values()];
    const buffers = new Set<ArrayBufferLike>();
    for (const page of all) {
      expect(page.byteLength).toBe(PAGE_SIZE);
      buffers.add(page.buffer);
    }
    expect(buffers.size).toBe(3);
    for (const buffer of buffers) expect(buffer.byteLength).toBe(2 * PAGE_SIZE);
    const slots = all.map((p) => [p.buffer, p.byteOffset] as const);
    for (let i = 0; i < slots.length; i++) for (let j = i + 1; j < slots.length; j++) expect(slots[i]![0] === slots[j]![0] && slots[i]![1] === slots[j]![1]).toBe(false);
    expectSamePages(first, reference([{ gpa: 0x1ffen, bytes: "0102030405" }, { gpa: 0x9000n, bytes: "ff" }]));
    expectSamePages(second, reference([{ gpa: 0x1000n, bytes: "aa" }, { gpa: 0x3fffn, bytes: "bbcc" }]));
    // A write to one state's page shows in no other state.
    second.get(1)!.fill(0x11);
    expect(first.get(1)!.subarray(0, 4094).every((b) => b === 0)).toBe(true);
    expect([...first.get(1)!.subarray(4094)]).toEqual([1, 2]);
  });

  it("with a slab, matches the byte-by-byte reference for any regions, state after state (fixed seed)", () => {
    const takePage = pageSlab(3 * PAGE_SIZE);
    fc.assert(
      fc.property(fc.array(fc.array(region, { maxLength: 4 }), { maxLength: 4 }), (states) => {
        const built = states.map((regions) => pagesFromRegions(regions, takePage));
        states.forEach((regions, i) => expectSamePages(built[i]!, reference(regions)));
      }),
      { seed: 16, numRuns: 12 },
    );
  });
});

describe("hex decoding", () => {
  it("hexToBytes and hexDecoder invert bytesToHex, in either case, for any part of the text at any place", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), fc.nat({ max: 16 }), (bytes, a, b, at) => {
        const text = bytesToHex(bytes);
        expectSameBytes(hexToBytes(text), bytes);
        expectSameBytes(hexToBytes(text.toUpperCase()), bytes);
        const from = bytes.length === 0 ? 0 : a % bytes.length;
        const count = b % (bytes.length - from + 1);
        for (const digits of [text, text.toUpperCase()]) {
          const target = new Uint8Array(bytes.length + 32).fill(0x5a);
          hexDecoder()(digits, from, count, target.subarray(8), at);
          const want = new Uint8Array(target.length).fill(0x5a);
          want.set(bytes.subarray(from, from + count), 8 + at);
          expectSameBytes(target, want);
        }
      }),
      { seed: 14, numRuns: 40 },
    );
  });

  it("hexDecoder writes nothing when `at` is past the target's end (inside or past its ArrayBuffer), as hexInto", () => {
    const text = bytesToHex(Uint8Array.from([1, 2, 3, 4]));
    for (const decode of [hexDecoder(), hexInto]) {
      const slab = new Uint8Array(64).fill(0x5a);
      const target = slab.subarray(16, 32);
      for (const [from, at] of [[0, 17], [2, 20], [1, 40], [0, 100]] as const) decode(text, from, 2, target, at);
      expectSameBytes(slab, new Uint8Array(64).fill(0x5a));
    }
  });

  it("one hexDecoder writes each batch where it is told, views of different buffers in any order, never past a view's end", () => {
    const write = fc.record({ buffer: fc.nat({ max: 2 }), start: fc.nat({ max: 40 }), length: fc.nat({ max: 24 }), bytes: fc.uint8Array({ maxLength: 32 }), at: fc.nat({ max: 30 }) });
    fc.assert(
      fc.property(fc.array(write, { maxLength: 12 }), (writes) => {
        const buffers = [new Uint8Array(64), new Uint8Array(64), new Uint8Array(64)];
        const want = buffers.map((b) => b.slice());
        const decode = hexDecoder();
        for (const w of writes) {
          const target = buffers[w.buffer]!.subarray(w.start, w.start + w.length);
          const at = Math.min(w.at, target.length);
          decode(bytesToHex(w.bytes), 0, w.bytes.length, target, at);
          // What a write bounded by the view makes: the bytes that fit from `at` to its end.
          want[w.buffer]!.set(w.bytes.subarray(0, Math.max(0, target.length - at)), w.start + at);
        }
        buffers.forEach((b, i) => expectSameBytes(b, want[i]!));
      }),
      { seed: 15, numRuns: 200 },
    );
  });
});
