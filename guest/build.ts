// From a layout (layout.ts) and code to a machine state both engines load (contract ArchState).
import { DEFAULT_CPU, POWER_UP_REGISTERS, RESET_DEVICES, type ArchState, type Segment } from "../contract/state.ts";
import { GPR_NAMES, type GprName } from "../contract/schema.ts";
import { Code } from "./iced.ts";
import { AssembledImage, assemble } from "./asm.ts";
import { encodeDescriptor, encodeGate, encodeTssDescriptor, segmentFrom, TSS_OFFSETS } from "./descriptors.ts";
import { gdtEntry, type GuestLayout } from "./layout.ts";
import { GuestMemory, littleEndian } from "./memory.ts";
import { buildAddressSpace, translate, type AddressSpace } from "./paging.ts";

/** `hlt; jmp .-1`: a handler or entry point that stops the run (position-independent). */
export const HALT_LOOP: Uint8Array = assemble(0n, (s) => s.label("halt").emit(Code.Hlt).emit(Code.Jmp_rel8_64, "halt")).sections[0]!.bytes;

/** Bytes at an address: linear (through the layout's initial page tables) unless `physical`. */
export interface Placed {
  readonly address: bigint;
  readonly bytes: Uint8Array | readonly number[];
  readonly physical?: boolean;
}

/** Code and data to place: assembled images and bytes at addresses. */
export type GuestCode = AssembledImage | readonly (AssembledImage | Placed)[];

/** Where the machine starts. Defaults: CPL 0 at `code.kernel` with RSP = `stacks.kernel` and
 *  RFLAGS 0x2; CPL 3 at `code.user` with RSP = `stacks.user` and RFLAGS 0x202 (IF = 1). */
export interface StartOptions {
  readonly ring?: 0 | 3;
  /** Compatibility mode: CS is `kernelCode32` / `userCode32`. */
  readonly compat?: boolean;
  readonly rip?: bigint;
  readonly rsp?: bigint;
  readonly rflags?: bigint;
  readonly regs?: Partial<Record<GprName, bigint>>;
  /** Defaults follow the SWAPGS convention: in the kernel GS.base is the per-CPU area and
   *  KERNEL_GS_BASE the user's (0); in user mode the other way round. */
  readonly gsBase?: bigint;
  readonly kernelGsBase?: bigint;
}

export interface BuildOptions {
  readonly code?: GuestCode;
  readonly start?: StartOptions;
}

export interface Guest {
  readonly layout: GuestLayout;
  readonly memory: GuestMemory;
  /** The machine; its memory is `memory.pages` (shared, not copied). */
  readonly state: ArchState;
  /** CR3 of each of `layout.addressSpaces`. */
  readonly addressSpaces: readonly bigint[];
  /** The code's symbol map (empty for raw bytes). */
  readonly symbols: ReadonlyMap<string, bigint>;
}

/**
 * Writes `bytes` at linear address `linear` through the page tables at `cr3` (the layout's
 * addresses are linear: a kernel in the upper half has its tables written where they map to).
 * `walk` translates each page's linear address to a physical one (null: not mapped); the default
 * walks the tables afresh every time. A walk that remembers its answers must forget them all once
 * a write lands in a page-table frame (writeLayout's does), or later writes go where the old
 * tables said.
 */
export function writeLinear(memory: GuestMemory, cr3: bigint, linear: bigint, bytes: Uint8Array | readonly number[], what = "data",
  walk: (at: bigint) => bigint | null = (at) => translate((a) => memory.read64(a), cr3, at).physical): void {
  const data = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  let done = 0;
  while (done < data.length) {
    const at = linear + BigInt(done);
    const physical = walk(at);
    if (physical === null) throw new Error(`${what} at 0x${at.toString(16)}: the linear address is not mapped`);
    const n = Math.min(4096 - Number(at & 0xfffn), data.length - done);
    memory.write(physical, data.subarray(done, done + n));
    done += n;
  }
}

const templates = new WeakMap<GuestLayout, GuestMemory>();

/** Memory holding the layout's page tables, descriptor tables, stubs and per-CPU data (no code):
 *  a fresh copy each call (the layout is written once and kept). */
export function layoutMemory(layout: GuestLayout): GuestMemory {
  let template = templates.get(layout);
  if (template === undefined) templates.set(layout, (template = writeLayout(layout)));
  return GuestMemory.from(template.pages);
}

function writeLayout(layout: GuestLayout): GuestMemory {
  const memory = new GuestMemory();
  for (const space of [layout.paging, ...layout.addressSpaces]) buildAddressSpace(memory, space);
  const cr3 = cr3Of(layout.paging);
  // The walks remembered per linear page (a layout writes ~600 pieces, 256 stubs among them, into
  // a few pages; a walk is four quadword reads): valid while no table changes, so all are
  // forgotten after a write lands in a table frame (none does in a sane layout).
  const tableFrames = new Set([layout.paging, ...layout.addressSpaces].flatMap((space) => space.tables.map((t) => t >> 12n)));
  const walked = new Map<bigint, bigint | null>();
  let stale = false;
  const walk = (at: bigint): bigint | null => {
    if (stale) {
      walked.clear();
      stale = false;
    }
    const page = at >> 12n;
    let physical = walked.get(page);
    if (physical === undefined) walked.set(page, (physical = translate((a) => memory.read64(a), cr3, page << 12n).physical));
    if (physical === null) return null;
    // The caller writes this frame next.
    if (tableFrames.has(physical >> 12n)) stale = true;
    return physical | (at & 0xfffn);
  };
  const put = (linear: bigint, bytes: Uint8Array | readonly number[], what: string) => writeLinear(memory, cr3, linear, bytes, what, walk);
  const q = (v: bigint) => littleEndian(v, 8);
  const { gdt, idt, tss } = layout;
  for (const e of gdt.entries) put(gdt.base + BigInt(e.selector & ~7), q(encodeDescriptor(e.descriptor)), `GDT entry ${e.name}`);
  const [tssLow, tssHigh] = encodeTssDescriptor(tss.base, tss.limit, true);
  put(gdt.base + BigInt(gdt.tssSelector & ~7), [...q(tssLow), ...q(tssHigh)], "the TSS descriptor");
  if (idt.stubs !== null) {
    const stub = new Uint8Array(idt.stubs.stride).fill(idt.stubs.fill);
    stub.set(HALT_LOOP.subarray(0, idt.stubs.stride));
    for (let v = 0; v < idt.gates.length; v++) put(idt.stubs.base + BigInt(idt.stubs.stride * v), stub, `the handler stub of vector ${v}`);
  }
  idt.gates.forEach((g, v) => {
    const [low, high] = encodeGate(g);
    put(idt.base + 16n * BigInt(v), [...q(low), ...q(high)], `IDT gate ${v}`);
  });
  tss.rsp.forEach((rsp, n) => put(tss.base + BigInt(TSS_OFFSETS.rsp(n)), q(rsp), `TSS RSP${n}`));
  tss.ist.forEach((top, i) => put(tss.base + BigInt(TSS_OFFSETS.ist(i + 1)), q(top), `TSS IST${i + 1}`));
  put(tss.base + BigInt(TSS_OFFSETS.ioMapBase), [tss.ioMapBase & 0xff, (tss.ioMapBase >> 8) & 0xff], "the TSS I/O map base");
  for (const pad of layout.haltPads) put(pad, HALT_LOOP, "a halt pad");
  if (layout.percpu !== null) for (const f of layout.percpu.fields) put(layout.percpu.base + BigInt(f.offset), q(f.value), `per-CPU field ${f.name}`);
  return memory;
}

/** CR3 of an address space: its first table frame is the PML4 (paging.ts). */
export function cr3Of(space: AddressSpace): bigint {
  const pml4 = space.tables[0];
  if (pml4 === undefined) throw new Error("an address space needs at least one table frame");
  return pml4;
}

/** Selector 0 with a usable flat hidden part: DS/ES/FS/GS as the vectors start them. */
export const NULL_DATA: Segment = { selector: 0, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
/** LDTR with selector 0 (the vectors' value: no LDT is ever loaded). */
export const NULL_LDTR: Segment = { selector: 0, base: 0n, limit: 0xffff, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 };

/** The segment register loaded from the layout's `role` entry with `rpl`. */
export function segmentOf(layout: GuestLayout, role: string, rpl = 0): Segment {
  const e = gdtEntry(layout, role);
  return segmentFrom((e.selector & ~3) | rpl, e.descriptor);
}

/** The machine state at `start` over `memory` (which must hold the layout: `layoutMemory`). */
export function layoutState(layout: GuestLayout, memory: GuestMemory, start: StartOptions = {}): ArchState {
  const ring = start.ring ?? 0;
  const user = ring === 3;
  const compat = start.compat ?? false;
  const gpr = GPR_NAMES.map((name) => start.regs?.[name] ?? 0n);
  gpr[4] = start.rsp ?? start.regs?.rsp ?? (user ? layout.stacks.user : layout.stacks.kernel);
  const percpu = layout.percpu?.base ?? 0n;
  const { tss } = layout;
  return {
    gpr,
    rip: start.rip ?? (user ? layout.code.user : layout.code.kernel),
    rflags: start.rflags ?? (user ? 0x202n : 0x2n),
    cs: user ? segmentOf(layout, compat ? "userCode32" : "userCode", 3) : segmentOf(layout, compat ? "kernelCode32" : "kernelCode", 0),
    ss: user ? segmentOf(layout, "userData", 3) : segmentOf(layout, "kernelData", 0),
    ds: NULL_DATA, es: NULL_DATA, fs: NULL_DATA,
    gs: { ...NULL_DATA, base: start.gsBase ?? (user ? 0n : percpu) },
    devices: RESET_DEVICES,
    tr: { selector: layout.gdt.tssSelector, base: tss.base, limit: tss.limit, type: 11, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 },
    ldtr: NULL_LDTR,
    gdtr: { base: layout.gdt.base, limit: layout.gdt.limit },
    idtr: { base: layout.idt.base, limit: layout.idt.limit },
    cr0: layout.control.cr0,
    cr2: 0n,
    cr3: cr3Of(layout.paging),
    cr4: layout.control.cr4,
    cr8: 0n,
    efer: layout.msrs.efer,
    star: layout.msrs.star,
    lstar: layout.msrs.lstar,
    cstar: layout.msrs.cstar,
    fmask: layout.msrs.fmask,
    kernelGsBase: start.kernelGsBase ?? (user ? percpu : 0n),
    ...POWER_UP_REGISTERS,
    memory: memory.pages,
    cpu: DEFAULT_CPU,
  };
}

/** Writes `code` into `memory` (linear addresses through the page tables at `cr3`); returns the
 *  images' symbols (a name defined twice is an error). */
export function placeCode(memory: GuestMemory, cr3: bigint, code: GuestCode): ReadonlyMap<string, bigint> {
  const symbols = new Map<string, bigint>();
  for (const c of code instanceof AssembledImage ? [code] : code) {
    if (c instanceof AssembledImage) {
      for (const s of c.sections) writeLinear(memory, cr3, s.origin, s.bytes, `section ${s.name}`);
      for (const [name, address] of c.symbols) {
        if (symbols.has(name)) throw new Error(`symbol ${JSON.stringify(name)} defined by two images`);
        symbols.set(name, address);
      }
    } else if (c.physical === true) memory.write(c.address, c.bytes);
    else writeLinear(memory, cr3, c.address, c.bytes, "code");
  }
  return symbols;
}

/** The layout in memory, the code on top, and the machine at `start`. */
export function buildGuest(layout: GuestLayout, options: BuildOptions = {}): Guest {
  const memory = layoutMemory(layout);
  const symbols = options.code === undefined ? new Map<string, bigint>() : placeCode(memory, cr3Of(layout.paging), options.code);
  return { layout, memory, state: layoutState(layout, memory, options.start), addressSpaces: layout.addressSpaces.map(cr3Of), symbols };
}
