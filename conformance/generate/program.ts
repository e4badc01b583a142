// Random programs for lockstep testing, as plain data (so fast-check can shrink them) and encoded
// with the guest kit's assembler over iced-x86 (never hand-assembled). Each instruction comes from
// a template over the modelled subset; registers, immediates and data addresses are parameters.
import { Program, ahead, iced, type Section } from "../../guest/index.ts";
import { DEVICE_PORT } from "../../contract/state.ts";

type Code = number;
type Register = number;
const { Code: C, Register: R } = iced;

/** One generated instruction: which template, and its parameters (all small integers). */
export interface InstructionSpec {
  readonly template: number;
  readonly a: number;
  readonly b: number;
  readonly imm: number;
}

export interface ProgramLayout {
  /** Address the program is placed at (and starts from). */
  readonly rip: bigint;
  /** A 4 KiB data page that memory operands address with absolute displacements. */
  readonly data: bigint;
  /** Whether the program runs at CPL 0 (system templates are included). */
  readonly kernel: boolean;
  /** Whether IN/OUT may address the device registers of docs/devices.md (0xE0 0xE4 0xE9 0xEC
   *  0xF4): only when both engines compared implement the devices (EngineCapabilities.devices).
   *  Otherwise those ports are moved to 0x80 (nothing answers there on any engine). */
  readonly devices?: boolean;
}

/** The device registers' ports (docs/devices.md). */
const DEVICE_PORTS: ReadonlySet<number> = new Set(Object.values(DEVICE_PORT));

/** An imm8 port for IN/OUT from the spec's immediate. */
const port = (s: InstructionSpec, l: ProgramLayout): number => {
  const p = s.imm & 0xff;
  return DEVICE_PORTS.has(p) && l.devices !== true ? 0x80 : p;
};

const GPR64 = [R.RAX, R.RCX, R.RDX, R.RBX, R.RBP, R.RSI, R.RDI, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];
const GPR32 = [R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.ESI, R.EDI, R.R8D, R.R9D, R.R10D, R.R11D, R.R12D, R.R13D, R.R14D, R.R15D];
const GPR16 = [R.AX, R.CX, R.DX, R.BX, R.BP, R.SI, R.DI, R.R8W, R.R9W, R.R10W, R.R11W, R.R12W, R.R13W, R.R14W, R.R15W];
const GPR8 = [R.AL, R.CL, R.DL, R.BL, R.AH, R.CH, R.DH, R.BH];
const BY_SIZE: Record<number, readonly Register[]> = { 8: GPR64, 4: GPR32, 2: GPR16, 1: GPR8 };

const reg = (size: number, n: number): Register => {
  const list = BY_SIZE[size]!;
  return list[n % list.length]!;
};

type IcedInstruction = InstanceType<typeof iced.Instruction>;
/** A template: one instruction, or a few (a string instruction with the registers it needs). */
type Build = (spec: InstructionSpec, layout: ProgramLayout) => IcedInstruction | readonly IcedInstruction[];

const memory = (layout: ProgramLayout, n: number) =>
  new iced.MemoryOperand(R.None, R.None, 1, layout.data + BigInt((n * 8) & 0xff8), 4, false, R.None);

const regReg = (code: Code, size: number): Build => (s) => iced.Instruction.createRegReg(code, reg(size, s.a), reg(size, s.b));
/** Byte registers usable with a REX prefix (no AH/CH/DH/BH). */
const GPR8_REX = [R.AL, R.CL, R.DL, R.BL, R.SIL, R.DIL, R.R8L, R.R9L, R.R10L, R.R11L, R.R12L, R.R13L, R.R14L, R.R15L];
const regWiden = (code: Code, size: number, from: number): Build => (s) =>
  iced.Instruction.createRegReg(code, reg(size, s.a), from === 1 ? GPR8_REX[s.b % GPR8_REX.length]! : reg(from, s.b));
const regImm = (code: Code, size: number): Build => (s) => iced.Instruction.createRegI32(code, reg(size, s.a), s.imm | 0);
const regImm8 = (code: Code, size: number): Build => (s) => iced.Instruction.createRegI32(code, reg(size, s.a), ((s.imm << 24) >> 24));
const regCount = (code: Code, size: number): Build => (s) => iced.Instruction.createRegU32(code, reg(size, s.a), s.imm & 0xff);
const regOnly = (code: Code, size: number): Build => (s) => iced.Instruction.createReg(code, reg(size, s.a));
const regOne = (code: Code, size: number): Build => (s) => iced.Instruction.createRegU32(code, reg(size, s.a), 1);
const regCl = (code: Code, size: number): Build => (s) => iced.Instruction.createRegReg(code, reg(size, s.a), R.CL);
const memReg = (code: Code, size: number): Build => (s, l) => iced.Instruction.createMemReg(code, memory(l, s.b), reg(size, s.a));
const regMem = (code: Code, size: number): Build => (s, l) => iced.Instruction.createRegMem(code, reg(size, s.a), memory(l, s.b));
const memImm = (code: Code): Build => (s, l) => iced.Instruction.createMemI32(code, memory(l, s.b), s.imm | 0);
const memOnly = (code: Code): Build => (s, l) => iced.Instruction.createMem(code, memory(l, s.b));
const bare = (code: Code): Build => () => iced.Instruction.create(code);

const ALU = ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp"] as const;
const SHIFTS = ["Rol", "Ror", "Rcl", "Rcr", "Shl", "Shr", "Sar"] as const;
const code = (name: string): Code => {
  const value = (C as unknown as Record<string, number>)[name];
  if (value === undefined) throw new Error(`iced-x86 has no Code.${name}`);
  return value;
};

/** Templates any CPL may run. */
const GENERAL: readonly Build[] = [
  ...ALU.flatMap((op) => [
    regReg(code(`${op}_rm64_r64`), 8), regReg(code(`${op}_rm32_r32`), 4), regReg(code(`${op}_rm16_r16`), 2), regReg(code(`${op}_rm8_r8`), 1),
    regImm(code(`${op}_rm64_imm32`), 8), regImm8(code(`${op}_rm64_imm8`), 8), regImm(code(`${op}_rm32_imm32`), 4),
    memReg(code(`${op}_rm64_r64`), 8), regMem(code(`${op}_r32_rm32`), 4), memImm(code(`${op}_rm64_imm32`)),
  ]),
  ...SHIFTS.flatMap((op) => [regCount(code(`${op}_rm64_imm8`), 8), regCl(code(`${op}_rm32_CL`), 4), regOne(code(`${op}_rm16_1`), 2), regCount(code(`${op}_rm8_imm8`), 1)]),
  regReg(C.Test_rm64_r64, 8), regReg(C.Test_rm8_r8, 1), regImm(C.Test_rm32_imm32, 4),
  regOnly(C.Inc_rm64, 8), regOnly(C.Dec_rm32, 4), regOnly(C.Neg_rm64, 8), regOnly(C.Not_rm16, 2),
  memOnly(C.Inc_rm64), memOnly(C.Neg_rm64),
  regOnly(C.Mul_rm64, 8), regOnly(C.Imul_rm32, 4), regOnly(C.Div_rm64, 8), regOnly(C.Idiv_rm32, 4), regOnly(C.Div_rm8, 1),
  regReg(C.Imul_r64_rm64, 8), (s) => iced.Instruction.createRegRegI32(C.Imul_r32_rm32_imm32, reg(4, s.a), reg(4, s.b), s.imm | 0),
  regReg(C.Mov_rm64_r64, 8), regReg(C.Mov_rm32_r32, 4), regReg(C.Mov_rm8_r8, 1), memReg(C.Mov_rm64_r64, 8), regMem(C.Mov_r64_rm64, 8),
  (s) => iced.Instruction.createRegU64(C.Mov_r64_imm64, reg(8, s.a), BigInt.asUintN(64, BigInt(s.imm) * 0x9e3779b97f4a7c15n)),
  regImm(C.Mov_rm64_imm32, 8), regImm(C.Mov_r32_imm32, 4),
  regWiden(C.Movzx_r64_rm8, 8, 1), regWiden(C.Movsx_r32_rm16, 4, 2), regWiden(C.Movsxd_r64_rm32, 8, 4), regReg(C.Xchg_rm64_r64, 8), memReg(C.Xchg_rm32_r32, 4),
  regReg(C.Bt_rm64_r64, 8), regCount(C.Bts_rm64_imm8, 8), regReg(C.Btr_rm32_r32, 4), regCount(C.Btc_rm16_imm8, 2),
  (s, l) => iced.Instruction.createRegMem(C.Lea_r64_m, reg(8, s.a), new iced.MemoryOperand(reg(8, s.b), reg(8, s.imm), 1 << (s.imm & 3), BigInt((s.imm << 20) >> 20), 8, false, R.None)),
  regOnly(C.Push_r64, 8), regOnly(C.Pop_r64, 8), (s) => iced.Instruction.createI32(C.Pushq_imm32, s.imm | 0), memOnly(C.Push_rm64),
  bare(C.Pushfq), bare(C.Popfq), bare(C.Cdqe), bare(C.Cqo), bare(C.Cwde), bare(C.Cdq),
  bare(C.Clc), bare(C.Stc), bare(C.Cmc), bare(C.Cld), bare(C.Std), bare(C.Nopd),
  // Short forward branches (0–7 bytes): they may land inside the next instruction, which tests
  // both decoders on whatever bytes are there.
  (s, l) => iced.Instruction.createBranch(code(`${["Jo", "Jb", "Je", "Jbe", "Js", "Jp", "Jl", "Jle", "Jne", "Jae"][s.a % 10]}_rel8_64`), 0n),
  (s) => iced.Instruction.createU32(C.Int_imm8, 0x80 + (s.imm & 1)),
  bare(C.Int3), bare(C.Ud2),
  (s, l) => iced.Instruction.createRegU32(C.In_AL_imm8, R.AL, port(s, l)),
  (s, l) => iced.Instruction.createU32Reg(C.Out_imm8_AL, port(s, l), R.AL),
  bare(C.Cli), bare(C.Sti), bare(C.Swapgs), bare(C.Syscall), bare(C.Hlt),
];

const CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"] as const;
const movImm = (r: Register, v: bigint) => iced.Instruction.createRegU64(C.Mov_r64_imm64, r, BigInt.asUintN(64, v));
/** An address in the data page, `bytes`-aligned. */
const dataAt = (l: ProgramLayout, n: number, align = 1) => l.data + BigInt(((n * 8) & 0xf80) & ~(align - 1));
const STRING_SIZES = [8, 16, 32, 64] as const;
const CPUID_LEAVES = [0n, 1n, 2n, 7n, 8n, 0x4000_0000n, 0x8000_0000n, 0x8000_0001n, 0x8000_0002n, 0x8000_0008n, 0x8000_0009n];

/**
 * Issue 11's general kernel subset (docs/model-choices.md): SETcc, CMOVcc, CMPXCHG, XADD (with and
 * without LOCK), CMPXCHG8B/16B, BSF/BSR (and F3 0F BC), BSWAP, the string instructions with and
 * without REP/REPE/REPNE (after setting RSI/RDI into the data page and a small RCX), LEAVE,
 * LOOPcc/JRCXZ, CPUID, fences, PREFETCHh, ENDBR64.
 */
const KERNEL_SUBSET: readonly Build[] = [
  (s) => iced.Instruction.createReg(code(`Set${CONDITIONS[s.a]!}_rm8`), reg(1, s.b)),
  (s, l) => iced.Instruction.createMem(code(`Set${CONDITIONS[s.a]!}_rm8`), memory(l, s.b)),
  (s) => iced.Instruction.createRegReg(code(`Cmov${CONDITIONS[s.a]!}_r64_rm64`), reg(8, s.b), reg(8, s.imm & 15)),
  (s) => iced.Instruction.createRegReg(code(`Cmov${CONDITIONS[s.a]!}_r32_rm32`), reg(4, s.b), reg(4, s.imm & 15)),
  (s) => iced.Instruction.createRegReg(code(`Cmov${CONDITIONS[s.a]!}_r16_rm16`), reg(2, s.b), reg(2, s.imm & 15)),
  (s, l) => iced.Instruction.createRegMem(code(`Cmov${CONDITIONS[s.a]!}_r32_rm32`), reg(4, s.b), memory(l, s.imm)),
  memReg(C.Cmpxchg_rm32_r32, 4), memReg(C.Cmpxchg_rm64_r64, 8), memReg(C.Cmpxchg_rm8_r8, 1), regReg(C.Cmpxchg_rm32_r32, 4), regReg(C.Cmpxchg_rm16_r16, 2),
  (s, l) => { const i = iced.Instruction.createMemReg(C.Cmpxchg_rm32_r32, memory(l, s.b), reg(4, s.a)); i.hasLockPrefix = true; return i; },
  memReg(C.Xadd_rm64_r64, 8), memReg(C.Xadd_rm16_r16, 2), regReg(C.Xadd_rm32_r32, 4), regReg(C.Xadd_rm8_r8, 1),
  (s, l) => { const i = iced.Instruction.createMemReg(C.Xadd_rm64_r64, memory(l, s.b), reg(8, s.a)); i.hasLockPrefix = true; return i; },
  (s, l) => iced.Instruction.createMem(C.Cmpxchg8b_m64, new iced.MemoryOperand(R.None, R.None, 1, dataAt(l, s.b, 8), 4, false, R.None)),
  // CMPXCHG16B: aligned, or (odd imm) 8 bytes off: #GP(0).
  (s, l) => iced.Instruction.createMem(C.Cmpxchg16b_m128, new iced.MemoryOperand(R.None, R.None, 1, dataAt(l, s.b, 16) + BigInt((s.imm & 1) * 8), 4, false, R.None)),
  regReg(C.Bsf_r64_rm64, 8), regReg(C.Bsr_r32_rm32, 4), regReg(C.Tzcnt_r32_rm32, 4), regReg(C.Lzcnt_r64_rm64, 8),
  (s) => iced.Instruction.createReg(C.Bswap_r32, reg(4, s.a)), (s) => iced.Instruction.createReg(C.Bswap_r64, reg(8, s.a)),
  // Strings: RSI, RDI into the data page, RCX small (0 included), DF from the spec, then the instruction.
  ...(["Movs", "Stos", "Lods", "Cmps", "Scas"] as const).map((name): Build => (s, l) => {
    const size = STRING_SIZES[s.a & 3]!;
    const suffix = { 8: "b", 16: "w", 32: "d", 64: "q" }[size];
    const rep = (s.imm >> 4) & 3; // 0 none, 1 REP/REPE, 2 REPNE
    const kind = rep === 0 ? iced.RepPrefixKind.None : rep === 1 ? iced.RepPrefixKind.Repe : iced.RepPrefixKind.Repne;
    const create = iced.Instruction[`create${name}${suffix}` as "createMovsb"] as (addressSize: number, segment: Register, repKind: number) => IcedInstruction;
    const string = name === "Stos" || name === "Scas" ? (iced.Instruction[`create${name}${suffix}` as "createStosb"] as (addressSize: number, repKind: number) => IcedInstruction)(64, kind) : create(64, R.None, kind);
    return [
      movImm(R.RSI, dataAt(l, s.b)), movImm(R.RDI, dataAt(l, s.b + 64)), movImm(R.RCX, BigInt(s.imm & 7)),
      iced.Instruction.create((s.imm & 0x40) !== 0 ? C.Std : C.Cld), string,
    ];
  }),
  () => [iced.Instruction.createRegReg(C.Mov_rm64_r64, R.RBP, R.RSP), iced.Instruction.create(C.Leaveq)],
  (s) => [movImm(R.RAX, CPUID_LEAVES[s.a % CPUID_LEAVES.length]!), movImm(R.RCX, BigInt(s.b & 1)), iced.Instruction.create(C.Cpuid)],
  bare(C.Lfence), bare(C.Mfence), bare(C.Sfence), bare(C.Endbr64),
  (s, l) => iced.Instruction.createMem(C.Prefetcht0_m8, memory(l, s.b)),
  // LOOP/LOOPE/LOOPNE/JRCXZ: short forward branches (0–7 bytes), like the Jcc template.
  (s) => iced.Instruction.createBranch([C.Loopne_rel8_64_RCX, C.Loope_rel8_64_RCX, C.Loop_rel8_64_RCX, C.Jrcxz_rel8_64][s.a & 3]!, 0n),
];

/** Templates for kernel programs only (they mostly #GP at CPL 3 anyway). */
const SYSTEM: readonly Build[] = [
  bare(C.Rdmsr), bare(C.Wrmsr), bare(C.Stac), bare(C.Clac), bare(C.Clts),
  (s) => iced.Instruction.createRegReg(C.Mov_r64_cr, reg(8, s.a), [R.CR0, R.CR2, R.CR3, R.CR4, R.CR8][s.b % 5]!),
  (s) => iced.Instruction.createRegReg(C.Mov_cr_r64, R.CR2, reg(8, s.a)),
  (s) => iced.Instruction.createRegReg(C.Mov_cr_r64, R.CR8, reg(8, s.a)),
];

/** The templates of a user or kernel program, in index order: the general ones, the kernel subset
 *  of issue 11, then (kernel programs) the system ones. */
function templatesFor(kernel: boolean): readonly Build[] {
  return kernel ? [...GENERAL, ...KERNEL_SUBSET, ...SYSTEM] : [...GENERAL, ...KERNEL_SUBSET];
}

export function templateCount(kernel: boolean): number {
  return templatesFor(kernel).length;
}

/** Whether template `index` is one of issue 11's kernel subset (an engine outside this project,
 *  e.g. a student's emulator over the process protocol, may not model it). */
export function isKernelSubsetTemplate(index: number): boolean {
  return index >= GENERAL.length && index < GENERAL.length + KERNEL_SUBSET.length;
}

/** The template indexes used when none are given: all of them (spec and impl both model issue
 *  11's kernel subset). */
export function defaultTemplates(kernel: boolean): number[] {
  return templatesFor(kernel).map((_, i) => i);
}

/** Appends the instructions of `specs` to `section` (placed at `layout.rip` or wherever the
 *  section is). Branch specs jump 0–7 bytes forward. `templates`: the template indexes to draw
 *  from (a spec's `template` picks one modulo their number); default `defaultTemplates`. */
export function emitInstructions(section: Section, specs: readonly InstructionSpec[], layout: ProgramLayout, templates?: readonly number[]): void {
  const all = templatesFor(layout.kernel);
  const usable = templates ?? defaultTemplates(layout.kernel);
  for (const spec of specs) {
    const built = all[usable[spec.template % usable.length]!]!(spec, layout);
    for (const insn of Array.isArray(built) ? built : [built as IcedInstruction]) {
      if (insn.isJccShortOrNear || insn.isLoop || insn.isLoopcc || insn.isJcxShort) {
        const code = insn.code;
        insn.free();
        section.emit(code, ahead(spec.imm & 7));
      } else section.add(insn);
    }
  }
}

/** Encodes the program at `layout.rip`, ending with HLT (see emitInstructions). */
export function encodeProgram(specs: readonly InstructionSpec[], layout: ProgramLayout, templates?: readonly number[]): Uint8Array {
  const p = new Program(layout.rip);
  emitInstructions(p, specs, layout, templates);
  p.emit(C.Hlt);
  return p.encode();
}
