// The guest layout as data: where the GDT, IDT, TSS, page tables, stacks, per-CPU area and entry
// points are, and what they contain. `defineLayout(options)` fills in what the options leave out
// from the shared layout of the project's tests and vectors (conformance/vectors/README.md,
// "Layout shared by these tests"):
//
//   0x1000  PML4 → 0x2000 PDPT → 0x3000 PD: 0–2 MiB supervisor, 2–4 MiB user, 4–6 MiB supervisor
//           (2 MiB pages, identity); 6–8 MiB through the 4 KiB table at 0x4000, nothing present
//   0x8000  GDT: 0x08 kernel CS64, 0x10 kernel SS, 0x18 user CS32, 0x20 user SS, 0x28 user CS64
//           (the order SYSCALL/SYSRET with STAR = 0x0018000800000000 expects), 0x30 TSS (16 bytes),
//           0x40 kernel CS32, 0x48 user data, 0x50 kernel data, 0x58 conforming CS64 DPL 3
//   0x9000  IDT: 256 interrupt gates, DPL 0, no IST, vector v → 0xb000 + 16·v
//   0xa000  TSS: RSP0 0x20000, RSP1 0x1c000, RSP2 0x1e000, IST n 0x21000 + 0x1000·(n−1)
//   0xb000  a `hlt; jmp .-1` stub per vector (int3 padding)
//   0x10000 kernel code; 0x11000 SYSCALL entry (LSTAR), 0x12000 CSTAR entry: `hlt; jmp .-1`
//   0x20000 kernel stack top (RSP0); 0x30000 kernel data and the per-CPU area (KERNEL_GS_BASE):
//           +8 kernel stack top, +0x10 the user RSP while in the kernel
//   0x200000 user code, 0x210000 user stack top, 0x220000 user data
import { FLAT_DESCRIPTORS, interruptGate, type DescriptorFields, type GateFields } from "./descriptors.ts";
import { identity, type AddressSpace, type Mapping } from "./paging.ts";

/** A GDT entry with the role it plays (`kernelCode`, `userData`, ...). */
export interface GdtEntry {
  readonly name: string;
  readonly selector: number;
  readonly descriptor: DescriptorFields;
}

/** Roles the state builder and STAR use; a layout's GDT must name them. */
export const SEGMENT_ROLES = ["kernelCode", "kernelData", "userCode", "userData"] as const;

export interface GuestLayout {
  readonly gdt: {
    readonly base: bigint;
    readonly limit: number;
    readonly entries: readonly GdtEntry[];
    /** Selector of the 16-byte TSS descriptor (built from `tss`; busy, as after LTR). */
    readonly tssSelector: number;
  };
  readonly idt: {
    readonly base: bigint;
    readonly limit: number;
    /** Gate n for vector n (every vector the limit covers). */
    readonly gates: readonly GateFields[];
    /** Where the default handlers live: `hlt; jmp .-1` at base + stride·v, `fill` around it;
     *  null writes none (the gates point wherever they say). */
    readonly stubs: { readonly base: bigint; readonly stride: number; readonly fill: number } | null;
  };
  readonly tss: {
    readonly base: bigint;
    readonly limit: number;
    /** RSP0, RSP1, RSP2. */
    readonly rsp: readonly [bigint, bigint, bigint];
    /** IST1..IST7. */
    readonly ist: readonly bigint[];
    readonly ioMapBase: number;
  };
  /** The initial address space (CR3) and any more (per process, say). */
  readonly paging: AddressSpace;
  readonly addressSpaces: readonly AddressSpace[];
  /** Stack tops. */
  readonly stacks: { readonly kernel: bigint; readonly user: bigint; readonly ist: readonly bigint[] };
  /** Where a CPL 0 / CPL 3 start begins, and data pages for each. */
  readonly code: { readonly kernel: bigint; readonly user: bigint };
  readonly data: { readonly kernel: bigint; readonly user: bigint };
  /** Per-CPU data: KERNEL_GS_BASE in user mode, GS.base in the kernel; named fields with initial
   *  values. null: no per-CPU area (both bases 0). */
  readonly percpu: { readonly base: bigint; readonly fields: readonly PercpuField[] } | null;
  /** `hlt; jmp .-1` written at each address (the SYSCALL entries until code replaces them). */
  readonly haltPads: readonly bigint[];
  readonly msrs: { readonly star: bigint; readonly lstar: bigint; readonly cstar: bigint; readonly fmask: bigint; readonly efer: bigint };
  readonly control: { readonly cr0: bigint; readonly cr4: bigint };
}

export interface PercpuField {
  readonly name: string;
  readonly offset: number;
  readonly value: bigint;
}

/** What users vary; everything else comes from the shared layout. Arrays replace, objects merge. */
export interface LayoutOptions {
  readonly gdt?: { readonly base?: bigint; readonly limit?: number; readonly entries?: readonly GdtEntry[]; readonly tssSelector?: number };
  readonly idt?: {
    readonly base?: bigint;
    /** Gates (16 bytes each) the IDT limit covers; default 256. */
    readonly vectors?: number;
    readonly stubs?: { readonly base: bigint; readonly stride: number; readonly fill: number } | null;
    /** Handler of vector v when `gates` names none (default: the stub). */
    readonly handler?: (vector: number) => bigint;
    /** Vectors whose gate has DPL 3 (reachable with INT n from user mode). */
    readonly userVectors?: readonly number[];
    /** IST index per vector (e.g. { 2: 1, 8: 2 }: NMI on IST1, #DF on IST2). */
    readonly ist?: Readonly<Record<number, number>>;
    /** Anything else about a gate, per vector (type 15 for a trap gate, a handler, a bad field). */
    readonly gates?: Readonly<Record<number, Partial<GateFields>>>;
  };
  readonly tss?: { readonly base?: bigint; readonly limit?: number; readonly rsp0?: bigint; readonly rsp?: readonly [bigint, bigint, bigint]; readonly ist?: readonly bigint[]; readonly ioMapBase?: number };
  readonly paging?: Partial<AddressSpace>;
  /** Mappings added to the default ones (the initial address space). */
  readonly extraMappings?: readonly Mapping[];
  readonly addressSpaces?: readonly AddressSpace[];
  readonly stacks?: { readonly kernel?: bigint; readonly user?: bigint; readonly ist?: readonly bigint[] };
  readonly code?: { readonly kernel?: bigint; readonly user?: bigint };
  readonly data?: { readonly kernel?: bigint; readonly user?: bigint };
  readonly percpu?: { readonly base?: bigint; readonly fields?: readonly PercpuField[] } | null;
  readonly haltPads?: readonly bigint[];
  /** STAR defaults to the GDT's SYSCALL/SYSRET selectors (checked to be in the order SYSRET needs). */
  readonly msrs?: { readonly star?: bigint; readonly lstar?: bigint; readonly cstar?: bigint; readonly fmask?: bigint; readonly efer?: bigint };
  readonly control?: { readonly cr0?: bigint; readonly cr4?: bigint };
}

const MiB = 0x10_0000n;

/** The shared layout's GDT. */
export const DEFAULT_GDT: readonly GdtEntry[] = [
  { name: "kernelCode", selector: 0x08, descriptor: FLAT_DESCRIPTORS.code64(0) },
  { name: "kernelData", selector: 0x10, descriptor: FLAT_DESCRIPTORS.data(0) },
  { name: "userCode32", selector: 0x18, descriptor: FLAT_DESCRIPTORS.code32(3) },
  { name: "userData", selector: 0x20, descriptor: FLAT_DESCRIPTORS.data(3) },
  { name: "userCode", selector: 0x28, descriptor: FLAT_DESCRIPTORS.code64(3) },
  // 0x30–0x3f: the TSS descriptor.
  { name: "kernelCode32", selector: 0x40, descriptor: FLAT_DESCRIPTORS.code32(0) },
  { name: "userData2", selector: 0x48, descriptor: FLAT_DESCRIPTORS.data(3) },
  { name: "kernelData2", selector: 0x50, descriptor: FLAT_DESCRIPTORS.data(0) },
  { name: "conformingCode", selector: 0x58, descriptor: FLAT_DESCRIPTORS.conforming64(3) },
];

/** The shared layout's mappings: 0–6 MiB identity in 2 MiB pages (2–4 MiB user), and a 4 KiB
 *  page table for 6–8 MiB with nothing present (tests and benchmarks fill it in). */
export const DEFAULT_MAPPINGS: readonly Mapping[] = [
  identity(0n, 2n * MiB, "2M", false),
  identity(2n * MiB, 2n * MiB, "2M", true),
  identity(4n * MiB, 2n * MiB, "2M", false),
  { ...identity(6n * MiB, 2n * MiB, "4K", true), present: false },
];

const pages = (from: bigint, count: number): bigint[] => Array.from({ length: count }, (_, i) => from + 0x1000n * BigInt(i));

/** The full layout from `options` over the shared layout's values. */
export function defineLayout(options: LayoutOptions = {}): GuestLayout {
  const stacks = {
    kernel: options.stacks?.kernel ?? 0x20000n,
    user: options.stacks?.user ?? 0x210000n,
    ist: options.stacks?.ist ?? pages(0x21000n, 7),
  };
  const gdtEntries = options.gdt?.entries ?? DEFAULT_GDT;
  const tssSelector = options.gdt?.tssSelector ?? 0x30;
  const gdt = {
    base: options.gdt?.base ?? 0x8000n,
    limit: options.gdt?.limit ?? Math.max(tssSelector + 15, ...gdtEntries.map((e) => (e.selector & ~7) + 7)),
    entries: gdtEntries,
    tssSelector,
  };
  const kernelCode = selectorIn(gdt.entries, "kernelCode");
  const stubs = options.idt?.stubs === undefined ? { base: 0xb000n, stride: 16, fill: 0xcc } : options.idt.stubs;
  const handler = options.idt?.handler ?? ((v: number) => {
    if (stubs === null) throw new Error("idt: no stubs and no handler for the gates");
    return stubs.base + BigInt(stubs.stride * v);
  });
  const vectors = options.idt?.vectors ?? 256;
  const userVectors = new Set(options.idt?.userVectors ?? []);
  const gates = Array.from({ length: vectors }, (_, v): GateFields => ({
    ...interruptGate(handler(v), kernelCode),
    dpl: userVectors.has(v) ? 3 : 0,
    ist: options.idt?.ist?.[v] ?? 0,
    ...options.idt?.gates?.[v],
  }));
  const msrs = {
    star: options.msrs?.star ?? starFor(gdt.entries),
    lstar: options.msrs?.lstar ?? 0x11000n,
    cstar: options.msrs?.cstar ?? 0x12000n,
    fmask: options.msrs?.fmask ?? 0x200n,
    efer: options.msrs?.efer ?? 0xd01n,
  };
  const percpuBase = options.percpu === null ? null : options.percpu?.base ?? 0x30000n;
  return {
    gdt,
    idt: { base: options.idt?.base ?? 0x9000n, limit: vectors === 0 ? 0 : 16 * vectors - 1, gates, stubs },
    tss: {
      base: options.tss?.base ?? 0xa000n,
      limit: options.tss?.limit ?? 0x67,
      rsp: options.tss?.rsp ?? [options.tss?.rsp0 ?? stacks.kernel, 0x1c000n, 0x1e000n],
      ist: options.tss?.ist ?? stacks.ist,
      ioMapBase: options.tss?.ioMapBase ?? 0x68,
    },
    paging: {
      tables: options.paging?.tables ?? pages(0x1000n, 7),
      mappings: [...(options.paging?.mappings ?? DEFAULT_MAPPINGS), ...(options.extraMappings ?? [])],
    },
    addressSpaces: options.addressSpaces ?? [],
    stacks,
    code: { kernel: options.code?.kernel ?? 0x10000n, user: options.code?.user ?? 0x200000n },
    data: { kernel: options.data?.kernel ?? 0x30000n, user: options.data?.user ?? 0x220000n },
    percpu: percpuBase === null ? null : {
      base: percpuBase,
      fields: options.percpu?.fields ?? [
        { name: "kernelStack", offset: 8, value: stacks.kernel },
        { name: "userRsp", offset: 0x10, value: 0n },
      ],
    },
    haltPads: options.haltPads ?? [msrs.lstar, msrs.cstar],
    msrs,
    control: { cr0: options.control?.cr0 ?? 0x80050033n, cr4: options.control?.cr4 ?? 0x620n },
  };
}

/** The shared layout. */
export const DEFAULT_LAYOUT: GuestLayout = defineLayout();

/** The GDT entry playing `role`. */
export function gdtEntry(layout: GuestLayout | readonly GdtEntry[], role: string): GdtEntry {
  const entries = "gdt" in layout ? layout.gdt.entries : layout;
  const e = entries.find((x) => x.name === role);
  if (e === undefined) throw new Error(`the GDT has no ${role} entry (it has ${entries.map((x) => x.name).join(", ")})`);
  return e;
}

function selectorIn(entries: readonly GdtEntry[], role: string): number {
  return gdtEntry(entries, role).selector;
}

/** The selector of `role` with `rpl`. */
export function selector(layout: GuestLayout, role: string, rpl = 0): number {
  return (gdtEntry(layout, role).selector & ~3) | rpl;
}

/**
 * STAR for a GDT: SYSCALL loads CS from STAR[47:32] and SS = that + 8; SYSRET to 64-bit code
 * loads CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8 (SDM Vol. 2B SYSCALL, SYSRET). Throws when
 * the GDT's kernel and user entries are not in that order.
 */
export function starFor(entries: readonly GdtEntry[]): bigint {
  const kernelCode = selectorIn(entries, "kernelCode");
  const sysretBase = selectorIn(entries, "userData") - 8;
  const problems: string[] = [];
  if (selectorIn(entries, "kernelData") !== kernelCode + 8) problems.push("kernelData must follow kernelCode");
  if (selectorIn(entries, "userCode") !== sysretBase + 16) problems.push("userCode must follow userData");
  const code32 = entries.find((e) => e.name === "userCode32");
  if (code32 !== undefined && code32.selector !== sysretBase) problems.push("userCode32 must precede userData");
  if (problems.length > 0) throw new Error(`GDT not in SYSCALL/SYSRET order: ${problems.join("; ")} (or give msrs.star)`);
  return (BigInt(sysretBase) << 48n) | (BigInt(kernelCode) << 32n);
}

/** The offset of a per-CPU field, for GS-relative operands in kernel code. */
export function percpuOffset(layout: GuestLayout, name: string): bigint {
  const f = layout.percpu?.fields.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no per-CPU field ${name}`);
  return BigInt(f.offset);
}
