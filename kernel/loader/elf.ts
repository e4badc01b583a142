// ELF64 executables (x86-64, little-endian, ET_EXEC): the loadable segments from the program
// headers and the symbols from .symtab when there is one. The image is untrusted (a student's
// submission): every offset, size and count is checked before it is used, and the first problem
// is reported as one line naming the ELF field (e_phoff, program header 2: p_filesz, ...).
import { LoaderError } from "./errors.ts";

/** Images larger than this are refused outright (bounded memory). */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;
const MAX_PROGRAM_HEADERS = 64;
const MAX_SYMBOLS = 200_000;
const MAX_SYMBOL_NAME = 512;

const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const PF_X = 1;

export interface ElfSegment {
  /** Index in the program header table. */
  readonly index: number;
  readonly paddr: bigint;
  readonly vaddr: bigint;
  /** The file bytes (p_filesz); the rest of p_memsz is zero (.bss). */
  readonly bytes: Uint8Array;
  readonly memsz: bigint;
  readonly executable: boolean;
}

export interface ElfImage {
  readonly entry: bigint;
  readonly segments: readonly ElfSegment[];
  /** Named symbols (functions, objects, untyped labels) with their values (virtual addresses). */
  readonly symbols: ReadonlyMap<string, bigint>;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

class Reader {
  constructor(readonly bytes: Uint8Array, private readonly view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)) {}
  u8(at: number): number { return this.view.getUint8(at); }
  u16(at: number): number { return this.view.getUint16(at, true); }
  u32(at: number): number { return this.view.getUint32(at, true); }
  u64(at: number): bigint { return this.view.getBigUint64(at, true); }
}

/** `offset + size` bytes must lie inside the file; returns offset as a number. */
function within(fileSize: number, offset: bigint, size: bigint, field: string, what: string): number {
  if (offset + size > BigInt(fileSize)) throw new LoaderError(`${field}: ${what} [${hex(offset)}, ${hex(offset + size)}) lies outside the file (${fileSize} bytes)`);
  return Number(offset);
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export function parseElf(bytes: Uint8Array): ElfImage {
  if (bytes.length > MAX_IMAGE_BYTES) throw new LoaderError(`image: ${bytes.length} bytes; at most ${MAX_IMAGE_BYTES}`);
  if (!isElf(bytes)) throw new LoaderError(`e_ident: not an ELF file (no \\x7fELF magic)`);
  if (bytes.length < 64) throw new LoaderError(`e_ident: truncated ELF header (${bytes.length} bytes, an ELF64 header has 64)`);
  const r = new Reader(bytes);
  if (r.u8(4) !== 2) throw new LoaderError(`e_ident[EI_CLASS]: ${r.u8(4)}; expected 2 (ELF64)`);
  if (r.u8(5) !== 1) throw new LoaderError(`e_ident[EI_DATA]: ${r.u8(5)}; expected 1 (little-endian)`);
  if (r.u8(6) !== 1) throw new LoaderError(`e_ident[EI_VERSION]: ${r.u8(6)}; expected 1`);
  const type = r.u16(16);
  if (type !== 2) throw new LoaderError(`e_type: ${type}${type === 3 ? " (shared object or PIE)" : type === 1 ? " (relocatable object)" : ""}; expected 2 (ET_EXEC, a statically linked executable)`);
  const machine = r.u16(18);
  if (machine !== 62) throw new LoaderError(`e_machine: ${machine}; expected 62 (x86-64)`);
  const entry = r.u64(24);
  const phoff = r.u64(32);
  const shoff = r.u64(40);
  const phentsize = r.u16(54);
  const phnum = r.u16(56);
  const shentsize = r.u16(58);
  const shnum = r.u16(60);

  if (phnum === 0) throw new LoaderError(`e_phnum: 0; an executable needs program headers`);
  if (phnum > MAX_PROGRAM_HEADERS) throw new LoaderError(`e_phnum: ${phnum} program headers; at most ${MAX_PROGRAM_HEADERS}`);
  if (phentsize !== 56) throw new LoaderError(`e_phentsize: ${phentsize}; expected 56 (Elf64_Phdr)`);
  const table = within(bytes.length, phoff, BigInt(phnum * 56), "e_phoff", "the program header table");

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = table + i * 56;
    if (r.u32(at) !== PT_LOAD) continue;
    const field = (name: string) => `program header ${i}: ${name}`;
    const flags = r.u32(at + 4);
    const offset = r.u64(at + 8);
    const vaddr = r.u64(at + 16);
    const paddr = r.u64(at + 24);
    const filesz = r.u64(at + 32);
    const memsz = r.u64(at + 40);
    if (filesz > memsz) throw new LoaderError(`${field("p_filesz")} ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    const start = within(bytes.length, offset, filesz, field("p_offset"), "the segment's file bytes");
    if (memsz === 0n) continue;
    segments.push({ index: i, paddr, vaddr, bytes: bytes.subarray(start, start + Number(filesz)), memsz, executable: (flags & PF_X) !== 0 });
  }
  if (segments.length === 0) throw new LoaderError(`e_phnum: no PT_LOAD segment with a non-zero p_memsz`);

  return { entry, segments, symbols: shnum === 0 ? new Map() : readSymbols(r, shoff, shentsize, shnum) };
}

/** Symbols from the first SHT_SYMTAB section and its string table (sh_link). */
function readSymbols(r: Reader, shoff: bigint, shentsize: number, shnum: number): Map<string, bigint> {
  const size = r.bytes.length;
  if (shentsize !== 64) throw new LoaderError(`e_shentsize: ${shentsize}; expected 64 (Elf64_Shdr)`);
  const table = within(size, shoff, BigInt(shnum) * 64n, "e_shoff", "the section header table");
  const symbols = new Map<string, bigint>();
  for (let i = 0; i < shnum; i++) {
    const at = table + i * 64;
    if (r.u32(at + 4) !== SHT_SYMTAB) continue;
    const field = (name: string) => `section header ${i} (.symtab): ${name}`;
    const offset = r.u64(at + 24);
    const bytes = r.u64(at + 32);
    const link = r.u32(at + 40);
    const entsize = r.u64(at + 56);
    if (entsize !== 24n) throw new LoaderError(`${field("sh_entsize")} ${entsize}; expected 24 (Elf64_Sym)`);
    const start = within(size, offset, bytes, field("sh_offset"), "the symbol table");
    const count = Number(bytes / 24n);
    if (count > MAX_SYMBOLS) throw new LoaderError(`${field("sh_size")} ${count} symbols; at most ${MAX_SYMBOLS}`);
    if (link >= shnum) throw new LoaderError(`${field("sh_link")} ${link}; there are ${shnum} sections`);
    const strAt = table + link * 64;
    const strOffset = r.u64(strAt + 24);
    const strSize = r.u64(strAt + 32);
    const strings = within(size, strOffset, strSize, `section header ${link} (.strtab): sh_offset`, "the string table");
    const stringsEnd = strings + Number(strSize);
    for (let s = 1; s < count; s++) {
      const sym = start + s * 24;
      const name = r.u32(sym);
      const info = r.u8(sym + 4);
      const shndx = r.u16(sym + 6);
      const symbolType = info & 0xf;
      // Named functions, objects and untyped labels that are defined (not SHN_UNDEF, not files/sections).
      if (name === 0 || shndx === 0 || symbolType > 2) continue;
      if (strings + name >= stringsEnd) throw new LoaderError(`.symtab symbol ${s}: st_name ${name} lies outside the string table (${strSize} bytes)`);
      let end = strings + name;
      while (end < stringsEnd && r.bytes[end] !== 0 && end - strings - name < MAX_SYMBOL_NAME) end++;
      const text = new TextDecoder("utf-8", { fatal: false }).decode(r.bytes.subarray(strings + name, end));
      if (!symbols.has(text)) symbols.set(text, r.u64(sym + 8));
    }
    break;
  }
  return symbols;
}
