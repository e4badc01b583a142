// Random programs for lockstep testing, as plain data (so fast-check can shrink them) and encoded
// with the guest kit's assembler over iced-x86 (never hand-assembled). Each instruction comes from
// a template over the modelled subset; registers, immediates and data addresses are parameters.
import { Program, ahead, iced, type Section } from "../../guest/index.ts";

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
const DEVICE_PORTS: ReadonlySet<number> = new Set([0xe0, 0xe4, 0xe9, 0xec, 0xf4]);

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

type Build = (spec: InstructionSpec, layout: ProgramLayout) => InstanceType<typeof iced.Instruction>;

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

/** Templates for kernel programs only (they mostly #GP at CPL 3 anyway). */
const SYSTEM: readonly Build[] = [
  bare(C.Rdmsr), bare(C.Wrmsr), bare(C.Stac), bare(C.Clac), bare(C.Clts),
  (s) => iced.Instruction.createRegReg(C.Mov_r64_cr, reg(8, s.a), [R.CR0, R.CR2, R.CR3, R.CR4, R.CR8][s.b % 5]!),
  (s) => iced.Instruction.createRegReg(C.Mov_cr_r64, R.CR2, reg(8, s.a)),
  (s) => iced.Instruction.createRegReg(C.Mov_cr_r64, R.CR8, reg(8, s.a)),
];

export function templateCount(kernel: boolean): number {
  return GENERAL.length + (kernel ? SYSTEM.length : 0);
}

/** Appends the instructions of `specs` to `section` (placed at `layout.rip` or wherever the
 *  section is). Branch specs jump 0–7 bytes forward. */
export function emitInstructions(section: Section, specs: readonly InstructionSpec[], layout: ProgramLayout): void {
  const templates = layout.kernel ? [...GENERAL, ...SYSTEM] : GENERAL;
  for (const spec of specs) {
    const insn = templates[spec.template % templates.length]!(spec, layout);
    if (insn.isJccShortOrNear) {
      const code = insn.code;
      insn.free();
      section.emit(code, ahead(spec.imm & 7));
    } else section.add(insn);
  }
}

/** Encodes the program at `layout.rip`, ending with HLT. Branch specs jump 0–7 bytes forward. */
export function encodeProgram(specs: readonly InstructionSpec[], layout: ProgramLayout): Uint8Array {
  const p = new Program(layout.rip);
  emitInstructions(p, specs, layout);
  p.emit(C.Hlt);
  return p.encode();
}
