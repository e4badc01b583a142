// The architectural state both engines load and report, independent of how either stores it.
// spec/ keeps it immutable with persistent memory; impl/ copies it into typed arrays.
import { DEBUG_REGISTER_RESET, GPR_NAMES, MSR_POWER_UP, type StateParsed, type StateJsonIn } from "./schema.ts";
import { bytesToHex, hex, hexDecoder } from "./hex.ts";
import { WRITE_REGION_BYTES } from "./limits.ts";

/** A segment register: the visible selector and the hidden (cached descriptor) part. */
export interface Segment {
  readonly selector: number;
  readonly base: bigint;
  readonly limit: number;
  /** 4-bit descriptor type. */
  readonly type: number;
  /** Descriptor-type bit: 1 = code/data, 0 = system. */
  readonly s: number;
  readonly dpl: number;
  readonly present: number;
  /** D/B bit. */
  readonly db: number;
  /** 64-bit code bit. */
  readonly l: number;
  readonly g: number;
  readonly avl: number;
  /** "Segment unusable" flag of the hidden part (e.g. after loading a null selector). */
  readonly unusable: number;
}

export interface TableRegister {
  readonly base: bigint;
  readonly limit: number;
}

export type InterruptShadow = "none" | "sti" | "movss";

/** Run-time state between instruction boundaries (the format's `initial.cpu` block). */
export interface CpuRunState {
  /** Vector of a pending external interrupt (one at a time; the latest wins), or null. */
  readonly pendingIrq: number | null;
  /** A latched NMI waiting to be delivered. */
  readonly pendingNmi: boolean;
  /** NMI blocking: set by NMI delivery, cleared by the next IRET. */
  readonly nmiBlocked: boolean;
  /** Interrupt shadow after STI (0→1) or MOV SS / POP SS, for the next boundary only. */
  readonly shadow: InterruptShadow;
  /** Executed HLT and waiting for an event. */
  readonly halted: boolean;
  /** Shut down on a triple fault: nothing wakes it. */
  readonly shutdown: boolean;
  /** A single-step #DB trap is due at this boundary (the previous instruction ran with TF = 1). */
  readonly pendingDebugTrap: boolean;
}

/**
 * The deterministic timer of docs/devices.md (ports 0xE0 PERIOD, 0xE4 VECTOR, 0xEC EOI): it makes
 * `vector` pending every `period` completed instructions, then waits for an EOI.
 */
export interface TimerState {
  /** Completed instructions from the EOI (or the PERIOD write) to the tick; 0 = off. 32 bits. */
  readonly period: number;
  /** The vector a tick makes pending (8 bits; reset 0x20). */
  readonly vector: number;
  /** Completed instructions still to go; 1..period while the timer is counting, else 0. */
  readonly countdown: number;
  /** A tick was raised and the kernel has not written TIMER_EOI yet. */
  readonly waitingEoi: boolean;
}

/** The machine's devices (docs/devices.md). The console (0xE9) is output, not state. */
export interface DeviceState {
  readonly timer: TimerState;
  /** The value written to DEBUG_EXIT (0xF4): once set the machine has stopped; null before. */
  readonly exitValue: number | null;
}

/** The devices' I/O ports (docs/devices.md, Port map): both engines and kernel/devices use these. */
export const DEVICE_PORT = {
  timerPeriod: 0xe0,
  timerVector: 0xe4,
  debugcon: 0xe9,
  timerEoi: 0xec,
  debugExit: 0xf4,
} as const;

export const RESET_TIMER: TimerState = { period: 0, vector: 0x20, countdown: 0, waitingEoi: false };
export const RESET_DEVICES: DeviceState = { timer: RESET_TIMER, exitValue: null };

/** The timer counts completed instructions when it has a period and no tick waits for its EOI. */
export function timerCounting(timer: TimerState): boolean {
  return timer.period !== 0 && !timer.waitingEoi;
}

export const SEGMENT_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr"] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];
export const PAGE_SIZE = 4096;

/**
 * The whole machine. `gpr` is indexed by the SDM register number (0 RAX, 1 RCX, 2 RDX, 3 RBX,
 * 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8–15 R8–R15). `memory` maps a physical page number (address >> 12)
 * to its 4 KiB contents; absent pages read as zero.
 */
export interface ArchState {
  readonly gpr: readonly bigint[];
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly cs: Segment;
  readonly ds: Segment;
  readonly es: Segment;
  readonly fs: Segment;
  readonly gs: Segment;
  readonly ss: Segment;
  readonly tr: Segment;
  readonly ldtr: Segment;
  readonly gdtr: TableRegister;
  readonly idtr: TableRegister;
  readonly cr0: bigint;
  readonly cr2: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly cr8: bigint;
  readonly efer: bigint;
  readonly star: bigint;
  readonly lstar: bigint;
  readonly cstar: bigint;
  /** IA32_FMASK (the format calls it SFMASK). */
  readonly fmask: bigint;
  readonly kernelGsBase: bigint;
  /** IA32_SYSENTER_CS (bits 31:0), IA32_SYSENTER_ESP, IA32_SYSENTER_EIP (MSRs 174H–176H). */
  readonly sysenterCs: bigint;
  readonly sysenterEsp: bigint;
  readonly sysenterEip: bigint;
  /** IA32_APIC_BASE (MSR 1BH), as RDMSR reads it; the model has no local APIC to reprogram. */
  readonly apicBase: bigint;
  /** Debug registers DR0–DR3 (breakpoint addresses), DR6 (status) and DR7 (control); DR4 and
   *  DR5 are DR6 and DR7 under another name (CR4.DE = 0) or #UD (CR4.DE = 1). */
  readonly dr0: bigint;
  readonly dr1: bigint;
  readonly dr2: bigint;
  readonly dr3: bigint;
  readonly dr6: bigint;
  readonly dr7: bigint;
  readonly memory: ReadonlyMap<number, Uint8Array>;
  readonly cpu: CpuRunState;
  /** The devices' state (docs/devices.md): part of the machine, so a saved state reloads exactly. */
  readonly devices: DeviceState;
}

/** The registers a state file may leave out, at their power-up / reset values (contract/schema.ts
 *  MSR_POWER_UP and DEBUG_REGISTER_RESET): for code that builds an ArchState by hand. */
export const POWER_UP_REGISTERS: Pick<ArchState, "sysenterCs" | "sysenterEsp" | "sysenterEip" | "apicBase" | "dr0" | "dr1" | "dr2" | "dr3" | "dr6" | "dr7"> = {
  sysenterCs: MSR_POWER_UP.SYSENTER_CS,
  sysenterEsp: MSR_POWER_UP.SYSENTER_ESP,
  sysenterEip: MSR_POWER_UP.SYSENTER_EIP,
  apicBase: MSR_POWER_UP.APIC_BASE,
  ...DEBUG_REGISTER_RESET,
};

export const DEFAULT_CPU: CpuRunState = {
  pendingIrq: null,
  pendingNmi: false,
  nmiBlocked: false,
  shadow: "none",
  halted: false,
  shutdown: false,
  pendingDebugTrap: false,
};

/** A validated hex field (contract/schema.ts Hex64Text) as a number: Number reads the "0x" form. */
const hexNumber = (text: string): number => Number(text);

function segmentFromJson(j: StateParsed["sregs"]["cs"]): Segment {
  return {
    selector: hexNumber(j.selector), base: BigInt(j.base), limit: hexNumber(j.limit), type: j.type, s: j.s,
    dpl: j.dpl, present: j.present, db: j.db, l: j.l, g: j.g, avl: j.avl, unusable: j.unusable,
  };
}

export function segmentToJson(s: Segment) {
  return {
    selector: hex(s.selector), base: hex(s.base), limit: hex(s.limit), type: s.type,
    present: s.present, dpl: s.dpl, db: s.db, s: s.s, l: s.l, g: s.g, avl: s.avl,
    unusable: s.unusable,
  };
}

/** Where pagesFromRegions takes each new page from: a zeroed PAGE_SIZE-byte view, never handed
 *  out twice. */
export type PageSource = () => Uint8Array;

/** A PageSource that carves pages out of zeroed buffers of `slabBytes` (a multiple of PAGE_SIZE),
 *  one after another, for states loaded one after another (contract/load.ts: every vector of a
 *  `vectors check`): one allocation every slabBytes / PAGE_SIZE pages instead of one a state,
 *  which was about half of building the states of the 1,265 bench vectors (a buffer of its own a
 *  state is zeroed by the allocator and touched twice; a large one comes zeroed from the kernel).
 *  A slab lives while any page cut from it is held: at most one slab's worth of pages is held
 *  beyond the states alive. */
export function pageSlab(slabBytes: number): PageSource {
  let slab = new Uint8Array(0);
  let used = 0;
  return () => {
    if (used === slab.length) {
      slab = new Uint8Array(slabBytes);
      used = 0;
    }
    return slab.subarray(used, (used += PAGE_SIZE));
  };
}

/** The pages the regions touch, counted, from one zeroed buffer of exactly that many: pages of
 *  one state are views into a buffer of their own (one allocation a state instead of one a page). */
function oneBufferFor(regions: readonly { gpa: bigint | string; bytes: string }[]): PageSource {
  const touched = new Set<number>();
  for (const region of regions) {
    const length = region.bytes.length >> 1;
    if (length === 0) continue;
    const { page, offset } = pageAndOffset(region.gpa);
    const spanned = Math.floor((offset + length - 1) / PAGE_SIZE) + 1;
    for (let k = 0; k < spanned; k++) touched.add(page + k);
  }
  return pageSlab(Math.max(1, touched.size) * PAGE_SIZE);
}

/** A region's first page number and its offset there, as Numbers: page numbers are below 2^53 (a
 *  64-bit address has 52 bits of page). Text of up to 13 hex digits (below 2^52) is read exactly
 *  by Number; longer text (leading zeros, addresses above) by BigInt. */
function pageAndOffset(gpa: bigint | string): { page: number; offset: number } {
  if (typeof gpa === "string" && gpa.length <= 15) {
    const address = Number(gpa);
    const offset = address % PAGE_SIZE;
    return { page: (address - offset) / PAGE_SIZE, offset };
  }
  const value = typeof gpa === "bigint" ? gpa : BigInt(gpa);
  return { page: Number(value >> 12n), offset: Number(value & 0xfffn) };
}

/** Applies `memory` regions in order onto zeroed 4 KiB pages. Whole guest memories come through
 *  here (engine-protocol states, every vector). Each page is taken from `takePage` when a region
 *  first touches it (by default one buffer for the call's pages: oneBufferFor); the hex digits
 *  are decoded straight into the pages (contract/hex.ts hexDecoder: one for the call). A file's address is
 *  validated hex text (contract/schema.ts Hex64Text). */
export function pagesFromRegions(
  regions: readonly { gpa: bigint | string; bytes: string }[],
  takePage: PageSource = oneBufferFor(regions),
): Map<number, Uint8Array> {
  const pages = new Map<number, Uint8Array>();
  const decode = hexDecoder();
  for (let i = 0; i < regions.length; i++) {
    const region = regions[i]!;
    const text = region.bytes;
    const length = text.length >> 1;
    if (length === 0) continue;
    let { page: pageNumber, offset } = pageAndOffset(region.gpa);
    for (let done = 0; done < length; pageNumber++, offset = 0) {
      let page = pages.get(pageNumber);
      if (page === undefined) pages.set(pageNumber, (page = takePage()));
      const count = Math.min(PAGE_SIZE - offset, length - done);
      decode(text, done, count, page, offset);
      done += count;
    }
  }
  return pages;
}

/**
 * Memory as the entries a state file writes, in address order: runs of contiguous non-zero pages
 * within one WRITE_REGION_BYTES-aligned window, without the zero bytes before a run's first and
 * after its last non-zero byte, and split where two neighbouring pages meet in at least
 * SPLIT_ZEROS zero bytes. So there is at most one entry per non-zero page (the entry cap holds
 * whatever the memory), no entry is longer than WRITE_REGION_BYTES, and the text stays
 * proportional to what is not zero: a guest that writes one byte to each of many pages gets
 * one-byte entries. One entry at a time (a generator): a writer holds one entry's hex digits,
 * never the whole memory's.
 */
export function* memoryRegions(pages: ReadonlyMap<number, Uint8Array>): Generator<{ gpa: bigint; bytes: Uint8Array }> {
  const numbers = [...pages.keys()].filter((n) => !isZeroPage(pages.get(n)!)).sort((a, b) => a - b);
  const pagesPerWindow = WRITE_REGION_BYTES / PAGE_SIZE;
  let i = 0;
  while (i < numbers.length) {
    // One entry: pages i .. i+count-1.
    const start = numbers[i]!;
    const window = Math.floor(start / pagesPerWindow);
    let count = 1;
    for (;;) {
      const next = start + count;
      if (i + count >= numbers.length || numbers[i + count] !== next || Math.floor(next / pagesPerWindow) !== window) break;
      const gap = PAGE_SIZE - 1 - lastNonZero(pages.get(next - 1)!) + firstNonZero(pages.get(next)!);
      if (gap >= SPLIT_ZEROS) break;
      count++;
    }
    const from = firstNonZero(pages.get(start)!);
    const to = (count - 1) * PAGE_SIZE + lastNonZero(pages.get(start + count - 1)!) + 1;
    const joined = new Uint8Array(to - from);
    for (let k = 0; k < count; k++) {
      const page = pages.get(start + k)!;
      const at = k * PAGE_SIZE - from;
      joined.set(page.subarray(Math.max(0, -at), Math.min(PAGE_SIZE, to - k * PAGE_SIZE)), Math.max(0, at));
    }
    yield { gpa: BigInt(start) * BigInt(PAGE_SIZE) + BigInt(from), bytes: joined };
    i += count;
  }
}

/** Zero bytes where two neighbouring pages meet from which the writer starts a new entry. */
const SPLIT_ZEROS = 64;

function firstNonZero(page: Uint8Array): number {
  let k = 0;
  while (page[k] === 0) k++;
  return k;
}

function lastNonZero(page: Uint8Array): number {
  let k = page.length - 1;
  while (page[k] === 0) k--;
  return k;
}

function isZeroPage(page: Uint8Array): boolean {
  if (page.byteOffset % 4 === 0 && page.length % 4 === 0) {
    const words = new Int32Array(page.buffer, page.byteOffset, page.length >> 2);
    for (let k = 0; k < words.length; k++) if (words[k] !== 0) return false;
    return true;
  }
  for (let k = 0; k < page.length; k++) if (page[k] !== 0) return false;
  return true;
}

/** memoryRegions as the `memory` array of the JSON form (hex strings). */
export function regionsFromPages(pages: ReadonlyMap<number, Uint8Array>): { gpa: string; bytes: string }[] {
  return Array.from(memoryRegions(pages), (r) => ({ gpa: hex(r.gpa), bytes: bytesToHex(r.bytes) }));
}

/** From a validated `initial` block to an ArchState: the hex fields' text becomes numbers here;
 *  the pages are taken from `takePage` (pagesFromRegions). */
export function stateFromJson(j: StateParsed, takePage?: PageSource): ArchState {
  const r = j.regs;
  const sr = j.sregs;
  const m = j.msrs;
  const cpu = j.cpu;
  return {
    gpr: [
      BigInt(r.rax), BigInt(r.rcx), BigInt(r.rdx), BigInt(r.rbx), BigInt(r.rsp), BigInt(r.rbp), BigInt(r.rsi), BigInt(r.rdi),
      BigInt(r.r8), BigInt(r.r9), BigInt(r.r10), BigInt(r.r11), BigInt(r.r12), BigInt(r.r13), BigInt(r.r14), BigInt(r.r15),
    ],
    rip: BigInt(r.rip),
    rflags: BigInt(r.rflags),
    cs: segmentFromJson(sr.cs),
    ds: segmentFromJson(sr.ds),
    es: segmentFromJson(sr.es),
    fs: segmentFromJson(sr.fs),
    gs: segmentFromJson(sr.gs),
    ss: segmentFromJson(sr.ss),
    tr: segmentFromJson(sr.tr),
    ldtr: segmentFromJson(sr.ldt),
    gdtr: { base: BigInt(sr.gdt.base), limit: hexNumber(sr.gdt.limit) },
    idtr: { base: BigInt(sr.idt.base), limit: hexNumber(sr.idt.limit) },
    cr0: BigInt(sr.cr0),
    cr2: BigInt(sr.cr2),
    cr3: BigInt(sr.cr3),
    cr4: BigInt(sr.cr4),
    cr8: BigInt(sr.cr8),
    efer: BigInt(sr.efer),
    star: BigInt(m.STAR),
    lstar: BigInt(m.LSTAR),
    cstar: BigInt(m.CSTAR),
    fmask: BigInt(m.SFMASK),
    kernelGsBase: BigInt(m.KERNEL_GS_BASE),
    sysenterCs: BigInt(m.SYSENTER_CS),
    sysenterEsp: BigInt(m.SYSENTER_ESP),
    sysenterEip: BigInt(m.SYSENTER_EIP),
    apicBase: BigInt(m.APIC_BASE),
    dr0: BigInt(sr.dr0),
    dr1: BigInt(sr.dr1),
    dr2: BigInt(sr.dr2),
    dr3: BigInt(sr.dr3),
    dr6: BigInt(sr.dr6),
    dr7: BigInt(sr.dr7),
    memory: pagesFromRegions(j.memory, takePage),
    cpu:
      cpu === undefined
        ? DEFAULT_CPU
        : {
            pendingIrq: cpu.pending_irq,
            pendingNmi: cpu.pending_nmi,
            nmiBlocked: cpu.nmi_blocked,
            shadow: cpu.shadow,
            halted: cpu.halted,
            shutdown: cpu.shutdown,
            pendingDebugTrap: cpu.pending_debug_trap,
          },
    devices: devicesFromJson(j.devices),
  };
}

function devicesFromJson(d: StateParsed["devices"]): DeviceState {
  if (d === undefined) return RESET_DEVICES;
  const t = d.timer;
  return { timer: { period: t.period, vector: t.vector, countdown: t.countdown, waitingEoi: t.waiting_eoi }, exitValue: d.exit_value };
}

/** The `devices` block as a state file writes it. */
export function devicesToJson(d: DeviceState) {
  const t = d.timer;
  return { timer: { period: t.period, vector: t.vector, countdown: t.countdown, waiting_eoi: t.waitingEoi }, exit_value: d.exitValue };
}

/** To the JSON `initial` shape (with the `cpu` and `devices` blocks, so a mid-run state reloads
 *  exactly). */
export function stateToJson(s: ArchState): StateJsonIn & { cpu: NonNullable<StateJsonIn["cpu"]>; devices: NonNullable<StateJsonIn["devices"]> } {
  return stateJsonWith(s, regionsFromPages(s.memory));
}

/** The JSON form with `memory` given (contract/write-state.ts streams the memory itself). */
export function stateJsonWith<M>(s: ArchState, memory: M) {
  const regs = Object.fromEntries(GPR_NAMES.map((name, i) => [name, hex(s.gpr[i]!)])) as Record<
    (typeof GPR_NAMES)[number],
    string
  >;
  return {
    regs: { ...regs, rip: hex(s.rip), rflags: hex(s.rflags) },
    sregs: {
      cs: segmentToJson(s.cs), ds: segmentToJson(s.ds), es: segmentToJson(s.es),
      fs: segmentToJson(s.fs), gs: segmentToJson(s.gs), ss: segmentToJson(s.ss),
      tr: segmentToJson(s.tr), ldt: segmentToJson(s.ldtr),
      gdt: { base: hex(s.gdtr.base), limit: hex(s.gdtr.limit) },
      idt: { base: hex(s.idtr.base), limit: hex(s.idtr.limit) },
      cr0: hex(s.cr0), cr2: hex(s.cr2), cr3: hex(s.cr3), cr4: hex(s.cr4), cr8: hex(s.cr8),
      efer: hex(s.efer),
      dr0: hex(s.dr0), dr1: hex(s.dr1), dr2: hex(s.dr2), dr3: hex(s.dr3), dr6: hex(s.dr6), dr7: hex(s.dr7),
    },
    msrs: {
      STAR: hex(s.star), LSTAR: hex(s.lstar), CSTAR: hex(s.cstar), SFMASK: hex(s.fmask),
      KERNEL_GS_BASE: hex(s.kernelGsBase), FS_BASE: hex(s.fs.base), GS_BASE: hex(s.gs.base),
      SYSENTER_CS: hex(s.sysenterCs), SYSENTER_ESP: hex(s.sysenterEsp), SYSENTER_EIP: hex(s.sysenterEip),
      APIC_BASE: hex(s.apicBase),
    },
    memory,
    cpu: {
      pending_irq: s.cpu.pendingIrq,
      pending_nmi: s.cpu.pendingNmi,
      nmi_blocked: s.cpu.nmiBlocked,
      shadow: s.cpu.shadow,
      halted: s.cpu.halted,
      shutdown: s.cpu.shutdown,
      pending_debug_trap: s.cpu.pendingDebugTrap,
    },
    devices: devicesToJson(s.devices),
  };
}
