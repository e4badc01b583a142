// guest/memory.ts's native paths (littleEndian by one setBigUint64, read64/write64 by one DataView
// load/store within a page) against a plain byte-by-byte reference: a map of byte addresses.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { GuestMemory, littleEndian } from "../../guest/index.ts";

/** `value` as `size` little-endian bytes, one shift per byte. */
const referenceLittleEndian = (value: bigint, size: number): number[] =>
  Array.from({ length: size }, (_, i) => Number((BigInt.asUintN(size * 8, value) >> BigInt(8 * i)) & 0xffn));

/** Memory as bytes by address; absent bytes read as zero. */
class ReferenceMemory {
  readonly bytes = new Map<bigint, number>();
  write64(address: bigint, value: bigint): void {
    referenceLittleEndian(value, 8).forEach((b, i) => this.bytes.set(address + BigInt(i), b));
  }
  read64(address: bigint): bigint {
    let v = 0n;
    for (let i = 7n; i >= 0n; i--) v = (v << 8n) | BigInt(this.bytes.get(address + i) ?? 0);
    return v;
  }
}

// Values wider than the size, negative ones, and the edges.
const value = fc.oneof(fc.bigInt(-(1n << 80n), 1n << 80n), fc.constantFrom(0n, -1n, 1n << 64n, (1n << 64n) - 1n, 1n << 63n, -(1n << 63n)));
// Addresses in a few pages (most left absent), often near a page's end so that a quadword crosses
// into the next page; one page far up.
const address = fc
  .tuple(fc.constantFrom(0n, 1n, 2n, 3n, 0x7_0000n), fc.oneof(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 4080, max: 4095 }), fc.integer({ min: 0, max: 16 })))
  .map(([page, offset]) => (page << 12n) + BigInt(offset));

describe("guest memory agrees with a byte-by-byte reference", () => {
  it("littleEndian: sizes 1–16, values wider than the size and negative", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), value, (size, v) => {
        const got = littleEndian(v, size);
        if (got.length !== size || !got.every((b, i) => b === referenceLittleEndian(v, size)[i])) {
          expect([...got]).toEqual(referenceLittleEndian(v, size));
        }
      }),
      { numRuns: 2000, seed: 81 },
    );
  });

  it("read64 and write64 on page-crossing and absent-page addresses; the bytes written are the reference's", () => {
    const op = fc.oneof(fc.record({ write: fc.constant(true), address, value }), fc.record({ write: fc.constant(false), address, value: fc.constant(0n) }));
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const memory = new GuestMemory();
        const reference = new ReferenceMemory();
        for (const o of ops) {
          if (o.write) {
            memory.write64(o.address, o.value);
            reference.write64(o.address, o.value);
          } else if (memory.read64(o.address) !== reference.read64(o.address)) {
            expect(`read64(0x${o.address.toString(16)}) = 0x${memory.read64(o.address).toString(16)}`).toBe(`read64(0x${o.address.toString(16)}) = 0x${reference.read64(o.address).toString(16)}`);
          }
        }
        // Every byte of every page, and no byte outside them.
        const held = new Map<bigint, number>();
        for (const [n, page] of memory.pages) page.forEach((b, i) => b !== 0 && held.set((BigInt(n) << 12n) + BigInt(i), b));
        const expected = new Map([...reference.bytes].filter(([, b]) => b !== 0));
        if (held.size !== expected.size || [...expected].some(([a, b]) => held.get(a) !== b)) expect(held).toEqual(expected);
        // A read of every quadword written, through both paths' neighbours.
        for (const o of ops) for (const d of [0n, 3n, 8n]) expect(memory.read64(o.address + d)).toBe(reference.read64(o.address + d));
      }),
      { numRuns: 300, seed: 82 },
    );
  });
});
