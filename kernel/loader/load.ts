// Loading a kernel image: an ELF64 executable or a raw binary, placed in guest physical memory
// as its loader description says, with the boot state of boot.ts. Everything about the image is
// checked against guest memory before a byte is written.
import type { ArchState } from "../../contract/state.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { LoaderError } from "./errors.ts";
import { isElf, parseElf } from "./elf.ts";
import { BOOT_AREA_PAGES, DEFAULT_DESCRIPTION, type LoaderDescription } from "./description.ts";
import { GuestMemory, bootState } from "./boot.ts";

export interface PhysicalSpan {
  readonly start: bigint;
  readonly end: bigint;
  readonly what: string;
}

export interface LoadedKernel {
  readonly state: ArchState;
  readonly profile: ProfileName;
  readonly entry: bigint;
  /** name → virtual address: the image's .symtab, then the description's `symbols`. */
  readonly symbols: ReadonlyMap<string, bigint>;
  /** Where the image and the boot area were placed (physical), for the checker and reports. */
  readonly placed: readonly PhysicalSpan[];
  readonly description: LoaderDescription;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Loads `image` (the file's bytes) as `description` says (the default: an ELF executable). */
export function loadKernel(image: Uint8Array, description: LoaderDescription = DEFAULT_DESCRIPTION): LoadedKernel {
  const size = description.memory_size;
  const area = description.boot_area;
  const bootEnd = area + BOOT_AREA_PAGES * 4096n;
  if (bootEnd > size) throw new LoaderError(`boot_area: [${hex(area)}, ${hex(bootEnd)}) lies outside guest memory (memory_size ${hex(size)})`);
  const placed: PhysicalSpan[] = [{ start: area, end: bootEnd, what: "the loader's boot area (boot_area)" }];
  const place = (start: bigint, length: bigint, what: string) => {
    const end = start + length;
    if (end > size) throw new LoaderError(`${what}: [${hex(start)}, ${hex(end)}) lies outside guest memory (memory_size ${hex(size)})`);
    for (const other of placed)
      if (start < other.end && other.start < end)
        throw new LoaderError(`${what}: [${hex(start)}, ${hex(end)}) overlaps ${other.what} [${hex(other.start)}, ${hex(other.end)})`);
    placed.push({ start, end, what });
  };

  const memory = new GuestMemory();
  let entry: bigint;
  let symbols = new Map<string, bigint>();
  if (description.image.type === "elf") {
    if (!isElf(image)) throw new LoaderError(`image: not an ELF file; a raw binary needs a loader description with image.type "raw" and image.load_address`);
    const elf = parseElf(image);
    for (const s of elf.segments) {
      const what = `program header ${s.index}`;
      if (s.vaddr !== s.paddr)
        throw new LoaderError(`${what}: p_vaddr ${hex(s.vaddr)} differs from p_paddr ${hex(s.paddr)}; the boot page tables map guest memory at identical addresses only`);
      place(s.paddr, s.memsz, what);
    }
    entry = elf.entry;
    if (!elf.segments.some((s) => s.executable && entry >= s.vaddr && entry < s.vaddr + s.memsz))
      throw new LoaderError(`e_entry: ${hex(entry)} is not inside an executable loaded segment`);
    for (const s of elf.segments) memory.write(s.paddr, s.bytes);
    symbols = new Map(elf.symbols);
  } else {
    const at = description.image.load_address;
    if (image.length === 0) throw new LoaderError(`image: empty file`);
    place(at, BigInt(image.length), "image (raw, at image.load_address)");
    entry = description.image.entry ?? at;
    if (entry < at || entry >= at + BigInt(image.length))
      throw new LoaderError(`image.entry: ${hex(entry)} is outside the raw image [${hex(at)}, ${hex(at + BigInt(image.length))})`);
    memory.write(at, image);
  }
  for (const [name, value] of Object.entries(description.symbols ?? {})) symbols.set(name, value);
  const taskSymbol = description.context?.task_symbol;
  if (taskSymbol !== undefined && !symbols.has(taskSymbol))
    throw new LoaderError(`context.task_symbol: no symbol ${JSON.stringify(taskSymbol)} in the image's .symtab or in symbols`);

  const state = bootState(memory, description, entry);
  return { state, profile: description.profile ?? "intel", entry, symbols, placed, description };
}
