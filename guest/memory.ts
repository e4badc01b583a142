// Guest physical memory while a guest is being built: 4 KiB pages by page number, the shape
// contract/state.ts's ArchState.memory takes. Absent pages read as zero.
import { PAGE_SIZE } from "../contract/state.ts";

/** `value` as `size` little-endian bytes. */
export function littleEndian(value: bigint, size: number): Uint8Array {
  const v = BigInt.asUintN(size * 8, value);
  if (size <= 8) {
    // One native store (a layout writes hundreds of descriptors and gates): v fits in `size`
    // bytes, so its low `size` bytes of the quadword are the whole value.
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return size === 8 ? out : out.slice(0, size);
  }
  return Uint8Array.from({ length: size }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

export class GuestMemory {
  readonly pages = new Map<number, Uint8Array>();

  /** A copy of `pages` (e.g. an ArchState's memory) to build on. */
  static from(pages: ReadonlyMap<number, Uint8Array>): GuestMemory {
    const m = new GuestMemory();
    for (const [n, p] of pages) m.pages.set(n, p.slice());
    return m;
  }

  /** The page with number `n`, created zeroed on first use. */
  page(n: number): Uint8Array {
    let p = this.pages.get(n);
    if (p === undefined) this.pages.set(n, (p = new Uint8Array(PAGE_SIZE)));
    return p;
  }

  write(address: bigint, bytes: Uint8Array | readonly number[]): void {
    const data = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    let done = 0;
    while (done < data.length) {
      const a = address + BigInt(done);
      const offset = Number(a & 0xfffn);
      const n = Math.min(PAGE_SIZE - offset, data.length - done);
      this.page(Number(a >> 12n)).set(data.subarray(done, done + n), offset);
      done += n;
    }
  }

  /** Little-endian `value` in `size` bytes. */
  writeValue(address: bigint, size: 1 | 2 | 4 | 8, value: bigint): void {
    this.write(address, littleEndian(value, size));
  }

  write64(address: bigint, value: bigint): void {
    const offset = Number(address & 0xfffn);
    if (offset > PAGE_SIZE - 8) return this.writeValue(address, 8, value);
    // Within one page (every aligned table entry): one native store.
    const p = this.page(Number(address >> 12n));
    new DataView(p.buffer, p.byteOffset, p.byteLength).setBigUint64(offset, BigInt.asUintN(64, value), true);
  }

  read(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const a = address + BigInt(i);
      out[i] = this.pages.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0;
    }
    return out;
  }

  read64(address: bigint): bigint {
    // Within one page (every aligned entry of a table): one native load, absent pages as zero.
    const offset = Number(address & 0xfffn);
    if (offset <= PAGE_SIZE - 8) {
      const p = this.pages.get(Number(address >> 12n));
      return p === undefined ? 0n : new DataView(p.buffer, p.byteOffset, p.byteLength).getBigUint64(offset, true);
    }
    const b = this.read(address, 8);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  }
}
