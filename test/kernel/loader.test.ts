// kernel/loader: ELF64 and raw images, the boot protocol, and untrusted input (one clear error
// naming the field, never another exception, memory bounded by the description).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { LoaderError, loadKernel, parseElf, parseLoaderDescription, parseLoaderDescriptionText, BOOT_LAYOUT, DEFAULT_MEMORY } from "../../kernel/loader/index.ts";
import { modelScopeViolation } from "../../contract/scope.ts";

const KERNEL = new Uint8Array(readFileSync(new URL("../../kernel/c/build/kernel.elf", import.meta.url)));

/** A copy of the C kernel's ELF with one field changed. */
function mutate(edit: (view: DataView, bytes: Uint8Array) => void, bytes: Uint8Array = KERNEL): Uint8Array {
  const copy = new Uint8Array(bytes);
  edit(new DataView(copy.buffer), copy);
  return copy;
}
const PHOFF = 64; // the C kernel's program headers follow the ELF header
const ph = (i: number, field: number) => PHOFF + i * 56 + field;

function loaderError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof LoaderError) return e.message;
    throw e;
  }
  throw new Error("no error");
}

const u8 = (b: number[]) => Uint8Array.from(b);
const raw = (extra: object = {}) => parseLoaderDescription({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x100000" }, ...extra });

describe("loading the C kernel (ELF64)", () => {
  const k = loadKernel(KERNEL);

  it("places every PT_LOAD segment at its physical address and starts at e_entry", () => {
    expect(k.entry).toBe(0x100000n);
    expect(k.state.rip).toBe(0x100000n);
    const page = k.state.memory.get(0x100)!;
    expect([...page.subarray(0, 16)]).toEqual([...KERNEL.subarray(0x1000, 0x1010)]); // .text at file offset 0x1000
    expect(k.placed.map((p) => p.what)).toEqual(["the loader's boot area (boot_area)", "program header 0", "program header 1", "program header 2"]);
  });

  it("reads the symbols from .symtab", () => {
    expect(k.symbols.get("_start")).toBe(0x100000n);
    for (const name of ["syscall_entry", "exception_entry", "iretq_to_user", "kernel_main", "schedule", "user_syscalls_start"]) expect(k.symbols.has(name)).toBe(true);
  });

  it("boots in long mode with the ringspec-boot/1 protocol (identity map, boot GDT, RDI = memory size)", () => {
    const s = k.state;
    expect(modelScopeViolation(s)).toBeNull();
    expect(s.gpr[7]).toBe(DEFAULT_MEMORY);
    expect(s.gpr[4]).toBe(0x1000n + BOOT_LAYOUT.stackTop);
    expect(s.cr3).toBe(0x1000n + BOOT_LAYOUT.pml4);
    expect(s.cs.selector).toBe(0x08);
    expect(s.cs.l).toBe(1);
    expect(s.rflags & 0x200n).toBe(0n);
    const pd = new DataView(s.memory.get(0x4)!.buffer);
    expect(pd.getBigUint64(0, true)).toBe(0x83n); // 0–2 MiB: present, writable, supervisor, 2 MiB
    expect(pd.getBigUint64(8, true)).toBe(0x200083n);
    expect(pd.getBigUint64(16, true)).toBe(0n); // 4 MiB of memory: two PDEs
  });

  it("applies the description's register overrides and symbols", () => {
    const d = parseLoaderDescription({ format: "ringspec-loader/1", entry: { regs: { rdi: "0x1234", rsi: "0x5" } }, symbols: { current: "0x10a000" }, context: { task_symbol: "current" } });
    const loaded = loadKernel(KERNEL, d);
    expect(loaded.state.gpr[7]).toBe(0x1234n);
    expect(loaded.state.gpr[6]).toBe(5n);
    expect(loaded.symbols.get("current")).toBe(0x10a000n);
  });
});

describe("the C kernel's loader description (kernel/c/loader.json)", () => {
  it("is valid and loads the C kernel", () => {
    const d = parseLoaderDescriptionText(readFileSync(new URL("../../kernel/c/loader.json", import.meta.url), "utf8"));
    expect(d.limits?.max_steps).toBe(5_000_000);
    expect(loadKernel(KERNEL, d).entry).toBe(0x100000n);
  });
});

describe("raw images", () => {
  it("loads the bytes at image.load_address; the entry defaults to it", () => {
    const k = loadKernel(u8([0x90, 0xf4]), raw());
    expect(k.state.rip).toBe(0x100000n);
    expect(k.state.memory.get(0x100)![1]).toBe(0xf4);
  });
  it.each([
    ["an entry outside the image", () => loadKernel(u8([0x90]), parseLoaderDescription({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x100000", entry: "0x200000" } })), "image.entry: 0x200000 is outside the raw image [0x100000, 0x100001)"],
    ["an image past the end of memory", () => loadKernel(new Uint8Array(16), parseLoaderDescription({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x3ffff8" } })), "image (raw, at image.load_address): [0x3ffff8, 0x400008) lies outside guest memory (memory_size 0x400000)"],
    ["an image over the boot area", () => loadKernel(new Uint8Array(16), parseLoaderDescription({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x2000" } })), "image (raw, at image.load_address): [0x2000, 0x2010) overlaps the loader's boot area (boot_area) [0x1000, 0x9000)"],
    ["an empty image", () => loadKernel(new Uint8Array(0), raw()), "image: empty file"],
    ["a raw file given as ELF", () => loadKernel(u8([0x90])), 'image: not an ELF file; a raw binary needs a loader description with image.type "raw" and image.load_address'],
  ])("refuses %s", (_, f, message) => {
    expect(loaderError(f)).toBe(message);
  });
});

describe("a truncated or lying ELF gets one line naming the field", () => {
  // Expected messages are computed from the committed ELF's own headers, so a rebuild keeps them.
  const view = new DataView(KERNEL.buffer, KERNEL.byteOffset, KERNEL.byteLength);
  const field = (i: number, at: number) => view.getBigUint64(ph(i, at), true);
  const seg = [0, 1, 2].map((i) => ({ offset: field(i, 8), paddr: field(i, 24), filesz: field(i, 32), memsz: field(i, 40) }));
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  const end = (i: number) => seg[i]!.paddr + seg[i]!.memsz;
  const size = KERNEL.length;
  const cases: [string, Uint8Array, string][] = [
    ["a truncated header", KERNEL.subarray(0, 40), "e_ident: truncated ELF header (40 bytes, an ELF64 header has 64)"],
    ["ELF32", mutate((v) => v.setUint8(4, 1)), "e_ident[EI_CLASS]: 1; expected 2 (ELF64)"],
    ["big-endian", mutate((v) => v.setUint8(5, 2)), "e_ident[EI_DATA]: 2; expected 1 (little-endian)"],
    ["a PIE", mutate((v) => v.setUint16(16, 3, true)), "e_type: 3 (shared object or PIE); expected 2 (ET_EXEC, a statically linked executable)"],
    ["another machine", mutate((v) => v.setUint16(18, 183, true)), "e_machine: 183; expected 62 (x86-64)"],
    ["no program headers", mutate((v) => v.setUint16(56, 0, true)), "e_phnum: 0; an executable needs program headers"],
    ["too many program headers", mutate((v) => v.setUint16(56, 65, true)), "e_phnum: 65 program headers; at most 64"],
    ["a wrong e_phentsize", mutate((v) => v.setUint16(54, 32, true)), "e_phentsize: 32; expected 56 (Elf64_Phdr)"],
    ["program headers past the end", mutate((v) => v.setBigUint64(32, 0x100000n, true)), `e_phoff: the program header table [0x100000, 0x1000e0) lies outside the file (${size} bytes)`],
    ["a segment's bytes past the end", mutate((v) => v.setBigUint64(ph(0, 8), BigInt(size), true)), `program header 0: p_offset: the segment's file bytes [${hex(BigInt(size))}, ${hex(BigInt(size) + seg[0]!.filesz)}) lies outside the file (${size} bytes)`],
    ["p_filesz > p_memsz", mutate((v) => v.setBigUint64(ph(0, 40), 0x10n, true)), `program header 0: p_filesz ${hex(seg[0]!.filesz)} exceeds p_memsz 0x10`],
    ["a segment outside guest memory", mutate((v) => { v.setBigUint64(ph(2, 16), 0x3ff000n, true); v.setBigUint64(ph(2, 24), 0x3ff000n, true); }), `program header 2: [0x3ff000, ${hex(0x3ff000n + seg[2]!.memsz)}) lies outside guest memory (memory_size 0x400000)`],
    ["an absurd p_memsz", mutate((v) => v.setBigUint64(ph(2, 40), 1n << 62n, true)), `program header 2: [${hex(seg[2]!.paddr)}, ${hex(seg[2]!.paddr + (1n << 62n))}) lies outside guest memory (memory_size 0x400000)`],
    ["overlapping segments", mutate((v) => { v.setBigUint64(ph(1, 16), 0x101000n, true); v.setBigUint64(ph(1, 24), 0x101000n, true); }), `program header 1: [0x101000, ${hex(0x101000n + seg[1]!.memsz)}) overlaps program header 0 [0x100000, ${hex(end(0))})`],
    ["a segment over the boot area", mutate((v) => { v.setBigUint64(ph(0, 16), 0x3000n, true); v.setBigUint64(ph(0, 24), 0x3000n, true); }), `program header 0: [0x3000, ${hex(0x3000n + seg[0]!.memsz)}) overlaps the loader's boot area (boot_area) [0x1000, 0x9000)`],
    ["a higher-half segment", mutate((v) => v.setBigUint64(ph(0, 16), 0xffffffff80100000n, true)), "program header 0: p_vaddr 0xffffffff80100000 differs from p_paddr 0x100000; the boot page tables map guest memory at identical addresses only"],
    ["an entry outside the code", mutate((v) => v.setBigUint64(24, 0x200000n, true)), "e_entry: 0x200000 is not inside an executable loaded segment"],
    ["a symbol table past the end", mutate((v) => v.setBigUint64(40, 0x7fffffffn, true)), `e_shoff: the section header table [0x7fffffff, ${hex(0x7fffffffn + 64n * BigInt(view.getUint16(60, true)))}) lies outside the file (${size} bytes)`],
  ];
  it.each(cases)("%s", (_, image, message) => {
    expect(loaderError(() => loadKernel(image))).toBe(message);
  });

  it("any corruption or truncation of the image loads or fails with a LoaderError, within guest memory", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: KERNEL.length }), fc.array(fc.tuple(fc.nat(0x4000), fc.nat(255)), { maxLength: 8 }), (length, edits) => {
        const image = new Uint8Array(KERNEL.subarray(0, length));
        for (const [at, value] of edits) if (at < image.length) image[at] = value;
        try {
          const k = loadKernel(image);
          expect(k.state.memory.size * 4096).toBeLessThanOrEqual(Number(DEFAULT_MEMORY));
          for (const n of k.state.memory.keys()) expect(n * 4096).toBeLessThan(Number(DEFAULT_MEMORY));
        } catch (e) {
          expect(e).toBeInstanceOf(LoaderError);
          expect((e as Error).message).not.toContain("\n");
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it("parseElf reads the kernel's three PT_LOAD segments, .bss as memsz beyond filesz", () => {
    const elf = parseElf(KERNEL);
    expect(elf.segments.map((s) => s.executable)).toEqual([true, false, false]);
    const data = elf.segments[2]!;
    expect(BigInt(data.bytes.length)).toBeLessThan(data.memsz);
  });
});

describe("the loader description is validated (ringspec-loader/1)", () => {
  it.each([
    [{ format: "ringspec-loader/2" }, 'format: Invalid input: expected "ringspec-loader/1"'],
    [{ format: "ringspec-loader/1", memory: "0x1000" }, "memory: unknown field"],
    [{ format: "ringspec-loader/1", memory_size: "0x1000" }, "memory_size: must be between 0x200000 (2 MiB) and 0x40000000 (1 GiB)"],
    [{ format: "ringspec-loader/1", memory_size: "0x400001" }, "memory_size: must be a multiple of 4 KiB"],
    [{ format: "ringspec-loader/1", memory_size: 4194304 }, "memory_size: Invalid input: expected string, received number"],
    [{ format: "ringspec-loader/1", image: { type: "raw" } }, "image.load_address: Invalid input: expected string, received undefined"],
    [{ format: "ringspec-loader/1", boot_area: "0x1234" }, "boot_area: must be a multiple of 4 KiB"],
    [{ format: "ringspec-loader/1", entry: { regs: { rzz: "0x1" } } }, "entry.regs.rzz: unknown field"],
    [{ format: "ringspec-loader/1", symbols: { "9lives": "0x10" } }, "symbols.9lives: expected a symbol name (letters, digits, _ . $)"],
    [{ format: "ringspec-loader/1", limits: { max_steps: 0 } }, "limits.max_steps: Too small: expected number to be >=1"],
    [{ format: "ringspec-loader/1", context: { kernel_stacks: "many" } }, 'context.kernel_stacks: Invalid option: expected one of "per-task"|"shared"'],
    [{ format: "ringspec-loader/1", context: { kernel_memory: [{ start: "0x2000", end: "0x1000" }] } }, "context.kernel_memory[0]: start must be below end"],
  ])("%j → %s", (value, message) => {
    expect(loaderError(() => parseLoaderDescription(value))).toBe(message);
  });

  it("a task symbol must exist", () => {
    const d = parseLoaderDescription({ format: "ringspec-loader/1", context: { task_symbol: "current_task" } });
    expect(loaderError(() => loadKernel(KERNEL, d))).toBe('context.task_symbol: no symbol "current_task" in the image\'s .symtab or in symbols');
  });

  it("a boot area must fit in memory", () => {
    const d = parseLoaderDescription({ format: "ringspec-loader/1", boot_area: "0x3fc000" });
    expect(loaderError(() => loadKernel(KERNEL, d))).toBe("boot_area: [0x3fc000, 0x404000) lies outside guest memory (memory_size 0x400000)");
  });
});
