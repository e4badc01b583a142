// Physical memory as persistent 4 KiB pages: a write copies one page and the small index above it,
// so every Machine can keep its own memory without copying the rest (structural sharing). A step
// writes through a MemoryDraft, which copies each page it writes at most once.
import { PAGE_SIZE } from "../../contract/state.ts";
import { joinHalves, split64, splitHigh, splitLow } from "./registers.ts";

/** Pages are grouped in chunks of 64 (256 KiB) under one small map. */
const CHUNK_PAGES = 64;
type Chunk = readonly (Uint8Array | undefined)[];
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

const chunkKey = (pageNumber: number): number => Math.floor(pageNumber / CHUNK_PAGES);
/** How many of a draft's page lookups it keeps (MemoryDraft.page; a power of 2). */
const FRONT_PAGES = 16;
/** The next MemoryDraft.serial. */
let nextDraftSerial = 1;

/** What a page-table walk needs from memory: the bytes of a page. */
export interface PageSource {
  /** The page's bytes (never write into them); unbacked pages read as zero. */
  page(pageNumber: number): Uint8Array;
}

export class PhysicalMemory implements PageSource {
  /** Built only by `empty`, `fromPages` and MemoryDraft.snapshot; the chunks are never changed. */
  constructor(
    private readonly chunks: ReadonlyMap<number, Chunk>,
    /** How many pages are backed. */
    readonly pageCount: number,
  ) {}

  static empty(): PhysicalMemory {
    return new PhysicalMemory(new Map(), 0);
  }

  /** Takes copies of the given pages (page number → 4 KiB). */
  static fromPages(pages: ReadonlyMap<number, Uint8Array>): PhysicalMemory {
    const chunks = new Map<number, (Uint8Array | undefined)[]>();
    for (const [pageNumber, bytes] of pages) {
      const key = chunkKey(pageNumber);
      let chunk = chunks.get(key);
      if (chunk === undefined) chunks.set(key, (chunk = new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined)));
      chunk[pageNumber % CHUNK_PAGES] = bytes.slice();
    }
    return new PhysicalMemory(chunks, pages.size);
  }

  /** The page's bytes (shared: never write into them); unbacked pages read as zero. */
  page(pageNumber: number): Uint8Array {
    return this.chunks.get(chunkKey(pageNumber))?.[pageNumber % CHUNK_PAGES] ?? ZERO_PAGE;
  }

  readByte(address: bigint): number {
    return this.page(Number(address >> 12n))[Number(address & 0xfffn)]!;
  }

  /** Little-endian read of `size` bytes (may cross pages). */
  read(address: bigint, size: number): bigint {
    return readLittleEndian(this, address, size);
  }

  readBytes(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.readByte(address + BigInt(i));
    return out;
  }

  /** A new memory with `bytes` stored at `address`; this one is unchanged. */
  writeBytes(address: bigint, bytes: Uint8Array): PhysicalMemory {
    if (bytes.length === 0) return this;
    const draft = this.draft();
    draft.writeBytes(address, bytes);
    return draft.snapshot();
  }

  /** Little-endian write of the low `size` bytes of `value`. */
  write(address: bigint, size: number, value: bigint): PhysicalMemory {
    const draft = this.draft();
    draft.write(address, size, value);
    return draft.snapshot();
  }

  /** A writable successor of this memory (this one stays unchanged); a write that would back
   *  more than `maxPages` pages throws a MemoryLimit. */
  draft(maxPages = Infinity): MemoryDraft {
    return new MemoryDraft(this, this.chunks, maxPages);
  }

  /** The numbers of this memory's backed pages whose page object is not `other`'s (written since
   *  `other`, or backed only here), in order. A chunk both still share holds the same pages: it is
   *  skipped whole. */
  changedPages(other: PhysicalMemory): number[] {
    const out: number[] = [];
    for (const [key, chunk] of this.chunks) {
      const theirs = other.chunks.get(key);
      if (theirs === chunk) continue;
      for (let i = 0; i < CHUNK_PAGES; i++) {
        const page = chunk[i];
        if (page !== undefined && page !== theirs?.[i]) out.push(key * CHUNK_PAGES + i);
      }
    }
    return out.sort((a, b) => a - b);
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

/**
 * Memory being written by one step or by a whole run (spec/step/step.ts `run`). The first write to
 * a page copies it (and the index above it); further writes to that page go into the copy in place,
 * so a run copies its stack page once, not once per push.
 *
 * Why writing in place is safe: a copy made here is reachable from nothing but this draft until
 * `snapshot()` puts it in a PhysicalMemory, or `freeze` hands it to a memo that keys on its bytes.
 * Both give up ownership of what they hand out (the next write copies again), so no PhysicalMemory
 * and no frozen page ever changes after it is handed out.
 *
 * Every write is journalled (address, size, old value), so a step that faults can take its writes
 * back (`rollBack`): the SDM's faults leave memory as it was, the accessed/dirty bits of successful
 * walks aside, which the Transaction sets again after rolling back.
 */
export class MemoryDraft implements PageSource {
  /** The index, shared with `published` until the first write after a snapshot. */
  private chunks: ReadonlyMap<number, Chunk>;
  /** Copies this draft made and nobody else can see: the index, its chunks and pages. */
  private ownedIndex = false;
  private ownedChunks: Set<Chunk> | null = null;
  private ownedPages: Set<Uint8Array> | null = null;
  /** The journal, one entry per write within a page: page number, offset, size in bytes (1–8)
   *  and the value it overwrote (low and high 32 bits). Entries past `journalLength` are dead
   *  (kept to be overwritten, not to shrink the arrays each step). */
  private readonly journalPage: number[] = [];
  private readonly journalOffset: number[] = [];
  private readonly journalSize: number[] = [];
  private readonly journalLow: number[] = [];
  private readonly journalHigh: number[] = [];
  private journalLength = 0;
  /**
   * Counts the times a page object in the index was replaced (a first write copying a page, or a
   * write after a snapshot or a freeze). While it stands still, every page number maps to the same
   * page object, so a memo keyed on page objects that checked them under this count need not check
   * them again (spec/paging/walk-memo.ts).
   */
  generation = 0;
  /**
   * This draft's number (drafts are numbered as they are made, never reused): what a module-level
   * memo keeps to recognise the draft, so that it never holds the draft itself (and the memory
   * behind it) alive after the run that made it (spec/paging/walk-memo.ts, spec/step/fetch.ts).
   */
  readonly serial = nextDraftSerial++;

  /** How many pages are backed. */
  private pageCount: number;
  /** The page `writablePage` returned last and its number (−1 for none): a run writes the same
   *  stack page again and again. Forgotten whenever this draft gives up owning pages. */
  private lastWritableNumber = -1;
  private lastWritable: Uint8Array = ZERO_PAGE;
  /** `page`'s last lookups (slot: page number & (FRONT_PAGES − 1)), valid under `frontGeneration`. */
  private readonly frontNumbers = new Float64Array(FRONT_PAGES).fill(-1);
  private readonly frontPages: Uint8Array[] = new Array<Uint8Array>(FRONT_PAGES).fill(ZERO_PAGE);
  private frontGeneration = -1;

  constructor(
    /** The last memory handed out (the one this draft started from until the first write). */
    private published: PhysicalMemory,
    chunks: ReadonlyMap<number, Chunk>,
    /** The most pages this draft may back: a write that needs one more throws a MemoryLimit. */
    private readonly maxPages: number,
  ) {
    this.chunks = chunks;
    this.pageCount = published.pageCount;
  }

  page(pageNumber: number): Uint8Array {
    // The pages looked up since the generation last moved, direct-mapped by page number: while it
    // stands, every page number maps to the same page object (see `generation`).
    const i = pageNumber & (FRONT_PAGES - 1);
    if (this.frontGeneration === this.generation) {
      if (this.frontNumbers[i] === pageNumber) return this.frontPages[i]!;
    } else {
      this.frontNumbers.fill(-1);
      this.frontGeneration = this.generation;
    }
    const page = this.chunks.get(chunkKey(pageNumber))?.[pageNumber % CHUNK_PAGES] ?? ZERO_PAGE;
    this.frontNumbers[i] = pageNumber;
    this.frontPages[i] = page;
    return page;
  }

  read(address: bigint, size: number): bigint {
    return readLittleEndian(this, address, size);
  }

  /** Little-endian read of `size` (at most 8) bytes at `offset` in page `pageNumber`, within
   *  the page. */
  readIn(pageNumber: number, offset: number, size: number): bigint {
    return readInPage(this.page(pageNumber), offset, size);
  }

  /** Little-endian write of the low `size` bytes of `value` (journalled). */
  write(address: bigint, size: number, value: bigint): void {
    // Physical addresses are below 2^52 (MAXPHYADDR): exact as Numbers.
    const a = Number(address);
    const offset = a % PAGE_SIZE;
    const pageNumber = (a - offset) / PAGE_SIZE;
    if (offset + size <= PAGE_SIZE) {
      this.writeIn(pageNumber, offset, size, value);
      return;
    }
    // Across pages: both made writable first, so a MemoryLimit leaves nothing half written.
    const first = PAGE_SIZE - offset;
    this.writablePage(pageNumber);
    this.writablePage(pageNumber + 1);
    this.writeIn(pageNumber, offset, first, value);
    this.writeIn(pageNumber + 1, 0, size - first, value >> BigInt(8 * first));
  }

  /** Little-endian write of the low `size` bytes of `value` at `offset` in page `pageNumber`,
   *  within the page (journalled). */
  writeIn(pageNumber: number, offset: number, size: number, value: bigint): void {
    if (size > 8) {
      this.writeIn(pageNumber, offset, 8, value);
      this.writeIn(pageNumber, offset + 8, size - 8, value >> 64n);
      return;
    }
    // Made writable first (it may throw MemoryLimit), journalled before it changes.
    const page = this.writablePage(pageNumber);
    const n = this.journalLength++;
    this.journalPage[n] = pageNumber;
    this.journalOffset[n] = offset;
    this.journalSize[n] = size;
    this.journalLow[n] = lowWord(page, offset, size);
    this.journalHigh[n] = size > 4 ? highWord(page, offset, size) : 0;
    // The value's two 32-bit halves (modulo 2^64), split without a BigInt-to-Number conversion.
    split64(value);
    putInPage(page, offset, size, splitLow(), size > 4 ? splitHigh() : 0);
  }

  writeBytes(address: bigint, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.write(address + BigInt(i), 1, BigInt(bytes[i]!));
  }

  /** Where the journal stands: `rollBack(mark)` undoes every write made after this call. */
  mark(): number {
    return this.journalLength;
  }

  /** Undoes the writes made since `mark`, newest first. */
  rollBack(mark: number): void {
    for (let i = this.journalLength - 1; i >= mark; i--)
      putInPage(this.writablePage(this.journalPage[i]!), this.journalOffset[i]!, this.journalSize[i]!, this.journalLow[i]!, this.journalHigh[i]!);
    this.journalLength = mark;
  }

  /** Drops the journal: the writes so far can no longer be rolled back (a run, after each step). */
  forgetJournal(): void {
    this.journalLength = 0;
  }

  /** Whether `page` is a copy this draft may still write in place (every other page is fixed). */
  mayChange(page: Uint8Array): boolean {
    return this.ownedPages?.has(page) ?? false;
  }

  /** Page `pageNumber`, whose bytes from now on never change: a later write to that page number
   *  writes a new copy (for memos keyed by a page object, spec/paging/walk-memo.ts, spec/decode/memo.ts). */
  frozenPage(pageNumber: number): Uint8Array {
    const page = this.page(pageNumber);
    this.ownedPages?.delete(page);
    if (pageNumber === this.lastWritableNumber) this.lastWritableNumber = -1;
    return page;
  }

  /** This draft's memory as it is now, for reading at once (Engine.peekState, touched): not handed
   *  over, so the draft keeps owning its pages (and writing them in place); the caller must not
   *  keep it past the draft's next write. */
  peek(): PhysicalMemory {
    return this.ownedIndex ? new PhysicalMemory(this.chunks, this.pageCount) : this.published;
  }

  /** The memory as written so far. The draft keeps working on top of it. */
  snapshot(): PhysicalMemory {
    if (this.ownedIndex) {
      this.published = new PhysicalMemory(this.chunks, this.pageCount);
      this.ownedIndex = false;
      this.ownedChunks = null;
      this.ownedPages = null;
      this.lastWritableNumber = -1;
    }
    return this.published;
  }

  /** The page, copied into this draft's ownership first unless it already is. */
  private writablePage(pageNumber: number): Uint8Array {
    if (pageNumber === this.lastWritableNumber) return this.lastWritable;
    const key = chunkKey(pageNumber);
    const slot = pageNumber % CHUNK_PAGES;
    let chunk = this.chunks.get(key);
    const page = chunk?.[slot];
    if (page !== undefined && this.ownedPages?.has(page)) return this.rememberWritable(pageNumber, page);
    if (page === undefined) {
      if (this.pageCount >= this.maxPages) throw new MemoryLimit(this.maxPages);
      this.pageCount++;
    }
    if (!this.ownedIndex) {
      this.chunks = new Map(this.chunks);
      this.ownedIndex = true;
    }
    const ownedChunks = (this.ownedChunks ??= new Set());
    if (chunk === undefined || !ownedChunks.has(chunk)) {
      chunk = chunk === undefined ? new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined) : chunk.slice();
      ownedChunks.add(chunk);
      (this.chunks as Map<number, Chunk>).set(key, chunk);
    }
    const copy = newPage();
    copy.set(page ?? ZERO_PAGE);
    (chunk as (Uint8Array | undefined)[])[slot] = copy;
    this.generation++;
    (this.ownedPages ??= new Set()).add(copy);
    return this.rememberWritable(pageNumber, copy);
  }

  private rememberWritable(pageNumber: number, page: Uint8Array): Uint8Array {
    this.lastWritableNumber = pageNumber;
    this.lastWritable = page;
    return page;
  }
}

/** A write that would back more pages than the draft may (`draft(maxPages)`): the step that made it
 *  is taken back and the run stops with `memory-limit` (spec/step/step.ts). */
export class MemoryLimit extends Error {
  constructor(readonly maxPages: number) {
    super(`guest physical memory would exceed ${maxPages} pages`);
  }
}

/**
 * A fresh 4 KiB page. Pages are cut from 64 KiB buffers: allocating a separate ArrayBuffer for
 * every page copy costs more than the copy itself. (A buffer lives as long as any of its pages, so
 * the buffer stays small.)
 */
const SLAB_PAGES = 16;
let slab = new ArrayBuffer(0);
let slabUsed = SLAB_PAGES;
function newPage(): Uint8Array {
  if (slabUsed === SLAB_PAGES) {
    slab = new ArrayBuffer(SLAB_PAGES * PAGE_SIZE);
    slabUsed = 0;
  }
  return new Uint8Array(slab, PAGE_SIZE * slabUsed++, PAGE_SIZE);
}


/** Bytes offset..offset+min(size,4)−1 of `page` as a little-endian number (the low 32-bit half
 *  of a read of `size` bytes). */
function lowWord(page: Uint8Array, offset: number, size: number): number {
  switch (size) {
    case 1: return page[offset]!;
    case 2: return page[offset]! | (page[offset + 1]! << 8);
    case 3: return page[offset]! | (page[offset + 1]! << 8) | (page[offset + 2]! << 16);
    default: return (page[offset]! | (page[offset + 1]! << 8) | (page[offset + 2]! << 16) | (page[offset + 3]! << 24)) >>> 0;
  }
}

/** Bytes offset+4..offset+size−1 of `page` (size 5 to 8) as a little-endian number: the high half. */
function highWord(page: Uint8Array, offset: number, size: number): number {
  if (size === 8) return (page[offset + 4]! | (page[offset + 5]! << 8) | (page[offset + 6]! << 16) | (page[offset + 7]! << 24)) >>> 0;
  let high = 0;
  for (let i = size - 1; i >= 4; i--) high = high * 256 + page[offset + i]!;
  return high;
}

/** `size` (at most 8) bytes at `offset` in `page`, little-endian, assembled in plain numbers and
 *  made a BigInt once (from a 32-bit Number, or from both halves through the scratch cell). */
function readInPage(page: Uint8Array, offset: number, size: number): bigint {
  const low = lowWord(page, offset, size);
  if (size <= 4) return BigInt(low);
  const high = highWord(page, offset, size);
  return high === 0 ? BigInt(low) : joinHalves(low, high);
}

/** Stores the low `size` (at most 8) bytes of the value `high`·2^32 + `low` at `offset` in `page`
 *  (a Uint8Array store keeps a number's low 8 bits). */
function putInPage(page: Uint8Array, offset: number, size: number, low: number, high: number): void {
  page[offset] = low;
  if (size === 1) return;
  page[offset + 1] = low >>> 8;
  if (size === 2) return;
  page[offset + 2] = low >>> 16;
  if (size === 3) return;
  page[offset + 3] = low >>> 24;
  if (size === 8) {
    page[offset + 4] = high;
    page[offset + 5] = high >>> 8;
    page[offset + 6] = high >>> 16;
    page[offset + 7] = high >>> 24;
    return;
  }
  for (let i = 4, h = high; i < size; i++, h = Math.floor(h / 256)) page[offset + i] = h;
}

function readLittleEndian(memory: PageSource, address: bigint, size: number): bigint {
  // Within one page (the common case): assembled in plain numbers, 32 bits at a time (physical
  // addresses are below 2^52, exact as Numbers).
  const a = Number(address);
  const offset = a % PAGE_SIZE;
  if (offset + size <= PAGE_SIZE && size <= 8) {
    return readInPage(memory.page((a - offset) / PAGE_SIZE), offset, size);
  }
  let value = 0n;
  for (let i = size - 1; i >= 0; i--) {
    const a = address + BigInt(i);
    value = (value << 8n) | BigInt(memory.page(Number(a >> 12n))[Number(a & 0xfffn)]!);
  }
  return value;
}
