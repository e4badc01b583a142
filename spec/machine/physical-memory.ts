// Physical memory as persistent 4 KiB pages: a write copies one page and the small index above it,
// so every Machine can keep its own memory without copying the rest (structural sharing).
import { PAGE_SIZE } from "../format/state.ts";

/** Pages are grouped in chunks of 64 (256 KiB) under one small map. */
const CHUNK_PAGES = 64;
type Chunk = readonly (Uint8Array | undefined)[];
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class PhysicalMemory {
  private constructor(private readonly chunks: ReadonlyMap<number, Chunk>) {}

  static empty(): PhysicalMemory {
    return new PhysicalMemory(new Map());
  }

  /** Takes copies of the given pages (page number → 4 KiB). */
  static fromPages(pages: ReadonlyMap<number, Uint8Array>): PhysicalMemory {
    const chunks = new Map<number, (Uint8Array | undefined)[]>();
    for (const [pageNumber, bytes] of pages) {
      const key = Math.floor(pageNumber / CHUNK_PAGES);
      let chunk = chunks.get(key);
      if (chunk === undefined) chunks.set(key, (chunk = new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined)));
      chunk[pageNumber % CHUNK_PAGES] = bytes.slice();
    }
    return new PhysicalMemory(chunks);
  }

  /** The page's bytes (shared: never write into them); unbacked pages read as zero. */
  page(pageNumber: number): Uint8Array {
    return this.chunks.get(Math.floor(pageNumber / CHUNK_PAGES))?.[pageNumber % CHUNK_PAGES] ?? ZERO_PAGE;
  }

  readByte(address: bigint): number {
    return this.page(Number(address >> 12n))[Number(address & 0xfffn)]!;
  }

  /** Little-endian read of `size` bytes (may cross pages). */
  read(address: bigint, size: number): bigint {
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.readByte(address + BigInt(i)));
    return value;
  }

  readBytes(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.readByte(address + BigInt(i));
    return out;
  }

  /** A new memory with `bytes` stored at `address`; this one is unchanged. */
  writeBytes(address: bigint, bytes: Uint8Array): PhysicalMemory {
    if (bytes.length === 0) return this;
    const chunks = new Map(this.chunks);
    const copied = new Map<number, Uint8Array>();
    for (let i = 0; i < bytes.length; i++) {
      const a = address + BigInt(i);
      const pageNumber = Number(a >> 12n);
      let page = copied.get(pageNumber);
      if (page === undefined) {
        const key = Math.floor(pageNumber / CHUNK_PAGES);
        const chunk = [...(chunks.get(key) ?? new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined))];
        page = (chunk[pageNumber % CHUNK_PAGES] ?? ZERO_PAGE).slice();
        chunk[pageNumber % CHUNK_PAGES] = page;
        chunks.set(key, chunk);
        copied.set(pageNumber, page);
      }
      page[Number(a & 0xfffn)] = bytes[i]!;
    }
    return new PhysicalMemory(chunks);
  }

  /** Little-endian write of the low `size` bytes of `value`. */
  write(address: bigint, size: number, value: bigint): PhysicalMemory {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    return this.writeBytes(address, bytes);
  }

  /** Every backed page (page number → bytes), for export. */
  pages(): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    for (const [key, chunk] of this.chunks)
      chunk.forEach((page, i) => {
        if (page !== undefined) out.set(key * CHUNK_PAGES + i, page);
      });
    return out;
  }
}
