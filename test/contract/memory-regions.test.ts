// pagesFromRegions (every vector and engine-protocol state goes through it) against a byte-by-byte
// reference: regions in order, later ones overwriting earlier ones, unaligned, crossing pages,
// at high addresses; and the hex decoders against bytesToHex.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pagesFromRegions, PAGE_SIZE } from "../../contract/state.ts";
import { bytesToHex, hexBytesToRead, hexToBytes } from "../../contract/hex.ts";

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
        for (const [n, page] of want) expect(got.get(n)).toEqual(page);
      }),
      { seed: 14, numRuns: 25 },
    );
  });

  it("gives every page its own array (no view into a shared decode buffer)", () => {
    const pages = pagesFromRegions([{ gpa: 0x1ffen, bytes: "0102030405" }]);
    expect([...pages.keys()]).toEqual([1, 2]);
    for (const page of pages.values()) {
      expect(page.byteOffset).toBe(0);
      expect(page.buffer.byteLength).toBe(PAGE_SIZE);
    }
    expect([...pages.get(1)!.subarray(4094)]).toEqual([1, 2]);
    expect([...pages.get(2)!.subarray(0, 4)]).toEqual([3, 4, 5, 0]);
  });
});

describe("hex decoding", () => {
  it("hexToBytes and hexBytesToRead invert bytesToHex, in either case", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const text = bytesToHex(bytes);
        expect(hexToBytes(text)).toEqual(bytes);
        expect(hexToBytes(text.toUpperCase())).toEqual(bytes);
        expect([...hexBytesToRead(text)]).toEqual([...bytes]);
      }),
      { seed: 14, numRuns: 40 },
    );
  });
});
