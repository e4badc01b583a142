// A decoded instruction: every field is a number fixed by the decoder (plus the raw bytes and a
// reason for unsupported encodings), so executors and the block compiler never look at guest bytes.

// ---- operations ----
export const OP_UNSUP = 0, OP_UD = 1, OP_GP0 = 2,
  OP_ALU_RM_R = 3, OP_ALU_R_RM = 4, OP_ALU_RM_I = 5, OP_TEST_RM_R = 6, OP_TEST_RM_I = 7,
  OP_MOV_RM_R = 8, OP_MOV_R_RM = 9, OP_MOV_RM_I = 10, OP_MOV_R_I = 11,
  OP_MOVZX = 12, OP_MOVSX = 13, OP_LEA = 14, OP_XCHG = 15,
  OP_PUSH_R = 16, OP_PUSH_I = 17, OP_PUSH_RM = 18, OP_POP_R = 19, OP_POP_RM = 20, OP_PUSHF = 21,
  OP_POPF = 22, OP_CBW = 23, OP_CWD = 24,
  OP_INC = 25, OP_DEC = 26, OP_NEG = 27, OP_NOT = 28, OP_SHIFT = 29,
  OP_MUL = 30, OP_IMUL1 = 31, OP_DIV = 32, OP_IDIV = 33, OP_IMUL2 = 34, OP_IMUL3 = 35, OP_BT = 36,
  OP_JMP = 37, OP_JCC = 38, OP_CALL = 39, OP_CALL_RM = 40, OP_JMP_RM = 41, OP_RET = 42, OP_RETF = 43,
  OP_JMPF = 44,
  OP_NOP = 45, OP_CLC = 46, OP_STC = 47, OP_CMC = 48, OP_CLD = 49, OP_STD = 50, OP_CLI = 51, OP_STI = 52,
  OP_HLT = 53, OP_IN = 54, OP_OUT = 55, OP_INT = 56, OP_INT3 = 57, OP_INT1 = 58, OP_INTO = 59,
  OP_IRET = 60, OP_SYSCALL = 61, OP_SYSRET = 62, OP_SWAPGS = 63, OP_RDMSR = 64, OP_WRMSR = 65,
  OP_MOV_FROM_CR = 66, OP_MOV_TO_CR = 67, OP_LGDT = 68, OP_LIDT = 69, OP_SGDT = 70, OP_SIDT = 71,
  OP_LTR = 72, OP_MOV_TO_SREG = 73, OP_MOV_FROM_SREG = 74, OP_PUSH_SREG = 75, OP_POP_SREG = 76,
  OP_STAC = 77, OP_CLAC = 78, OP_CLTS = 79, OP_WBINVD = 80, OP_INVD = 81, OP_INVLPG = 82,
  OP_RDTSC = 83, OP_SYSEXIT = 84;
// Privileged and system instructions of issue 9 (85–99; impl/privileged.ts, impl/system.ts).
// OP_SLDT_STR and OP_VERR_VERW: `sub` 0 = SLDT / VERR, 1 = STR / VERW. OP_RDFSGSBASE and
// OP_WRFSGSBASE: `reg` is the segment (FS or GS), `rm` the register.
export const OP_SLDT_STR = 85, OP_LLDT = 86, OP_VERR_VERW = 87, OP_SMSW = 88, OP_LMSW = 89, OP_MOV_FROM_DR = 90,
  OP_MOV_TO_DR = 91, OP_SYSENTER = 92, OP_RDTSCP = 93, OP_RDPMC = 94, OP_XGETBV = 95, OP_XSETBV = 96,
  OP_RDFSGSBASE = 97, OP_WRFSGSBASE = 98, OP_INVPCID = 99;
// The general kernel subset (issue 11): numbered from 100 so that other families can grow below.
export const OP_SETCC = 100, OP_CMOVCC = 101, OP_CMPXCHG = 102, OP_XADD = 103, OP_CMPXCHG_WIDE = 104,
  OP_MOVS = 105, OP_STOS = 106, OP_LODS = 107, OP_CMPS = 108, OP_SCAS = 109, OP_LEAVE = 110, OP_LOOP = 111,
  OP_JRCXZ = 112, OP_BSF = 113, OP_BSR = 114, OP_BSWAP = 115, OP_CPUID = 116;
export const OP_COUNT = 117;

/** ALU sub-operations (the /digit of 80–83 and the opcode row of 00–3D). */
export const ALU_ADD = 0, ALU_OR = 1, ALU_ADC = 2, ALU_SBB = 3, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6,
  ALU_CMP = 7;

/** Base register value meaning "RIP-relative"; -1 means none. */
export const BASE_RIP = 16;
/** Register numbers 16–19 name AH, CH, DH, BH (byte operands without REX). */
export const REG_AH = 16;

/** Decode modes: 64-bit, compatibility mode with CS.D = 1, compatibility mode with CS.D = 0. */
export const MODE_64 = 0, MODE_32 = 1, MODE_16 = 2;

export class Insn {
  op = OP_UNSUP;
  /** Encoded length in bytes. */
  len = 0;
  /** Operand size in bytes (1, 2, 4, 8). */
  operandSize = 4;
  /** Address size in bytes (2, 4, 8). */
  addressSize = 8;
  /** ModRM.mod (3 = register operand in `rm`); -1 when the instruction has no ModRM. */
  mod = -1;
  /** ModRM.reg with REX.R (a register number, an opcode extension, a CR or a Sreg). */
  reg = 0;
  /** ModRM.rm with REX.B when mod = 3. */
  rm = 0;
  /** Memory operand: base register or -1 / BASE_RIP, index or -1, scale shift 0–3. */
  base = -1;
  index = -1;
  scale = 0;
  dispLo = 0;
  dispHi = 0;
  /** Segment of the memory operand (consts.ts ES..GS). */
  seg = 3;
  immLo = 0;
  immHi = 0;
  /** Which operand form an op with several takes: OP_SHIFT count 0 = imm8, 1 = one, 2 = CL;
   *  OP_BT 1 = bit index in imm8; OP_IN/OP_OUT 1 = port in DX (else imm8). OP_CMPXCHG_WIDE: the
   *  operand size is 8 (CMPXCHG8B) or 16 (CMPXCHG16B). */
  operandForm = 0;
  /** Sub-operation (ALU op, shift op, BT op), condition code (Jcc, SETcc, CMOVcc), or the LOOP
   *  kind (0 LOOPNE, 1 LOOPE, 2 LOOP). String instructions: `rep` says whether they repeat,
   *  `addressSize` which count and index registers they use, `seg` their source segment. */
  sub = 0;
  /** Source operand size for MOVZX/MOVSX/MOVSXD. */
  sourceSize = 0;
  lock = false;
  /** 0, 0xF2 or 0xF3. */
  rep = 0;
  rexW = false;
  /** Decode mode (MODE_*). */
  mode = MODE_64;
  /** Linear address of the instruction and of the next one; branch target when known. */
  ripLo = 0;
  ripHi = 0;
  nextLo = 0;
  nextHi = 0;
  targetLo = 0;
  targetHi = 0;
  /** The instruction bytes (kept for unsupported encodings and diagnostics). */
  bytes: Uint8Array = EMPTY;
  /** Why the encoding is unsupported (OP_UNSUP only). */
  reason = "";
}

const EMPTY = new Uint8Array(0);
