// The boot image that takes QEMU or Bochs from the reset vector to a case's exact initial state,
// with no BIOS: 16-bit → flat 32-bit protected mode → SMBASE relocation → MSRs, TPR and a pending
// IRQ → 64-bit mode (for a 64-bit CR2) → optionally an NMI taken so that NMIs stay blocked → SMI
// to self → RSM from the 64-bit save area the image carries, which installs every register and
// hidden segment part verbatim (../../../shared/reference/emulator-harnesses.md has the facts).
//
// The image's last 64 KiB (the "block") is mapped read-only at 0xF0000 and below 4 GiB (QEMU's
// `-bios`, Bochs's `romimage`). With SMBASE = 0xE8000 the SMM entry point (SMBASE + 0x8000) is
// block offset 0 and the save area (SMBASE + 0xFE00) block offset 0x7E00; the CPU's own writes
// there on SMM entry land in ROM and are discarded. The case's memory is either put in by the
// emulator (QEMU's `-device loader`) or carried in front of the block and copied by the 32-bit
// code (Bochs, which has no loader): then the image is larger than 64 KiB and ends at 4 GiB.
import type { ArchState } from "../../contract/state.ts";
import { abs, at, Block, Code, Fields, Image, r, Reg, type EncodedBlock } from "./asm.ts";
import { encodeSaveArea, SAVE_AREA_SIZE } from "./save-area.ts";

export const IMAGE_SIZE = 0x10000;
/** Where the image is visible below 1 MiB (the code runs from this copy). */
export const IMAGE_LOW = 0xf0000;
export const SMBASE = 0xe8000;
export const SAVE_AREA_OFFSET = 0x7e00;
/** SMBASE after reset: its SMM entry (0x38000) and save area (0x3FE00) are in RAM. */
const RESET_SMBASE = 0x30000;
const RELOCATION_HANDLER = RESET_SMBASE + 0x8000;
const RESET_SAVE_AREA = RESET_SMBASE + 0xfe00;
/** RAM the relocation SMI overwrites; restored from copies of the case's bytes. */
const HANDLER_AREA_SIZE = 0x100;
/** Set by the relocation handler so that the 32-bit code knows the SMI was taken. */
const RELOCATION_DONE = RELOCATION_HANDLER + 0xf0;

const APIC = 0xfee00000;
const APIC_TPR = APIC + 0x80;
const APIC_SVR = APIC + 0xf0;
const APIC_IRR = APIC + 0x200;
const APIC_ICR_LOW = APIC + 0x300;
const APIC_LVT_TIMER = APIC + 0x320;
const APIC_TIMER_INITIAL = APIC + 0x380;
const APIC_TIMER_DIVIDE = APIC + 0x3e0;
/** ICR: no shorthand, physical destination APIC ID 0 (ICR high stays 0 from reset: the boot
 *  CPU's ID), level assert, delivery mode SMI or NMI. (The "self" shorthand is architecturally
 *  for fixed interrupts only; Bochs ignores SMI/NMI sent that way.) */
const ICR_SELF_SMI = (1 << 14) | (2 << 8);
const ICR_SELF_NMI = (1 << 14) | (4 << 8);

const MSR_EFER = 0xc0000080;
const MSRS = {
  STAR: 0xc0000081, LSTAR: 0xc0000082, CSTAR: 0xc0000083, FMASK: 0xc0000084, KERNEL_GS_BASE: 0xc0000102,
  SYSENTER_CS: 0x174, SYSENTER_ESP: 0x175, SYSENTER_EIP: 0x176,
} as const;

// Image layout (offsets).
const SMM_HANDLER = 0x0000;
const BOOT16 = 0x0100;
const CODE32 = 0x0400;
const CODE64 = 0x0c00;
const DATA = 0x1400; // GDT, GDTR, IDT, IDTR
const RESTORE_HANDLER_AREA = 0x1800; // copy of the case's RAM at 0x38000
const RELOCATION_CODE = 0x1a00; // the relocation handler, copied to 0x38000
const RESTORE_SAVE_AREA = 0x1c00; // copy of the case's RAM at 0x3FE00
const PAGE_TABLES = 0x8000; // PML4, PDPT, 4 PDs: 2 MiB pages, identity over 4 GiB
const ROM_STACK_TOP = IMAGE_LOW + 0x7000; // pushes into ROM are discarded
const RESET_VECTOR = 0xfff0;

const GDT_CODE32 = 0x08;
const GDT_DATA = 0x10;
const GDT_CODE64 = 0x18;

/** What the image does besides installing the state. */
export interface FirmwareOptions {
  /** External interrupt left pending in the APIC's IRR (vector 16–255). */
  readonly pendingIrq: number | null;
  /** An NMI pending at the first boundary of the case. */
  readonly pendingNmi: boolean;
  /** NMIs blocked at the start of the case (an NMI was delivered and no IRET followed). */
  readonly nmiBlocked: boolean;
  /** "loaded": the emulator loads the case's memory; "rom": the image carries it. */
  readonly memory: "loaded" | "rom";
}

/** Largest image the "rom" form produces (the case's non-zero pages must fit in front of the block). */
export const MAX_IMAGE_SIZE = 4 << 20;

export interface Firmware {
  readonly image: Uint8Array;
  /** Physical address of the image's first byte (it ends at 4 GiB). */
  readonly imageBase: bigint;
  /** Linear (= physical, SMM has no paging) address of the RSM that enters the case. */
  readonly rsmAddress: bigint;
  /** Linear address of the 64-bit loop that waits for the final SMI (it is pending there). */
  readonly smiWaitAddress: bigint;
  /** Instructions the final SMM handler executes, its RSM included. */
  readonly smmInstructions: number;
  /** Every code block, for tests and diagnostics (origin = address the code runs at). */
  readonly blocks: Readonly<Record<"smm" | "boot16" | "code32" | "code64" | "relocation", { bitness: 16 | 32 | 64; offset: number; block: EncodedBlock }>>;
}

function ramCopy(state: ArchState, address: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const a = address + i;
    out[i] = state.memory.get(a >>> 12)?.[a & 0xfff] ?? 0;
  }
  return out;
}

function descriptor(base: number, limit: number, access: number, flags: number): bigint {
  return (
    BigInt(limit & 0xffff) |
    (BigInt(base & 0xffffff) << 16n) |
    (BigInt(access) << 40n) |
    (BigInt((limit >>> 16) & 0xf) << 48n) |
    (BigInt(flags) << 52n) |
    (BigInt((base >>> 24) & 0xff) << 56n)
  );
}

/** Builds the image for one case. The caller checks that `state` is representable (see load.ts). */
export function buildFirmware(state: ArchState, options: FirmwareOptions): Firmware {
  // The case's pages carried in front of the block ("rom"), in runs of contiguous pages.
  const runs = options.memory === "rom" ? pageRuns(state) : [];
  const payloadPages = runs.reduce((n, run) => n + run.pages.length, 0);
  const payloadSize = Math.ceil((payloadPages * 4096) / IMAGE_SIZE) * IMAGE_SIZE;
  const totalSize = payloadSize + IMAGE_SIZE;
  if (totalSize > MAX_IMAGE_SIZE) throw new Error(`the case's memory (${payloadPages} non-zero pages) does not fit in a ${MAX_IMAGE_SIZE >> 20} MiB image`);
  const imageBase = 2 ** 32 - totalSize;
  const full = new Uint8Array(totalSize).fill(0xff);
  let payloadAt = 0;
  const copies: { from: number; to: number; length: number }[] = [];
  for (const run of runs) {
    run.pages.forEach((page, i) => full.set(page, payloadAt + i * 4096));
    copies.push({ from: imageBase + payloadAt, to: run.start * 4096, length: run.pages.length * 4096 });
    payloadAt += run.pages.length * 4096;
  }
  const image = new Image(IMAGE_SIZE, 0xff);

  // --- SMM entry (runs at CS.base = SMBASE, IP = 0x8000, 16-bit, 4 GiB segment limits) -------
  const smm = new Block(16, 0x8000n);
  if (options.pendingNmi) {
    // NMIs are blocked inside SMM: this one stays pending until after RSM.
    smm.i(Code.Mov_rm32_imm32, abs(APIC_ICR_LOW, 32), ICR_SELF_NMI);
  }
  const rsm = smm.here("rsm");
  smm.i(Code.Rsm);
  const smmEncoded = smm.encode();
  const smmInstructions = options.pendingNmi ? 2 : 1;
  image.place(SMM_HANDLER, smmEncoded.bytes, "SMM handler");
  const rsmAddress = BigInt(SMBASE) + smmEncoded.labels.get(rsm)!;

  // --- relocation SMI handler, copied to 0x38000 (CS.base = 0x30000, IP = 0x8000) ---------------
  const relocation = new Block(16, 0x8000n);
  relocation.i(Code.Mov_rm32_imm32, abs(RESET_SAVE_AREA + 0x100, 32), SMBASE);
  relocation.i(Code.Mov_rm8_imm8, abs(RELOCATION_DONE, 32), 1);
  relocation.i(Code.Rsm);
  const relocationEncoded = relocation.encode();
  image.place(RELOCATION_CODE, relocationEncoded.bytes, "relocation handler");
  image.place(RESTORE_HANDLER_AREA, ramCopy(state, RELOCATION_HANDLER, HANDLER_AREA_SIZE), "copy of RAM at 0x38000");
  image.place(RESTORE_SAVE_AREA, ramCopy(state, RESET_SAVE_AREA, SAVE_AREA_SIZE), "copy of RAM at 0x3fe00");

  // --- 16-bit boot (CS.base = 0xFFFF0000, so IP = image offset) ----------------------------------
  const boot16 = new Block(16, BigInt(BOOT16));
  boot16.i(Code.Cli);
  boot16.i(Code.Lgdt_m1632, abs(DATA + GDTR, 16, Reg.CS));
  boot16.i(Code.Mov_r32_cr, r(Reg.EAX), r(Reg.CR0));
  boot16.i(Code.Or_EAX_imm32, r(Reg.EAX), 1);
  boot16.i(Code.Mov_cr_r32, r(Reg.CR0), r(Reg.EAX));
  boot16.i(Code.Jmp_ptr1632, GDT_CODE32, IMAGE_LOW + CODE32);
  const boot16Encoded = boot16.encode();
  image.place(BOOT16, boot16Encoded.bytes, "16-bit boot");
  // The reset vector (IP 0xFFF0): a near jump to BOOT16 in the same segment.
  image.place(RESET_VECTOR, nearJump16(RESET_VECTOR, BOOT16), "reset vector");

  // --- 32-bit protected mode ---------------------------------------------------------------------
  const c32 = new Block(32, BigInt(IMAGE_LOW + CODE32));
  c32.i(Code.Mov_r32_imm32, r(Reg.EAX), GDT_DATA);
  for (const sreg of [Reg.DS, Reg.ES, Reg.SS]) c32.i(Code.Mov_Sreg_r32m16, r(sreg), r(Reg.EAX));
  // The case's memory, when the image carries it.
  for (const c of copies) copy32(c32, c.from, c.to, c.length);
  // SMBASE relocation: the handler into RAM, SMI to self, wait until it ran.
  copy32(c32, IMAGE_LOW + RELOCATION_CODE, RELOCATION_HANDLER, HANDLER_AREA_SIZE);
  c32.i(Code.Mov_rm32_imm32, abs(APIC_ICR_LOW), ICR_SELF_SMI);
  const waitRelocation = c32.here("wait-relocation");
  c32.i(Code.Cmp_rm8_imm8, abs(RELOCATION_DONE), 1);
  c32.i(Code.Jne_rel8_32, waitRelocation);
  // The case's bytes back where the relocation handler and its save area were.
  copy32(c32, IMAGE_LOW + RESTORE_HANDLER_AREA, RELOCATION_HANDLER, HANDLER_AREA_SIZE);
  copy32(c32, IMAGE_LOW + RESTORE_SAVE_AREA, RESET_SAVE_AREA, SAVE_AREA_SIZE);
  // MSRs the save area does not carry (FS_BASE and GS_BASE come with the segments).
  const msrValues: readonly (readonly [number, bigint])[] = [
    [MSRS.STAR, state.star], [MSRS.LSTAR, state.lstar], [MSRS.CSTAR, state.cstar],
    [MSRS.FMASK, state.fmask], [MSRS.KERNEL_GS_BASE, state.kernelGsBase],
    // SYSENTER/SYSEXIT read these (a case that left them out of the install ran SYSENTER with
    // SYSENTER_CS = 0: #GP(0), which the deviation tables showed as QEMU's).
    [MSRS.SYSENTER_CS, state.sysenterCs], [MSRS.SYSENTER_ESP, state.sysenterEsp], [MSRS.SYSENTER_EIP, state.sysenterEip],
  ];
  for (const [msr, value] of msrValues) wrmsr32(c32, msr, value);
  // CR8 is the APIC's task priority.
  c32.i(Code.Mov_rm32_imm32, abs(APIC_TPR), Number(state.cr8 & 15n) << 4);
  if (options.pendingIrq !== null) {
    // A one-shot APIC timer with the vector and a count of 1, then wait (IF = 0) until it is in IRR.
    const v = options.pendingIrq;
    c32.i(Code.Mov_rm32_imm32, abs(APIC_SVR), 0x1ff);
    c32.i(Code.Mov_rm32_imm32, abs(APIC_TIMER_DIVIDE), 0xb);
    c32.i(Code.Mov_rm32_imm32, abs(APIC_LVT_TIMER), v);
    c32.i(Code.Mov_rm32_imm32, abs(APIC_TIMER_INITIAL), 1);
    const waitIrr = c32.here("wait-irr");
    c32.i(Code.Test_rm32_imm32, abs(APIC_IRR + 0x10 * (v >> 5)), (1 << (v & 31)) >>> 0);
    c32.i(Code.Je_rel8_32, waitIrr);
  }
  // Long mode, with the image's page tables (ROM: the CPU's A/D bit writes are discarded).
  c32.i(Code.Mov_r32_imm32, r(Reg.EAX), IMAGE_LOW + PAGE_TABLES);
  c32.i(Code.Mov_cr_r32, r(Reg.CR3), r(Reg.EAX));
  c32.i(Code.Mov_r32_imm32, r(Reg.EAX), CR4_PAE);
  c32.i(Code.Mov_cr_r32, r(Reg.CR4), r(Reg.EAX));
  wrmsr32(c32, MSR_EFER, EFER_LME);
  c32.i(Code.Mov_r32_imm32, r(Reg.EAX), CR0_PE_PG);
  c32.i(Code.Mov_cr_r32, r(Reg.CR0), r(Reg.EAX));
  c32.i(Code.Jmp_ptr1632, GDT_CODE64, IMAGE_LOW + CODE64);
  const c32Encoded = c32.encode();
  image.place(CODE32, c32Encoded.bytes, "32-bit code");

  // --- 64-bit mode -------------------------------------------------------------------------------
  const c64 = new Block(64, BigInt(IMAGE_LOW + CODE64));
  c64.i(Code.Mov_r64_imm64, r(Reg.RAX), state.cr2);
  c64.i(Code.Mov_cr_r64, r(Reg.CR2), r(Reg.RAX));
  // APIC registers through RBX: an absolute disp32 would be sign-extended.
  c64.i(Code.Mov_r32_imm32, r(Reg.EBX), APIC_ICR_LOW);
  const smi = c64.label("smi");
  if (options.nmiBlocked) {
    // Take an NMI into the image's own IDT (its frame goes to ROM and is lost) and never IRET:
    // NMIs stay blocked through the SMI and RSM.
    c64.i(Code.Lidt_m1664, abs(IMAGE_LOW + DATA + IDTR, 32));
    c64.i(Code.Mov_r64_imm64, r(Reg.RSP), BigInt(ROM_STACK_TOP));
    c64.i(Code.Mov_rm32_imm32, at(Reg.RBX), ICR_SELF_NMI);
    const spinNmi = c64.here("wait-nmi");
    c64.i(Code.Jmp_rel8_64, spinNmi);
  }
  c64.bind(smi);
  c64.i(Code.Mov_rm32_imm32, at(Reg.RBX), ICR_SELF_SMI);
  const spinSmi = c64.here("wait-smi");
  const smiWait = spinSmi;
  c64.i(Code.Jmp_rel8_64, spinSmi);
  const c64Encoded = c64.encode();
  image.place(CODE64, c64Encoded.bytes, "64-bit code");

  // --- data: GDT and its pseudo-descriptor, the image's IDT (vector 2 → the SMI code) -------------
  const data = new Uint8Array(0x100);
  const d = new Fields(data);
  d.u64(GDT_CODE32, descriptor(0, 0xfffff, 0x9b, 0xc));
  d.u64(GDT_DATA, descriptor(0, 0xfffff, 0x93, 0xc));
  d.u64(GDT_CODE64, descriptor(0, 0xfffff, 0x9b, 0xa));
  d.u16(GDTR, 0x1f);
  d.u32(GDTR + 2, IMAGE_LOW + DATA);
  const handler = c64Encoded.labels.get(smi)!;
  const gate = IDT + 2 * 16;
  d.u16(gate, Number(handler & 0xffffn));
  d.u16(gate + 2, GDT_CODE64);
  d.u16(gate + 4, 0x8e00); // present, DPL 0, 64-bit interrupt gate
  d.u16(gate + 6, Number((handler >> 16n) & 0xffffn));
  d.u32(gate + 8, Number(handler >> 32n));
  d.u16(IDTR, 3 * 16 - 1);
  d.u64(IDTR + 2, BigInt(IMAGE_LOW + DATA + IDT));
  image.place(DATA, data, "GDT and IDT");

  // --- page tables: 2 MiB pages, identity over the low 4 GiB ------------------------------------
  const tables = new Uint8Array(6 * 0x1000);
  const t = new Fields(tables);
  const tableAddress = (k: number) => BigInt(IMAGE_LOW + PAGE_TABLES + k * 0x1000);
  t.u64(0, tableAddress(1) | 0x23n); // accessed bits preset: QEMU hangs setting them in ROM
  for (let i = 0; i < 4; i++) {
    t.u64(0x1000 + 8 * i, tableAddress(2 + i) | 0x23n);
    for (let j = 0; j < 512; j++) t.u64((2 + i) * 0x1000 + 8 * j, (BigInt(i * 512 + j) << 21n) | 0xe3n);
  }
  image.place(PAGE_TABLES, tables, "page tables");

  image.place(SAVE_AREA_OFFSET, encodeSaveArea(state, SMBASE), "SMM state-save area");
  full.set(image.bytes, payloadSize);

  return {
    image: full,
    imageBase: BigInt(imageBase),
    rsmAddress,
    smiWaitAddress: c64Encoded.labels.get(smiWait)!,
    smmInstructions,
    blocks: {
      smm: { bitness: 16, offset: SMM_HANDLER, block: smmEncoded },
      relocation: { bitness: 16, offset: RELOCATION_CODE, block: relocationEncoded },
      boot16: { bitness: 16, offset: BOOT16, block: boot16Encoded },
      code32: { bitness: 32, offset: CODE32, block: c32Encoded },
      code64: { bitness: 64, offset: CODE64, block: c64Encoded },
    },
  };
}

const GDTR = 0x20;
const IDT = 0x40;
const IDTR = 0x70;
const CR4_PAE = 0x20;
const EFER_LME = 0x100n;
const CR0_PE_PG = 0x80000011; // PE, ET, PG

/** REP MOVSD of `length` bytes (a multiple of 4). */
function copy32(b: Block, from: number, to: number, length: number): void {
  b.i(Code.Mov_r32_imm32, r(Reg.ESI), from);
  b.i(Code.Mov_r32_imm32, r(Reg.EDI), to);
  b.i(Code.Mov_r32_imm32, r(Reg.ECX), length / 4);
  b.repMovsd(32);
}

function wrmsr32(b: Block, msr: number, value: bigint): void {
  b.i(Code.Mov_r32_imm32, r(Reg.ECX), msr);
  b.i(Code.Mov_r32_imm32, r(Reg.EAX), Number(value & 0xffffffffn));
  b.i(Code.Mov_r32_imm32, r(Reg.EDX), Number((value >> 32n) & 0xffffffffn));
  b.i(Code.Wrmsr);
}

/** The state's non-zero pages in runs of consecutive page numbers. */
export function pageRuns(state: ArchState): { start: number; pages: Uint8Array[] }[] {
  const numbers = [...state.memory.keys()].filter((n) => state.memory.get(n)!.some((b) => b !== 0)).sort((a, b) => a - b);
  const runs: { start: number; pages: Uint8Array[] }[] = [];
  for (const n of numbers) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.start + last.pages.length === n) last.pages.push(state.memory.get(n)!);
    else runs.push({ start: n, pages: [state.memory.get(n)!] });
  }
  return runs;
}

function nearJump16(from: number, to: number): Uint8Array {
  const rel = (to - (from + 3)) & 0xffff;
  return Uint8Array.of(0xe9, rel & 0xff, rel >> 8);
}
