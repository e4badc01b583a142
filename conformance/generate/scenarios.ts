// Scenario families for lockstep testing of the *transitions* (IRET, event delivery, SYSCALL/SYSRET,
// segment loads and far returns, paging, MSRs/CRs) with unusual inputs. A scenario is plain data
// (fast-check shrinks it field by field); `buildScenario` applies it to the guest kit's shared
// layout (guest/layout.ts): GDT at 0x8000, IDT at 0x9000 with `hlt` handlers at 0xb000 + 16·v, TSS
// at 0xa000, kernel code 0x10000, user code 0x200000. The arbitraries name some of its addresses
// as constants (so a seed keeps giving the same cases). Instructions are encoded with iced-x86
// (never hand-assembled).
import fc from "fast-check";
import {
  DEFAULT_LAYOUT, HALT_LOOP, TSS_OFFSETS, buildGuest, cr3Of, encodeDescriptor, encodeGate, encodeOne, iced, layoutMemory, segmentFrom, translate,
  type DescriptorFields, type GateFields as GateDescriptor, type GuestLayout, type GuestMemory,
} from "../../guest/index.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState, CpuRunState, Segment } from "../../contract/state.ts";

const { Code: C, Register: R } = iced;

// ------------------------------------------------------------------------------------------------
// The data
// ------------------------------------------------------------------------------------------------

/** One instruction: an opcode name from `OPS` and its parameters. */
export interface Insn {
  readonly op: string;
  readonly imm?: number;
}

export interface Poke {
  readonly address: bigint;
  readonly size: 1 | 2 | 4 | 8;
  readonly value: bigint;
}

export type SegName = "ds" | "es" | "fs" | "gs" | "ss" | "cs";

export interface Scenario {
  readonly family: string;
  readonly profile: ProfileName;
  /** Start at CPL 0 (kernel code 0x10000, RSP 0x20000) or CPL 3 (user code 0x200000). */
  readonly ring: 0 | 3;
  /** Start in compatibility mode (CS = kernel CS32 0x40 or user CS32 0x1b). */
  readonly compat: boolean;
  readonly rflags: bigint;
  readonly rsp: bigint;
  /** General registers by SDM number (RSP excluded: `rsp`). */
  readonly regs: readonly (readonly [number, bigint])[];
  /** Code at the start RIP (encoded for the starting mode), then HLT. */
  readonly code: readonly Insn[];
  /** Memory stores applied after the layout (physical = linear in low memory). */
  readonly pokes: readonly Poke[];
  /** Segment registers loaded (hidden part built from a GDT selector and its descriptor fields). */
  readonly segments: readonly (readonly [SegName, Segment])[];
  readonly set: {
    readonly cr0?: bigint;
    readonly cr4?: bigint;
    readonly cr8?: bigint;
    readonly efer?: bigint;
    readonly star?: bigint;
    readonly lstar?: bigint;
    readonly cstar?: bigint;
    readonly fmask?: bigint;
    readonly kernelGsBase?: bigint;
    readonly trLimit?: number;
    readonly idtrLimit?: number;
    readonly cr3Low?: bigint;
    readonly sysenterCs?: bigint;
    readonly sysenterEsp?: bigint;
    readonly sysenterEip?: bigint;
    readonly dr6?: bigint;
    readonly dr7?: bigint;
  };
  readonly cpu: Partial<Pick<CpuRunState, "pendingIrq" | "pendingNmi" | "nmiBlocked" | "shadow">>;
}

// ------------------------------------------------------------------------------------------------
// Encoding
// ------------------------------------------------------------------------------------------------

type Build = (insn: Insn, bits: 32 | 64) => InstanceType<typeof iced.Instruction>;
/** MOV DR operands by `imm` % 8: DR4 and DR5 last (aliases with CR4.DE = 0, #UD with DE = 1). */
const DEBUG_REGISTERS = [R.DR0, R.DR1, R.DR2, R.DR3, R.DR6, R.DR7, R.DR4, R.DR5];
const ax = (bits: 32 | 64) => (bits === 64 ? R.RAX : R.EAX);
const bx = (bits: 32 | 64) => (bits === 64 ? R.RBX : R.EBX);
const at = (base: number) => new iced.MemoryOperand(base, R.None, 1, 0n, 0, false, R.None);
const bare = (code: number): Build => () => iced.Instruction.create(code);
const by = (c64: number, c32: number): Build => (_, bits) => iced.Instruction.create(bits === 64 ? c64 : c32);

/** The opcodes scenarios use. Register conventions: RAX = selector / value, RBX = address,
 *  RCX/RDX as RDMSR/WRMSR expect. */
export const OPS: Readonly<Record<string, Build>> = {
  iretq: bare(C.Iretq),
  iretd: bare(C.Iretd),
  iretw: bare(C.Iretw),
  lretq: bare(C.Retfq),
  lretd: bare(C.Retfd),
  lretw: bare(C.Retfw),
  lretqImm: (i) => iced.Instruction.createU32(C.Retfq_imm16, (i.imm ?? 0) & 0xffff),
  syscall: bare(C.Syscall),
  sysretq: bare(C.Sysretq),
  sysretd: bare(C.Sysretd),
  swapgs: bare(C.Swapgs),
  int: (i) => iced.Instruction.createU32(C.Int_imm8, (i.imm ?? 0) & 0xff),
  int3: bare(C.Int3),
  int1: bare(C.Int1),
  ud2: bare(C.Ud2),
  hlt: bare(C.Hlt),
  nop: bare(C.Nopd),
  cli: bare(C.Cli),
  sti: bare(C.Sti),
  pushf: by(C.Pushfq, C.Pushfd),
  popf: by(C.Popfq, C.Popfd),
  rdmsr: bare(C.Rdmsr),
  wrmsr: bare(C.Wrmsr),
  movToCr: (i, bits) => iced.Instruction.createRegReg(bits === 64 ? C.Mov_cr_r64 : C.Mov_cr_r32, [R.CR0, R.CR2, R.CR3, R.CR4, R.CR8][(i.imm ?? 0) % 5]!, ax(bits)),
  movFromCr: (i, bits) => iced.Instruction.createRegReg(bits === 64 ? C.Mov_r64_cr : C.Mov_r32_cr, ax(bits), [R.CR0, R.CR2, R.CR3, R.CR4, R.CR8][(i.imm ?? 0) % 5]!),
  movSreg: (i) => iced.Instruction.createRegReg(C.Mov_Sreg_r32m16, [R.ES, R.SS, R.DS, R.FS, R.GS][(i.imm ?? 0) % 5]!, R.EAX),
  popFs: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Popq_FS : C.Popd_FS, R.FS),
  popGs: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Popq_GS : C.Popd_GS, R.GS),
  pushRax: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Push_r64 : C.Push_r32, ax(bits)),
  popRcx: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Pop_r64 : C.Pop_r32, bits === 64 ? R.RCX : R.ECX),
  load: (_, bits) => iced.Instruction.createRegMem(bits === 64 ? C.Mov_r64_rm64 : C.Mov_r32_rm32, ax(bits), at(bx(bits))),
  store: (_, bits) => iced.Instruction.createMemReg(bits === 64 ? C.Mov_rm64_r64 : C.Mov_rm32_r32, at(bx(bits)), ax(bits)),
  inc: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Inc_rm64 : C.Inc_rm32, at(bx(bits))),
  callRbx: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Call_rm64 : C.Call_rm32, bx(bits)),
  jmpRbx: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Jmp_rm64 : C.Jmp_rm32, bx(bits)),
  stac: bare(C.Stac),
  clac: bare(C.Clac),
  // ---- issue 9: the system instructions (register operand RAX, memory operand [RBX]) ----
  sldt: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Sldt_r64m16 : C.Sldt_r32m16, ax(bits)),
  sldtMem: (_, bits) => iced.Instruction.createMem(C.Sldt_r32m16, at(bx(bits))),
  str: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Str_r64m16 : C.Str_r32m16, ax(bits)),
  strMem: (_, bits) => iced.Instruction.createMem(C.Str_r32m16, at(bx(bits))),
  lldt: () => iced.Instruction.createReg(C.Lldt_r32m16, R.EAX),
  ltr: () => iced.Instruction.createReg(C.Ltr_r32m16, R.EAX),
  verr: () => iced.Instruction.createReg(C.Verr_r32m16, R.EAX),
  verwMem: (_, bits) => iced.Instruction.createMem(C.Verw_r32m16, at(bx(bits))),
  smsw: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Smsw_r64m16 : C.Smsw_r32m16, ax(bits)),
  smswMem: (_, bits) => iced.Instruction.createMem(C.Smsw_r32m16, at(bx(bits))),
  lmsw: () => iced.Instruction.createReg(C.Lmsw_r32m16, R.EAX),
  movToDr: (i, bits) => iced.Instruction.createRegReg(bits === 64 ? C.Mov_dr_r64 : C.Mov_dr_r32, DEBUG_REGISTERS[(i.imm ?? 0) % 8]!, ax(bits)),
  movFromDr: (i, bits) => iced.Instruction.createRegReg(bits === 64 ? C.Mov_r64_dr : C.Mov_r32_dr, ax(bits), DEBUG_REGISTERS[(i.imm ?? 0) % 8]!),
  rdpmc: bare(C.Rdpmc),
  rdtsc: bare(C.Rdtsc),
  rdtscp: bare(C.Rdtscp),
  xgetbv: bare(C.Xgetbv),
  xsetbv: bare(C.Xsetbv),
  invd: bare(C.Invd),
  wbinvd: bare(C.Wbinvd),
  wbnoinvd: bare(C.Wbnoinvd),
  clts: bare(C.Clts),
  invlpg: (_, bits) => iced.Instruction.createMem(C.Invlpg_m, at(bx(bits))),
  invpcid: (_, bits) => iced.Instruction.createRegMem(bits === 64 ? C.Invpcid_r64_m128 : C.Invpcid_r32_m128, ax(bits), at(bx(bits))),
  rdfsbase: () => iced.Instruction.createReg(C.Rdfsbase_r64, R.RAX),
  rdgsbase: () => iced.Instruction.createReg(C.Rdgsbase_r32, R.EAX),
  wrfsbase: () => iced.Instruction.createReg(C.Wrfsbase_r64, R.RAX),
  wrgsbase: () => iced.Instruction.createReg(C.Wrgsbase_r64, R.RAX),
  sysenter: bare(C.Sysenter),
  sysexitq: bare(C.Sysexitq),
  sysexitd: bare(C.Sysexitd),
  lgdt: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Lgdt_m1664 : C.Lgdt_m1632, at(bx(bits))),
  sgdt: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Sgdt_m1664 : C.Sgdt_m1632, at(bx(bits))),
  jmpFar: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Jmp_m1664 : C.Jmp_m1632, at(bx(bits))),
  pushRbx: (_, bits) => iced.Instruction.createReg(bits === 64 ? C.Push_r64 : C.Push_r32, bx(bits)),
  ret: (_, bits) => iced.Instruction.create(bits === 64 ? C.Retnq : C.Retnd),
  loadEbp: (_, bits) => iced.Instruction.createRegMem(bits === 64 ? C.Mov_r64_rm64 : C.Mov_r32_rm32, ax(bits), new iced.MemoryOperand(bits === 64 ? R.RBP : R.EBP, R.None, 1, 0n, 1, false, R.None)),
  loadEs: (_, bits) => iced.Instruction.createRegMem(bits === 64 ? C.Mov_r64_rm64 : C.Mov_r32_rm32, ax(bits), new iced.MemoryOperand(bx(bits), R.None, 1, 0n, 0, false, R.ES)),
  storeFs: (_, bits) => iced.Instruction.createMemReg(bits === 64 ? C.Mov_rm64_r64 : C.Mov_rm32_r32, new iced.MemoryOperand(bx(bits), R.None, 1, 0n, 0, false, R.FS), ax(bits)),
  loadCs: (_, bits) => iced.Instruction.createRegMem(bits === 64 ? C.Mov_r64_rm64 : C.Mov_r32_rm32, ax(bits), new iced.MemoryOperand(bx(bits), R.None, 1, 0n, 0, false, R.CS)),
  // From main (conform's generator reach): system instructions that end a case or fault.
  sysexit: by(C.Sysexitq, C.Sysexitd),
  lidt: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Lidt_m1664 : C.Lidt_m1632, at(bx(bits))),
  sidt: (_, bits) => iced.Instruction.createMem(bits === 64 ? C.Sidt_m1664 : C.Sidt_m1632, at(bx(bits))),
  /** MOV to CR1/CR9 (reserved: #UD). */
  movToBadCr: (i) => iced.Instruction.createRegReg(C.Mov_cr_r64, (i.imm ?? 0) % 2 === 0 ? R.CR1 : R.CR9, R.RAX),
  into: bare(C.Into),
};

/** Encodes `code` then HLT. An instruction iced cannot encode for 32-bit code (IRETQ, SWAPGS,
 *  SYSRETQ, ...) is placed as its 64-bit bytes: compatibility mode then decodes what those bytes
 *  mean there (a REX byte is INC/DEC, SWAPGS is #UD), which is exactly the corner to test. */
export function encode(code: readonly Insn[], rip: bigint, bits: 32 | 64): Uint8Array {
  const out: number[] = [];
  for (const insn of [...code, { op: "hlt" }]) {
    // INTO (CE) is invalid in 64-bit mode and iced will not encode it there: its byte, for the #UD.
    if (insn.op === "into" && bits === 64) {
      out.push(0xce);
      continue;
    }
    let bytes: Uint8Array | undefined;
    for (const b of bits === 64 ? [64 as const] : [32 as const, 64 as const]) {
      const i = OPS[insn.op]!(insn, b);
      try {
        bytes = encodeOne(i, rip + BigInt(out.length), b);
        break;
      } catch (e) {
        if (b === 64) throw e;
      } finally {
        i.free();
      }
    }
    out.push(...bytes!);
  }
  return Uint8Array.from(out);
}

// ------------------------------------------------------------------------------------------------
// Descriptors
// ------------------------------------------------------------------------------------------------

export type { DescriptorFields };

/** The 8-byte segment descriptor. */
export const descriptor = encodeDescriptor;
export { segmentFrom };

/** The layout's GDT, by index (6–7 is the TSS). */
export const GDT: Readonly<Record<number, DescriptorFields>> = Object.fromEntries(DEFAULT_LAYOUT.gdt.entries.map((e) => [e.selector >> 3, e.descriptor]));

const GDT_BASE = DEFAULT_LAYOUT.gdt.base;
const IDT_BASE = DEFAULT_LAYOUT.idt.base;
const TSS_BASE = DEFAULT_LAYOUT.tss.base;
const handler = (v: number): bigint => DEFAULT_LAYOUT.idt.gates[v]!.offset;

export function gateBytes(g: GateFields): readonly Poke[] {
  const gate: GateDescriptor = { offset: g.offset, selector: g.selector, ist: g.istByte, type: g.type, s: g.s, dpl: g.dpl, p: g.p, reserved: g.reserved };
  const [low, high] = encodeGate(gate);
  const address = IDT_BASE + 16n * BigInt(g.vector);
  return [{ address, size: 8, value: low }, { address: address + 8n, size: 8, value: high }];
}

export interface GateFields {
  readonly vector: number;
  readonly type: number;
  readonly s: number;
  readonly dpl: number;
  readonly p: number;
  /** Byte 4: IST in bits 2:0, bits 7:3 reserved. */
  readonly istByte: number;
  readonly selector: number;
  readonly offset: bigint;
  readonly reserved: number;
}

// ------------------------------------------------------------------------------------------------
// Building the machine
// ------------------------------------------------------------------------------------------------

/** A store into guest memory: in place within a page (the paging family stores 1,000 entries). */
function poke(memory: GuestMemory, p: Poke): void {
  const offset = Number(p.address & 0xfffn);
  if (offset + p.size > 4096) return memory.writeValue(p.address, p.size, p.value);
  const page = memory.page(Number(p.address >> 12n));
  const view = new DataView(page.buffer, page.byteOffset, 4096);
  const v = BigInt.asUintN(p.size * 8, p.value);
  if (p.size === 8) view.setBigUint64(offset, v, true);
  else if (p.size === 4) view.setUint32(offset, Number(v), true);
  else if (p.size === 2) view.setUint16(offset, Number(v), true);
  else view.setUint8(offset, Number(v));
}

/** The machine a scenario describes: the layout's start state for its ring and mode, with the
 *  scenario's registers, memory stores, segments, MSRs and run-time state applied. */
export function buildScenario(s: Scenario, layout: GuestLayout = DEFAULT_LAYOUT): ArchState {
  const guest = buildGuest(layout, { start: { ring: s.ring, compat: s.compat, rflags: s.rflags, rsp: s.rsp } });
  const base = guest.state;
  const memory: GuestMemory = guest.memory;
  // Landing pads: a HLT at user code and one spare kernel HLT.
  memory.write(layout.code.user, HALT_LOOP);
  memory.write(layout.code.kernel + 0x800n, HALT_LOOP);
  for (const p of s.pokes) poke(memory, p);
  memory.write(base.rip, encode(s.code, base.rip, s.compat ? 32 : 64));
  const gpr = [...base.gpr];
  for (const [n, v] of s.regs) if (n !== 4) gpr[n] = BigInt.asUintN(64, v);
  const state: ArchState = {
    ...base,
    gpr,
    cr0: s.set.cr0 ?? base.cr0,
    cr4: s.set.cr4 ?? base.cr4,
    cr8: s.set.cr8 ?? base.cr8,
    efer: s.set.efer ?? base.efer,
    star: s.set.star ?? base.star,
    lstar: s.set.lstar ?? base.lstar,
    cstar: s.set.cstar ?? base.cstar,
    fmask: s.set.fmask ?? base.fmask,
    kernelGsBase: s.set.kernelGsBase ?? base.kernelGsBase,
    cr3: base.cr3 | (s.set.cr3Low ?? 0n),
    sysenterCs: s.set.sysenterCs ?? base.sysenterCs,
    sysenterEsp: s.set.sysenterEsp ?? base.sysenterEsp,
    sysenterEip: s.set.sysenterEip ?? base.sysenterEip,
    dr6: s.set.dr6 ?? base.dr6,
    dr7: s.set.dr7 ?? base.dr7,
    tr: s.set.trLimit === undefined ? base.tr : { ...base.tr, limit: s.set.trLimit },
    idtr: s.set.idtrLimit === undefined ? base.idtr : { ...base.idtr, limit: s.set.idtrLimit },
    cpu: { ...base.cpu, ...s.cpu },
  };
  const segs: Partial<Record<SegName, Segment>> = {};
  for (const [name, seg] of s.segments) segs[name] = seg;
  return { ...state, ...segs };
}

// ------------------------------------------------------------------------------------------------
// Arbitraries
// ------------------------------------------------------------------------------------------------

const bit = (n: number, on: boolean): bigint => (on ? 1n << BigInt(n) : 0n);
/** `arb` in about `percent`% of the cases, else null (the layout's value is kept). */
const sometimes = <T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary: arb });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const profile = fc.constantFrom<ProfileName>("intel", "amd");

/** A selector: mostly the layout's entries, some out of the GDT limit (0x5f), RPL and TI random. */
export const selectorArb = fc
  .record({
    index: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 2, 3, 4, 5, 8, 9, 10, 11) }, { weight: 2, arbitrary: fc.constantFrom(0, 6, 7, 12, 0x1f, 0x1ff) }),
    ti: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
    rpl: fc.nat(3),
  })
  .map((x) => (x.index << 3) | (x.ti << 2) | x.rpl);

/** An RFLAGS image with any of the interesting bits (for IRET frames, POPF, R11). */
export const flagsImageArb = fc
  .record({
    arith: fc.nat(0xff),
    tf: fc.boolean(), intf: fc.boolean(), df: fc.boolean(), iopl: fc.nat(3), nt: fc.boolean(), rf: fc.boolean(),
    vm: fc.boolean(), ac: fc.boolean(), vif: fc.boolean(), vip: fc.boolean(), id: fc.boolean(),
    reserved: fc.oneof({ weight: 8, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(1n << 3n, 1n << 15n, 1n << 22n, 1n << 40n, 0x2n) }),
  })
  .map((f) =>
    BigInt(f.arith & 0xd5) | 2n | bit(8, f.tf) | bit(9, f.intf) | bit(10, f.df) | (BigInt(f.iopl) << 12n) | bit(14, f.nt) | bit(16, f.rf) |
    bit(17, f.vm) | bit(18, f.ac) | bit(19, f.vif) | bit(20, f.vip) | bit(21, f.id) | f.reserved);

/** The starting RFLAGS: mostly plain, sometimes IOPL/AC/TF/NT/RF set (never VM: out of scope). */
export const startFlagsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0x2n, 0x202n, 0x246n) },
  { weight: 2, arbitrary: flagsImageArb.map((f) => BigInt.asUintN(22, f) & ~(1n << 17n) & ~0x8028n) },
);

/** Linear addresses: mapped kernel/user, unmapped, non-canonical, random. */
export const addressArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0x200000n, 0x10800n, 0xb030n, 0x11000n, 0x12000n) },
  { weight: 2, arbitrary: fc.constantFrom(0x7fff_ffff_fff0n, 0x8000_0000_0000n, 0xffff_8000_0000_0000n, 0xffff_7fff_ffff_f000n, 0x1_0000_0000n, 0x800000n, 0xffff_ffff_ffff_fff0n, 0x0000_7fff_ffff_ffffn) },
  { weight: 1, arbitrary: u64 },
);

/** Stack pointers: the layout's stacks (aligned or not), unmapped, user pages, non-canonical. */
export const stackArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0x20000n, 0x1ff00n, 0x1fff8n, 0x1fff3n, 0x210000n, 0x20fff0n) },
  { weight: 2, arbitrary: fc.constantFrom(0x600010n, 0x5ffff8n, 0x8000_0000_0000n, 0xffff_8000_0000_0000n, 0x1000n, 0x7fff_ffff_fff8n, 0n, 0x24n) },
  { weight: 1, arbitrary: u64 },
);

const descriptorArb: fc.Arbitrary<DescriptorFields> = fc.record({
  type: fc.nat(15), s: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  dpl: fc.nat(3), p: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  avl: fc.nat(1), l: fc.nat(1), db: fc.nat(1), g: fc.nat(1),
  limit: fc.constantFrom(0xfffff, 0xfffff, 0x0, 0x10, 0xffff), base: fc.constantFrom(0, 0, 0x1000, 0x80000000),
});

/** One GDT descriptor overwritten (indices 1..11; 6/7 are the TSS halves). */
const gdtPatchArb = fc.record({ index: fc.integer({ min: 1, max: 11 }), d: descriptorArb });
const gdtPokes = (patches: readonly { index: number; d: DescriptorFields }[]): Poke[] =>
  patches.map((p) => ({ address: GDT_BASE + 8n * BigInt(p.index), size: 8, value: descriptor(p.d) }));

/** DS/ES/FS/GS loaded from one of the layout's descriptors (or NULL) before the transition. */
const dataSegsArb = fc.array(
  fc.record({ reg: fc.constantFrom<SegName>("ds", "es", "fs", "gs"), index: fc.constantFrom(0, 1, 2, 3, 4, 5, 8, 9, 10, 11), rpl: fc.nat(3), base: fc.constantFrom(0n, 0x7000_0000n, 0xffff_8000_1234_0000n) }),
  { maxLength: 4 },
);
function dataSegments(list: readonly { reg: SegName; index: number; rpl: number; base: bigint }[]): [SegName, Segment][] {
  return list.map((x) => {
    const d = GDT[x.index];
    const seg: Segment = d === undefined
      ? { selector: x.rpl, base: x.base, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 }
      : { ...segmentFrom((x.index << 3) | x.rpl, d), base: x.reg === "fs" || x.reg === "gs" ? x.base : 0n };
    return [x.reg, seg];
  });
}

const stackPokes = (rsp: bigint, slots: readonly bigint[], size: 2 | 4 | 8): Poke[] =>
  rsp < 0x600000n - BigInt(slots.length * size) ? slots.map((value, i) => ({ address: rsp + BigInt(i * size), size, value: BigInt.asUintN(size * 8, value) })) : [];

const ringArb = (kernelWeight: number) => fc.oneof({ weight: kernelWeight, arbitrary: fc.constant<0 | 3>(0) }, { weight: 1, arbitrary: fc.constant<0 | 3>(3) });
const compatArb = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const defaultRsp = (ring: 0 | 3) => (ring === 0 ? 0x1ff00n : 0x20ff00n);

// Family 1: IRET frames -----------------------------------------------------------------------------

export const iretScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(5), compat: compatArb,
    op: fc.constantFrom("iretq", "iretq", "iretd", "iretw"),
    rip: addressArb, cs: selectorArb, flags: flagsImageArb, rsp: stackArb, ss: selectorArb,
    rflags: startFlagsArb, at: fc.oneof({ weight: 5, arbitrary: fc.constant<bigint | null>(null) }, { weight: 1, arbitrary: stackArb }),
    gdt: fc.array(gdtPatchArb, { maxLength: 2 }), segs: dataSegsArb, nmiBlocked: fc.boolean(),
    // A frame IRET accepts (to the same level or to user mode), in a good share of the cases:
    // random selectors alone almost always fault before the return completes.
    valid: sometimes(fc.record({ user: fc.boolean(), nullSs: fc.boolean() }), 40),
  })
  .map((x) => {
    const rsp = x.at ?? defaultRsp(x.ring);
    const size = x.op === "iretq" ? 8 : x.op === "iretd" ? 4 : 2;
    const toUser = x.valid !== null && (x.valid.user || x.ring === 3);
    const cs = x.valid === null ? x.cs : toUser ? 0x2b : 0x08;
    const ss = x.valid === null ? x.ss : toUser ? 0x23 : x.valid.nullSs ? 0 : 0x10;
    const rip = x.valid === null ? x.rip : toUser ? 0x200000n : 0x10800n;
    return {
      family: "iret", profile: x.profile, ring: x.ring, compat: x.compat, rflags: x.rflags, rsp, regs: [],
      code: [{ op: x.op }],
      pokes: [...stackPokes(rsp, [rip, BigInt(cs), x.flags, x.rsp, BigInt(ss)], size), ...gdtPokes(x.compat ? [] : x.gdt)],
      segments: x.compat ? [] : dataSegments(x.segs), set: {}, cpu: { nmiBlocked: x.nmiBlocked },
    };
  });

// Family 2: delivery ------------------------------------------------------------------------------

const TRIGGERS = ["int", "int3", "int1", "ud2", "pf", "irq", "nmi", "gp"] as const;
type Trigger = (typeof TRIGGERS)[number];

const gateArb = fc.record({
  type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(14, 15) }, { weight: 1, arbitrary: fc.nat(15) }),
  s: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
  dpl: fc.nat(3),
  p: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  istByte: fc.oneof({ weight: 6, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(255) }),
  selector: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x08, 0x08, 0x58) }, { weight: 2, arbitrary: selectorArb }),
  offset: fc.oneof({ weight: 4, arbitrary: fc.constant<bigint | null>(null) }, { weight: 2, arbitrary: addressArb }),
  reserved: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer() }),
});

function triggerVector(t: Trigger, n: number): number {
  switch (t) {
    case "int": case "irq": return n;
    case "int3": return 3;
    case "int1": return 1;
    case "ud2": return 6;
    case "pf": return 14;
    case "nmi": return 2;
    case "gp": return 13;
  }
}

export const deliveryScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(2), compat: compatArb,
    trigger: fc.constantFrom(...TRIGGERS), n: fc.constantFrom(3, 8, 13, 14, 32, 0x80, 0xff, 1, 2, 6, 17, 0x31),
    gate: sometimes(gateArb, 70),
    other: sometimes(fc.record({ vector: fc.constantFrom(8, 8, 13, 14, 12, 10, 11), gate: gateArb }), 25),
    rsp0: sometimes(stackArb, 30), istn: fc.nat({ max: 7 }), ist: sometimes(stackArb, 30),
    trLimit: sometimes(fc.constantFrom(0x67, 0x0b, 0x23, 0x24, 0x2b, 0x5b, 0x5c, 0x0), 15),
    idtrLimit: sometimes(fc.constantFrom(0xfff, 0x5f, 0x8f, 0x8e, 0x0, 0xe7, 0x1f, 0x800, 0x807), 15),
    rsp: sometimes(stackArb, 30), rflags: startFlagsArb, cr8: fc.constantFrom(0n, 0n, 2n, 15n),
    gdt: fc.array(gdtPatchArb, { maxLength: 1 }), nmiBlocked: fc.boolean(), shadow: fc.constantFrom<"none" | "sti" | "movss">("none", "none", "sti", "movss"),
  })
  .map((x) => {
    const vector = triggerVector(x.trigger, x.n);
    const pokes: Poke[] = [];
    if (x.gate !== null) pokes.push(...gateBytes({ ...x.gate, vector, offset: x.gate.offset ?? handler(vector) }));
    if (x.other !== null) pokes.push(...gateBytes({ ...x.other.gate, vector: x.other.vector, offset: x.other.gate.offset ?? handler(x.other.vector) }));
    if (x.rsp0 !== null) pokes.push({ address: TSS_BASE + BigInt(TSS_OFFSETS.rsp(0)), size: 8, value: x.rsp0 });
    if (x.ist !== null && x.istn > 0) pokes.push({ address: TSS_BASE + BigInt(TSS_OFFSETS.ist(x.istn)), size: 8, value: x.ist });
    pokes.push(...gdtPokes(x.gdt));
    const code: Insn[] =
      x.trigger === "int" ? [{ op: "int", imm: x.n }] : x.trigger === "int3" ? [{ op: "int3" }] : x.trigger === "int1" ? [{ op: "int1" }] :
      x.trigger === "ud2" ? [{ op: "ud2" }] : x.trigger === "pf" ? [{ op: "load" }] : x.trigger === "gp" ? [{ op: "wrmsr" }] : [{ op: "nop" }, { op: "nop" }];
    return {
      family: "delivery", profile: x.profile, ring: x.ring, compat: x.compat,
      rflags: x.trigger === "irq" ? x.rflags | 0x200n : x.rflags,
      rsp: x.rsp ?? defaultRsp(x.ring),
      regs: [[3, 0x800000n], [1, 0xdeadn]],
      code, pokes, segments: [],
      set: { cr8: x.cr8, ...(x.trLimit === null ? {} : { trLimit: x.trLimit }), ...(x.idtrLimit === null ? {} : { idtrLimit: x.idtrLimit }) },
      cpu: { nmiBlocked: x.nmiBlocked, shadow: x.shadow, pendingIrq: x.trigger === "irq" ? x.n : null, pendingNmi: x.trigger === "nmi" },
    };
  });

// Family 3: SYSCALL / SYSRET ----------------------------------------------------------------------

export const syscallScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(1), compat: compatArb,
    ops: fc.array(fc.constantFrom("syscall", "syscall", "sysretq", "sysretq", "sysretd", "swapgs", "pushf"), { minLength: 1, maxLength: 3 }),
    sysretBase: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x18, 0x1b, 0x13) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    syscallCs: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x08, 0x0b, 0x0a) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    starLow: fc.constantFrom(0, 0x12345678),
    lstar: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x11000n, 0x200000n) }, { weight: 1, arbitrary: addressArb }),
    cstar: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x12000n) }, { weight: 1, arbitrary: addressArb }),
    fmask: fc.oneof({ weight: 2, arbitrary: fc.constantFrom(0x200n, 0x47700n, 0x0n, 0x3ffffn) }, { weight: 1, arbitrary: fc.nat(0xffffffff).map(BigInt) }),
    sce: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    nxe: fc.boolean(),
    rcx: addressArb, r11: flagsImageArb, rflags: startFlagsArb,
    ss: fc.constantFrom("normal", "normal", "null", "nullRpl"), nmiBlocked: fc.boolean(),
    irq: sometimes(fc.constantFrom(32, 0x80, 0xff), 20),
  })
  .map((x) => {
    const star = (BigInt(x.sysretBase) << 48n) | (BigInt(x.syscallCs) << 32n) | BigInt(x.starLow);
    const segments: [SegName, Segment][] = x.ss === "normal" ? [] : [["ss", { selector: x.ss === "null" ? 0 : 3, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 }]];
    return {
      family: "syscall", profile: x.profile, ring: x.ring, compat: x.compat, rflags: x.rflags, rsp: defaultRsp(x.ring),
      regs: [[1, x.rcx], [11, x.r11]], code: x.ops.map((op) => ({ op })), pokes: [],
      // Not in compatibility mode: there a NULL SS makes every stack access fault on segmentation,
      // which spec/ does not model yet (see COMPAT_SEGMENTATION below).
      segments: x.ring === 0 && !x.compat ? segments : [],
      set: { star, lstar: x.lstar, cstar: x.cstar, fmask: x.fmask, efer: 0x500n | (x.sce ? 1n : 0n) | (x.nxe ? 0x800n : 0n) },
      cpu: { nmiBlocked: x.nmiBlocked, pendingIrq: x.irq },
    };
  });

// Family 4: segment loads, far returns and far jumps -----------------------------------------------

/** Where far JMP finds its pointer (kernel data; the user data page for CPL 3 would do as well). */
const FAR_POINTER = 0x220100n;

export const segmentScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(2), compat: compatArb,
    op: fc.constantFrom("movSreg", "movSreg", "popFs", "popGs", "lretq", "lretq", "lretd", "lretw", "lretqImm", "jmpFar", "jmpFar"),
    sreg: fc.nat(4), selector: selectorArb, imm: fc.constantFrom(0, 8, 0x10, 0xfff8),
    rip: addressArb, cs: selectorArb, rsp: stackArb, ss: selectorArb,
    gdt: fc.array(gdtPatchArb, { maxLength: 2 }), segs: dataSegsArb, rflags: startFlagsArb, follow: fc.boolean(),
    // A far-return frame the CPU accepts (to user mode, or to the same level), in a share of the
    // cases: random selectors almost never form one, and the outer return's own rules (RSP and SS
    // loaded, data segments made NULL) are reached only through one.
    valid: sometimes(fc.record({ user: fc.boolean(), rsp: fc.constantFrom(0x210000n, 0x20fff0n, 0x20fff3n) }), 25),
    // Otherwise, sometimes the target CS is the first patched descriptor, made a code segment of
    // the current level: its present, L/D and conforming checks (random selectors rarely name it).
    aim: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  })
  .map((x) => {
    const rsp = defaultRsp(x.ring);
    const lret = x.op.startsWith("lret");
    const size = x.op === "lretd" ? 4 : x.op === "lretw" ? 2 : 8;
    const first = x.gdt[0];
    const aimed = x.aim && first !== undefined && !x.compat;
    const gdt = aimed ? [{ index: first.index, d: { ...first.d, s: 1, type: 8 | (first.d.type & 7), dpl: x.ring } }, ...x.gdt.slice(1)] : x.gdt;
    const cs = aimed ? (first.index << 3) | x.ring : x.cs;
    const toUser = x.valid !== null && (x.valid.user || x.ring === 3);
    const frame = x.valid === null ? { rip: x.rip, cs, rsp: x.rsp, ss: x.ss } : toUser ? { rip: 0x200000n, cs: 0x2b, rsp: x.valid.rsp, ss: 0x23 } : { rip: 0x10800n, cs: 0x08, rsp: x.rsp, ss: x.ss };
    const slots = lret ? [frame.rip, BigInt(frame.cs), frame.rsp, BigInt(frame.ss)] : [BigInt(x.selector)];
    // lret imm16 reads SS:RSP after the immediate: place them there too.
    const pokes = [...stackPokes(rsp, slots, size), ...gdtPokes(x.compat ? [] : gdt)];
    if (x.op === "lretqImm") pokes.push(...stackPokes(rsp + 16n + BigInt(x.imm), [frame.rsp, BigInt(frame.ss)], 8));
    // far JMP [RBX]: the offset (8 bytes in 64-bit code, 4 in compatibility mode), then the selector.
    if (x.op === "jmpFar") {
      const width = x.compat ? 4 : 8;
      pokes.push({ address: FAR_POINTER, size: width, value: BigInt.asUintN(width * 8, x.rip) }, { address: FAR_POINTER + BigInt(width), size: 2, value: BigInt(cs) });
    }
    const code: Insn[] = [{ op: x.op, imm: x.op === "movSreg" ? x.sreg : x.imm }, ...(x.follow ? [{ op: "pushRax" }, { op: "popRcx" }] : [])];
    return {
      family: "segment", profile: x.profile, ring: x.ring, compat: x.compat, rflags: x.rflags, rsp,
      regs: [[0, BigInt(x.selector)], [3, FAR_POINTER]], code, pokes, segments: x.compat ? [] : dataSegments(x.segs), set: {}, cpu: {},
    };
  });

// Family 5: paging --------------------------------------------------------------------------------

/** Page-table entry flags: P RW US PWT PCD A D PS G, XD, a reserved bit, ignored bits. */
const pteFlagsArb = fc
  .record({
    p: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    rw: fc.boolean(), us: fc.boolean(), a: fc.boolean(), d: fc.boolean(), pat: fc.boolean(), g: fc.boolean(), xd: fc.boolean(),
    rsvd: fc.oneof({ weight: 5, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(1n << 51n, 1n << 46n, 1n << 13n, 1n << 52n, 1n << 62n, 1n << 9n) }),
  })
  .map((f) => bit(0, f.p) | bit(1, f.rw) | bit(2, f.us) | bit(5, f.a) | bit(6, f.d) | bit(7, f.pat) | bit(8, f.g) | bit(63, f.xd) | f.rsvd);

// Two spare frames of the layout's page-table pool (0x1000–0x7000; the layout uses 0x1000–0x4000).
const PT_LOW = 0x5000n; // maps 0–2 MiB in 4 KiB pages (supervisor)
const PT_USER = 0x6000n; // maps 2–4 MiB in 4 KiB pages (user)
/** The layout's page-directory entries for 0–2 MiB and 2–4 MiB (2 MiB pages). */
const [PDE_LOW, PDE_USER] = ((): bigint[] => {
  const memory = layoutMemory(DEFAULT_LAYOUT);
  const pde = (linear: bigint) => translate((a) => memory.read64(a), cr3Of(DEFAULT_LAYOUT.paging), linear).entries[2]!.address;
  return [pde(0n), pde(0x200000n)];
})();

export const pagingScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(1),
    ops: fc.array(fc.constantFrom("load", "store", "inc", "pushRax", "popRcx", "callRbx", "jmpRbx", "int", "ud2", "stac", "clac", "pushf"), { minLength: 1, maxLength: 3 }),
    target: fc.constantFrom(0x30000n, 0x220000n, 0x221000n, 0x20f000n, 0x1f000n),
    offset: fc.constantFrom(0n, 8n, 0xff8n, 0xffcn, 0xfffn, 1n, 3n),
    dataFlags: pteFlagsArb, stackFlags: pteFlagsArb, kstackFlags: sometimes(pteFlagsArb, 20),
    pdeUser: sometimes(fc.constantFrom(0x7n, 0x5n, 0x3n, 0x8000_0000_0000_0007n, 0x27n, 0x87n), 25),
    stack: fc.constantFrom("stack", "data"),
    wp: fc.boolean(), am: fc.boolean(), smep: fc.boolean(), smap: fc.boolean(), ac: fc.boolean(), nxe: fc.boolean(),
  })
  .map((x) => {
    const pokes: Poke[] = [];
    // Split the first two 2 MiB pages into 4 KiB tables, identity-mapped.
    for (let i = 0n; i < 512n; i++) {
      pokes.push({ address: PT_LOW + 8n * i, size: 8, value: (i << 12n) | 0x3n });
      pokes.push({ address: PT_USER + 8n * i, size: 8, value: (0x200000n + (i << 12n)) | 0x7n });
    }
    pokes.push({ address: PDE_LOW!, size: 8, value: PT_LOW | 0x3n });
    pokes.push({ address: PDE_USER!, size: 8, value: PT_USER | (x.pdeUser ?? 0x7n) });
    const pteAddress = (page: bigint) => (page < 0x200000n ? PT_LOW + 8n * (page >> 12n) : PT_USER + 8n * ((page - 0x200000n) >> 12n));
    const mapped = (page: bigint, flags: bigint) => ({ address: pteAddress(page), size: 8 as const, value: page | flags });
    const userStack = 0x20f000n;
    pokes.push(mapped(x.target, x.dataFlags));
    if (x.target !== userStack) pokes.push(mapped(x.ring === 0 ? 0x1f000n : userStack, x.stackFlags));
    if (x.kstackFlags !== null) pokes.push(mapped(0x1f000n, x.kstackFlags));
    // Code in the data page for fetches: `nop; ret`.
    pokes.push({ address: x.target + x.offset, size: 2, value: 0xc390n });
    const rsp = x.stack === "data" ? x.target + 0x800n : x.ring === 0 ? 0x1ff00n : 0x20ff00n;
    return {
      family: "paging", profile: x.profile, ring: x.ring, compat: false,
      rflags: 0x202n | bit(18, x.ac), rsp,
      regs: [[3, x.target + x.offset], [0, 0x1122334455667788n]], code: x.ops.map((op) => ({ op, imm: 0x80 })), pokes,
      segments: [],
      set: {
        cr0: 0x80010033n & ~(x.wp ? 0n : 0x10000n) | (x.am ? 0x40000n : 0n),
        cr4: 0x620n | (x.smep ? 1n << 20n : 0n) | (x.smap ? 1n << 21n : 0n),
        efer: 0x501n | (x.nxe ? 0x800n : 0n),
      },
      cpu: {},
    };
  });

// Family 6: MSRs and control registers --------------------------------------------------------------

const MSRS = [0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0x10, 0x1b, 0x174, 0x175, 0x176, 0x277, 0xc0000085, 0x0, 0xc0000103];
const valueArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0n, 0xd01n, 0x501n, 0x901n, 0xd00n, 0x1d01n, 0x8000_0000_0000n, 0x7fff_ffff_ffffn, 0xffff_8000_0000_0000n, 0xffff_ffff_ffff_ffffn, 0x1_0000_0000n, 0x80050033n, 0x80010033n, 0x80000033n, 0xe0050033n, 0x620n, 0x300620n, 0x100620n, 0x600n, 0x1000n, 0x1001n, 0x4000_0000_1000n, 0xfn, 0x10n, 0x60000011n, 0x80000001n) },
  { weight: 1, arbitrary: u64 },
);

export const msrCrScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(6), compat: compatArb,
    ops: fc.array(fc.record({
      op: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom("rdmsr", "wrmsr", "wrmsr", "movToCr", "movToCr", "movFromCr", "syscall", "swapgs") },
        { weight: 2, arbitrary: fc.constantFrom("rdtsc", "sysexit", "wbinvd", "invd", "clts", "invlpg", "lgdt", "lidt", "sgdt", "sidt", "ltr", "movToBadCr", "into", "stac", "clac") },
      ),
      cr: fc.nat(4),
    }), { minLength: 1, maxLength: 3 }),
    msr: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...MSRS) }, { weight: 1, arbitrary: fc.nat(0xffffffff) }),
    value: valueArb,
  })
  .map((x) => ({
    family: "msrcr", profile: x.profile, ring: x.ring, compat: x.compat, rflags: 0x2n, rsp: defaultRsp(x.ring),
    // RBX: the memory operand of LGDT/LIDT/SGDT/SIDT/INVLPG/far JMP (the user data page).
    regs: [[0, x.value], [1, BigInt(x.msr)], [2, x.value >> 32n], [3, 0x220040n]] as const,
    code: x.ops.map((o) => ({ op: o.op, imm: o.cr })), pokes: [], segments: [], set: {}, cpu: {},
  }));

/** A 16-byte system descriptor (TSS or LDT) written over GDT slots 9–10 (selector 0x48), for
 *  LTR and LLDT to load: available TSS (type 9), busy TSS (11), LDT (2), sometimes not present,
 *  with bits set in the upper quadword's type field (bits 44:40 must be 0) or a non-canonical base. */
const systemDescriptorArb = fc.record({
  type: fc.constantFrom(9, 9, 2, 2, 11, 3),
  present: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  dpl: fc.nat(3), g: fc.nat(1), avl: fc.nat(1),
  limit: fc.constantFrom(0x67, 0xfff, 0xfffff),
  base: fc.constantFrom(0x9000n, 0x7000_0000n, 0xffff_8000_0001_0000n, 0x8000_0000_0000n),
  upperJunk: fc.oneof({ weight: 6, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(1n << 40n, 0x1fn << 40n, 1n << 63n) }),
});
function systemDescriptorPokes(d: { type: number; present: number; dpl: number; g: number; avl: number; limit: number; base: bigint; upperJunk: bigint } | null): Poke[] {
  if (d === null) return [];
  const base = BigInt.asUintN(64, d.base);
  const low = BigInt(d.limit & 0xffff) | ((base & 0xff_ffffn) << 16n) | (BigInt(d.type) << 40n) | (BigInt(d.dpl) << 45n) | (BigInt(d.present) << 47n) |
    (BigInt((d.limit >> 16) & 0xf) << 48n) | (BigInt(d.avl) << 52n) | (BigInt(d.g) << 55n) | (((base >> 24n) & 0xffn) << 56n);
  const high = (base >> 32n) | d.upperJunk;
  return [{ address: GDT_BASE + 0x48n, size: 8, value: low }, { address: GDT_BASE + 0x50n, size: 8, value: high }];
}

// Family 7: privileged and system instructions at CPL 3 and CPL 0 (issue 9) ---------------------

/** CR4 bits the system families turn on at random (the layout's CR4 has none of them). */
const SYSTEM_CR4 = { tsd: 1n << 2n, de: 1n << 3n, pce: 1n << 8n, umip: 1n << 11n, fsgsbase: 1n << 16n, pcide: 1n << 17n, osxsave: 1n << 18n } as const;
const cr4BitsArb = fc.subarray(Object.keys(SYSTEM_CR4) as (keyof typeof SYSTEM_CR4)[]).map((names) => names.reduce((v, n) => v | SYSTEM_CR4[n], 0n));
/** DR7 without armed breakpoints or GD (states with them are outside the model). */
const dr7Arb = fc.nat(0xffffffff).map((v) => (BigInt(v) & ~0x20ffn) | 0x400n);
const SYSTEM_OPS = [
  "sldt", "sldtMem", "str", "strMem", "lldt", "ltr", "verr", "verwMem", "smsw", "smswMem", "lmsw", "movToDr", "movFromDr",
  "rdpmc", "rdtsc", "rdtscp", "xgetbv", "xsetbv", "invd", "wbinvd", "wbnoinvd", "clts", "invlpg", "invpcid", "rdfsbase",
  "rdgsbase", "wrfsbase", "wrgsbase", "sysenter", "sysexitq", "sysexitd", "lgdt", "sgdt", "rdmsr", "wrmsr", "movToCr", "movFromCr",
  "swapgs", "hlt", "cli", "sti",
] as const;
/** RAX: selectors (for LLDT/LTR/VERR; 0x48 is where systemDescriptorPokes put a TSS or LDT
 *  descriptor), values (for MOV CR/DR, LMSW, WR*BASE, INVPCID types; CR0 images with and without
 *  PG, CR4 images with PCIDE). */
const raxArb = fc.oneof(
  { weight: 2, arbitrary: selectorArb.map(BigInt) },
  { weight: 1, arbitrary: fc.constantFrom(0x30n, 0x33n, 0x60n, 0n, 1n, 2n, 3n, 4n, 0x48n, 0x48n, 0x4bn, 0x4cn) },
  { weight: 1, arbitrary: fc.constantFrom(0x8005_0033n, 0x8000_0011n, 0x5_0033n, 0x11n, 0x620n | SYSTEM_CR4.pcide, 0x620n | SYSTEM_CR4.pcide | SYSTEM_CR4.osxsave) },
  { weight: 3, arbitrary: valueArb },
);
/** Addresses for [RBX]: user and kernel data, unmapped, non-canonical. */
const rbxArb = fc.constantFrom(0x220000n, 0x220ff8n, 0x30000n, 0x600000n, 0x8000_0000_0000n, 0x21fffen);

export const privilegedScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(1), compat: compatArb,
    ops: fc.array(fc.record({ op: fc.constantFrom(...SYSTEM_OPS), imm: fc.nat(7) }), { minLength: 1, maxLength: 3 }),
    cr4: cr4BitsArb, sce: fc.boolean(), nxe: fc.boolean(), cr3Low: fc.constantFrom(0n, 0n, 0x8n, 0x18n, 0x5n, 0xfffn),
    rax: raxArb, rbx: rbxArb, rcx: fc.constantFrom(0n, 0n, 0n, 1n, 0x10n, 0x1bn, 0x174n, 0x175n, 0x176n, 0xc0000103n, 0x40000000n, 2n),
    rdx: fc.constantFrom(0n, 0x8000n, 0xffffffffn, 0x7fffn), dr6: fc.nat(0xffffffff).map(BigInt), dr7: dr7Arb,
    sysenterCs: fc.constantFrom(0n, 0x10n, 0x8n, 0x13n, 0xfff8n),
    descriptor: fc.record({ type: fc.nat(3), pcid: fc.constantFrom(0n, 5n, 0x1000n), address: addressArb }),
    system: sometimes(systemDescriptorArb, 50),
    // A first instruction aimed at what random operands rarely reach: LTR / LLDT of the system
    // descriptor at 0x48 (RPL random), and MOV CR0 without PG (MOVCR-13 in compatibility mode).
    focus: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("ltr", "lldt", "cr0"), rpl: fc.constantFrom(0, 0, 3) }) }),
  })
  .map((x) => {
    const focus = x.focus;
    const system = focus === null || focus.kind === "cr0" ? x.system : { ...(x.system ?? { present: 1, dpl: 0, g: 0, avl: 0, limit: 0x67, base: 0x9000n, upperJunk: 0n }), type: focus.kind === "ltr" ? 9 : 2 };
    const rax = focus === null ? x.rax : focus.kind === "cr0" ? (focus.rpl === 3 ? 0x8005_0033n : 0x5_0033n) : BigInt(0x48 | focus.rpl);
    const first = focus === null ? [] : [{ op: focus.kind === "cr0" ? "movToCr" : focus.kind, imm: 0 }];
    return {
    family: "privileged", profile: x.profile, ring: x.ring, compat: x.compat, rflags: 0x2n, rsp: defaultRsp(x.ring),
    regs: [[0, rax], [3, x.rbx], [1, x.rcx], [2, x.rdx]] as const,
    // MOV CR: CR0, CR3, CR4 (index into movToCr's [CR0, CR2, CR3, CR4, CR8]; CR8 is msrcr's).
    code: [...first, ...x.ops.map((o) => ({ op: o.op, imm: o.op === "movToCr" || o.op === "movFromCr" ? [0, 2, 3, 2, 3][o.imm % 5]! : o.imm }))],
    // An INVPCID descriptor (and a selector word) where [RBX] points in kernel and user data.
    pokes: [
      ...[0x30000n, 0x220000n].flatMap((at) => [{ address: at, size: 8 as const, value: x.descriptor.pcid }, { address: at + 8n, size: 8 as const, value: x.descriptor.address }]),
      ...systemDescriptorPokes(system),
    ],
    segments: [],
    set: {
      cr4: 0x620n | x.cr4, efer: 0x500n | (x.sce ? 1n : 0n) | (x.nxe ? 0x800n : 0n), cr3Low: x.cr3Low,
      dr6: x.dr6, dr7: x.dr7, sysenterCs: x.sysenterCs, sysenterEsp: 0x1ff00n, sysenterEip: 0x10800n,
    },
    cpu: {},
  };
  });

// Family 8: SYSENTER / SYSEXIT with random MSRs, modes and profiles --------------------------------

export const sysenterScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(1), compat: compatArb,
    ops: fc.array(fc.constantFrom("sysenter", "sysenter", "sysexitq", "sysexitd", "pushRax", "nop", "pushf"), { minLength: 1, maxLength: 3 }),
    sysenterCs: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x08n, 0x10n, 0x0bn, 0x13n) }, { weight: 1, arbitrary: fc.constantFrom(0n, 3n, 0x10000n, 0xfff8n) }, { weight: 1, arbitrary: fc.nat(0xffffffff).map(BigInt) }),
    esp: stackArb, eip: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x10800n, 0x11000n, 0x200000n) }, { weight: 1, arbitrary: addressArb }),
    rcx: stackArb, rdx: fc.oneof({ weight: 2, arbitrary: fc.constantFrom(0x200000n, 0x10800n) }, { weight: 1, arbitrary: addressArb }),
    rflags: startFlagsArb, irq: sometimes(fc.constantFrom(32, 0x80), 20),
  })
  .map((x) => ({
    family: "sysenter", profile: x.profile, ring: x.ring, compat: x.compat, rflags: x.rflags, rsp: defaultRsp(x.ring),
    regs: [[1, x.rcx], [2, x.rdx]] as const, code: x.ops.map((op) => ({ op })), pokes: [], segments: [],
    set: { sysenterCs: x.sysenterCs, sysenterEsp: x.esp, sysenterEip: x.eip },
    cpu: { pendingIrq: x.irq },
  }));

// Family 9: compatibility-mode segmentation: limits, types, expand-down, SS.B -----------------------

const compatDataArb = fc.record({
  type: fc.oneof({ weight: 4, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.integer({ min: 8, max: 15 }) }),
  s: fc.oneof({ weight: 9, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  base: fc.constantFrom(0n, 0n, 0x1000n, 0x200000n, 0xffff_f000n, 0x1_0000_0000n),
  limit: fc.constantFrom(0xffff_ffff, 0xffff_ffff, 0xfff, 0xffff, 0x21_000f, 0x22_0003, 0x20_fff0, 0x1f_ffff),
  db: fc.nat(1), unusable: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
});
const compatCodeLimitArb = fc.constantFrom(0xffff_ffff, 0xffff_ffff, 0x20_0000, 0x20_0003, 0x20_0010, 0x1f_ffff);

export const compatScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(1),
    ops: fc.array(fc.constantFrom("load", "store", "inc", "pushRax", "popRcx", "callRbx", "jmpRbx", "ret", "loadEbp", "loadEs", "storeFs", "loadCs", "pushf", "popf", "iretd", "lretd", "int"), { minLength: 1, maxLength: 3 }),
    segs: fc.array(fc.record({ reg: fc.constantFrom<SegName>("ds", "es", "fs", "gs", "ss", "ss"), d: compatDataArb }), { maxLength: 3 }),
    codeLimit: compatCodeLimitArb, codeType: fc.constantFrom(0xb, 0xb, 0x9, 0xf, 0xa),
    rbx: fc.constantFrom(0x22_0000n, 0x22_0001n, 0xffcn, 0xffdn, 0x21_000cn, 0x21_000dn, 0x20_0008n, 0xffff_fffcn, 0x1_0022_0000n, 0x1000n),
    rsp: fc.constantFrom(0x21_0000n, 0x20_fff4n, 0x21_0010n, 0x1000n, 0x2n, 0x1_0021_0000n, 0xffff_0000_0021_0000n),
    rbp: fc.constantFrom(0x21_0000n, 0x20_fff0n, 0x1_0000n),
  })
  .map((x) => {
    const ring = x.ring;
    const segments: [SegName, Segment][] = x.segs.map(({ reg, d }) => [reg, {
      selector: reg === "ss" ? (ring === 3 ? 0x23 : 0x10) : 0x23, base: d.base, limit: d.limit, type: d.type, s: d.s, dpl: ring, present: 1,
      db: d.db, l: 0, g: d.limit > 0xfffff ? 1 : 0, avl: 0, unusable: d.unusable,
    }]);
    const cs = ring === 3 ? 0x1b : 0x40;
    segments.push(["cs", { selector: cs, base: 0n, limit: x.codeLimit, type: x.codeType, s: 1, dpl: ring, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 }]);
    return {
      family: "compat", profile: x.profile, ring, compat: true, rflags: 0x202n, rsp: x.rsp,
      regs: [[3, x.rbx], [5, x.rbp], [0, 0x1122_3344n]] as const,
      code: x.ops.map((op) => ({ op, imm: 0x80 })),
      // A far-return / IRET frame of dwords at the stack, to the user code.
      pokes: stackPokes(x.rsp, [0x20_0000n, 0x1bn, 0x202n, 0x21_0000n, 0x23n], 4),
      segments, set: {}, cpu: {},
    };
  });

// Family 10: PCID (CR4.PCIDE, CR3, INVPCID) and FSGSBASE -----------------------------------------

export const pcidScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(4), compat: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    ops: fc.array(fc.record({ op: fc.constantFrom("movToCr", "movToCr", "movFromCr", "invpcid", "invpcid", "rdfsbase", "wrfsbase", "rdgsbase", "wrgsbase", "swapgs", "load"), cr: fc.constantFrom(1, 3) }), { minLength: 1, maxLength: 3 }),
    cr4: fc.subarray(["pcide", "fsgsbase"] as const).map((names) => names.reduce((v, n) => v | SYSTEM_CR4[n], 0n)),
    cr3Low: fc.constantFrom(0n, 0n, 0x1n, 0x18n, 0xfffn),
    rax: fc.oneof(
      { weight: 2, arbitrary: fc.record({ noFlush: fc.boolean(), pcid: fc.constantFrom(0n, 1n, 0x18n, 0xfffn), high: fc.constantFrom(0n, 0n, 1n << 46n, 1n << 62n) }).map((v) => (v.noFlush ? 1n << 63n : 0n) | v.high | v.pcid | 0x1000n) },
      { weight: 2, arbitrary: fc.constantFrom(0x620n | SYSTEM_CR4.pcide, 0x620n | SYSTEM_CR4.pcide | SYSTEM_CR4.fsgsbase, 0x620n, 0x620n | SYSTEM_CR4.fsgsbase, 0n, 1n, 2n, 3n, 4n) },
      { weight: 1, arbitrary: addressArb },
    ),
    descriptor: fc.record({ low: fc.constantFrom(0n, 1n, 0xfffn, 0x1000n), address: addressArb }),
  })
  .map((x) => ({
    family: "pcid", profile: x.profile, ring: x.ring, compat: x.compat, rflags: 0x2n, rsp: defaultRsp(x.ring),
    regs: [[0, x.rax], [3, 0x30000n]] as const,
    // movToCr/movFromCr index [CR0, CR2, CR3, CR4, CR8]: 3 is CR4, 2 is CR3.
    code: x.ops.map((o) => ({ op: o.op, imm: o.cr === 1 ? 3 : 2 })),
    pokes: [{ address: 0x30000n, size: 8 as const, value: x.descriptor.low }, { address: 0x30008n, size: 8 as const, value: x.descriptor.address }],
    segments: [], set: { cr4: 0x620n | x.cr4, cr3Low: x.cr3Low }, cpu: {},
  }));

// Family 11: far transfers into compatibility mode (issue 9; issue 8 divergence B) ---------------

/** A 32-bit (or 16-bit) code segment at GDT slot 9 (selector 0x48) with a random limit, and a data
 *  segment at slot 10 (0x50) for the outer return's SS (B = 0 or 1). */
const compatTargetArb = fc.record({
  limit: fc.constantFrom(0xfff, 0xffff, 0xfffff, 0x1ff, 0x200), g: fc.nat(1),
  db: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  conforming: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  present: fc.oneof({ weight: 9, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }),
  ssB: fc.nat(1), ssLimit: fc.constantFrom(0xfffff, 0xffff, 0xfff), ownSs: fc.boolean(),
});

export const farTransferScenario: fc.Arbitrary<Scenario> = fc
  .record({
    profile, ring: ringArb(3), compat: compatArb,
    op: fc.constantFrom("iretq", "iretq", "iretd", "lretq", "lretq", "lretd", "lretqImm", "jmpFar", "jmpFar"),
    outer: fc.boolean(), target: compatTargetArb,
    eip: fc.constantFrom(0x200000n, 0x200000n, 0xffen, 0x1000n, 0xfff_fff0n, 0xffff_fff0n, 0x1_0020_0000n, 0xffff_ffff_0020_0000n, 0x7fff_ffff_fff0n, 0x8000_0000_0000n),
    rsp: fc.constantFrom(0x210000n, 0x1_0000_0000n, 0x1_0021_0000n, 0xffff_fff8n, 0xffff_8000_0021_0000n, 0x1_ffff_fff8n, 0xfff0n),
    imm: fc.constantFrom(8, 0x10, 0xfff8), rflags: fc.constantFrom(0x202n, 0x2n, 0x302n, 0x40202n),
    segs: dataSegsArb,
  })
  .map((x) => {
    const rsp = defaultRsp(x.ring);
    const targetRing = x.op !== "jmpFar" && x.outer ? 3 : x.ring;
    const t = x.target;
    const cs = 0x48 | targetRing;
    const code = { type: t.conforming ? 15 : 11, s: 1, dpl: t.conforming ? 0 : targetRing, p: t.present, avl: 0, l: 0, db: t.db, g: t.g, limit: t.limit, base: 0 };
    const ssData = { type: 3, s: 1, dpl: targetRing, p: 1, avl: 0, l: 0, db: t.ssB, g: t.ssLimit === 0xfffff ? 1 : 0, limit: t.ssLimit, base: 0 };
    const ss = t.ownSs ? 0x50 | targetRing : targetRing === 3 ? 0x23 : 0x10;
    const pokes: Poke[] = [{ address: GDT_BASE + 0x48n, size: 8, value: descriptor(code) }, { address: GDT_BASE + 0x50n, size: 8, value: descriptor(ssData) }];
    const size = x.op === "iretd" || x.op === "lretd" ? 4 : 8;
    if (x.op.startsWith("iret")) pokes.push(...stackPokes(rsp, [x.eip, BigInt(cs), x.rflags, x.rsp, BigInt(ss)], size));
    else if (x.op === "lretqImm") pokes.push(...stackPokes(rsp, [x.eip, BigInt(cs)], 8), ...stackPokes(rsp + 16n + BigInt(x.imm), [x.rsp, BigInt(ss)], 8));
    else if (x.op.startsWith("lret")) pokes.push(...stackPokes(rsp, [x.eip, BigInt(cs), x.rsp, BigInt(ss)], size));
    else {
      const width = x.compat ? 4 : 8;
      pokes.push({ address: FAR_POINTER, size: width, value: BigInt.asUintN(width * 8, x.eip) }, { address: FAR_POINTER + BigInt(width), size: 2, value: BigInt(cs) });
    }
    return {
      family: "farxfer", profile: x.profile, ring: x.ring, compat: x.compat, rflags: x.ring === 3 ? 0x202n : 0x2n, rsp,
      regs: [[3, FAR_POINTER]] as const, code: [{ op: x.op, imm: x.imm }],
      pokes, segments: dataSegments(x.segs), set: {}, cpu: {},
    };
  });

export const FAMILIES: Readonly<Record<string, fc.Arbitrary<Scenario>>> = {
  iret: iretScenario,
  delivery: deliveryScenario,
  syscall: syscallScenario,
  segment: segmentScenario,
  paging: pagingScenario,
  msrcr: msrCrScenario,
  privileged: privilegedScenario,
  sysenter: sysenterScenario,
  compat: compatScenario,
  pcid: pcidScenario,
  farxfer: farTransferScenario,
};
