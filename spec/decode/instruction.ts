// What the decoder produces and the semantics (spec/semantics-table.ts) consume. Decoding is part of the semantics: the
// operand size, the address size and every operand are fixed here, so the semantics never look at bytes.

/** Segment registers in SDM Sreg encoding order (ES=0, CS=1, SS=2, DS=3, FS=4, GS=5). */
export const SREG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs"] as const;
export type SregName = (typeof SREG_NAMES)[number];

export type OperandSize = 1 | 2 | 4 | 8;

export type Operand =
  /** General register `reg` (0–15); `high8` selects AH/CH/DH/BH (reg 4–7 without REX, size 1). */
  | { readonly kind: "reg"; readonly reg: number; readonly size: OperandSize; readonly high8: boolean }
  /** Memory at segment:[base + index·scale + disp] (RIP-relative: next RIP + disp). `size` is 0
   *  when the operand has no data size (LEA, INVLPG) and 10 for LGDT/LIDT/SGDT/SIDT (m16&64). */
  | {
      readonly kind: "mem";
      readonly size: number;
      readonly segment: SregName;
      /** True when the default segment was SS (RSP/RBP base): faults there are #SS, not #GP. */
      readonly stackSegment: boolean;
      readonly base: number | null;
      readonly index: number | null;
      readonly scale: 1 | 2 | 4 | 8;
      /** Sign-extended displacement, as a signed bigint. */
      readonly disp: bigint;
      readonly ripRelative: boolean;
      readonly addressSize: 4 | 8;
    }
  /** Immediate, already sign- or zero-extended as the instruction defines, masked to `size`. */
  | { readonly kind: "imm"; readonly value: bigint; readonly size: OperandSize }
  /** Relative branch displacement (signed); target = next RIP + disp. */
  | { readonly kind: "rel"; readonly disp: bigint }
  | { readonly kind: "sreg"; readonly sreg: SregName }
  | { readonly kind: "cr"; readonly cr: number }
  | { readonly kind: "dr"; readonly dr: number }
  /** A fixed port number (IN/OUT imm8) or DX (`port: "dx"`). */
  | { readonly kind: "port"; readonly port: number | "dx" };

export type MemOperand = Extract<Operand, { kind: "mem" }>;

export type Mnemonic =
  // data movement
  | "mov" | "movzx" | "movsx" | "movsxd" | "lea" | "xchg" | "push" | "pop" | "pushf" | "popf"
  | "cbw" | "cwd" // CBW/CWDE/CDQE and CWD/CDQ/CQO, by operand size
  // arithmetic and logic
  | "add" | "adc" | "sub" | "sbb" | "and" | "or" | "xor" | "cmp" | "test"
  | "inc" | "dec" | "neg" | "not" | "rol" | "ror" | "rcl" | "rcr" | "shl" | "shr" | "sar"
  | "mul" | "imul" | "div" | "idiv" | "bt" | "bts" | "btr" | "btc" | "bsf" | "bsr"
  // conditional moves and sets, atomics (SETcc/CMOVcc use `condition`)
  | "setcc" | "cmovcc" | "cmpxchg" | "xadd" | "cmpxchg8b" | "cmpxchg16b" | "bswap"
  // string instructions (element size = operand size; REP/REPE/REPNE in `rep`)
  | "movs" | "stos" | "lods" | "cmps" | "scas"
  // control flow
  | "jmp" | "jcc" | "call" | "ret" | "jmp_far" | "retf" | "leave" | "loop" | "loope" | "loopne" | "jrcxz"
  // flags and misc
  | "nop" | "pause" | "cld" | "std" | "clc" | "stc" | "cmc" | "in" | "out" | "ud2"
  | "cpuid" | "lfence" | "mfence" | "sfence" | "prefetch" | "endbr"
  // system
  | "syscall" | "sysret" | "sysexit" | "swapgs" | "iret" | "int" | "int3" | "int1" | "into"
  | "cli" | "sti" | "hlt" | "rdmsr" | "wrmsr" | "rdtsc" | "mov_from_cr" | "mov_to_cr"
  | "lgdt" | "lidt" | "sgdt" | "sidt" | "ltr" | "mov_to_sreg" | "mov_from_sreg"
  | "push_sreg" | "pop_sreg" | "stac" | "clac" | "clts" | "wbinvd" | "invd" | "invlpg"
  // system, issue 9
  | "sldt" | "str" | "lldt" | "verr" | "verw" | "smsw" | "lmsw" | "mov_from_dr" | "mov_to_dr"
  | "sysenter" | "rdpmc" | "rdtscp" | "xgetbv" | "xsetbv" | "wbnoinvd"
  | "rdfsbase" | "rdgsbase" | "wrfsbase" | "wrgsbase" | "invpcid";

export interface Instruction {
  readonly kind: "instruction";
  readonly mnemonic: Mnemonic;
  /** Encoded length in bytes (1–15). */
  readonly length: number;
  readonly bytes: Uint8Array;
  /** Effective operand size in bytes. */
  readonly operandSize: OperandSize;
  /** Effective address size in bytes (8, or 4 with the 67 prefix). */
  readonly addressSize: 4 | 8;
  /** Operands in Intel order (destination first). */
  readonly operands: readonly Operand[];
  readonly lock: boolean;
  readonly rep: "rep" | "repne" | null;
  readonly rexW: boolean;
  /** Condition code 0–15 (SDM "tttn") for Jcc, SETcc and CMOVcc. */
  readonly condition: number;
}

/** Bytes the model does not implement: the run stops with an `unsupported` outcome naming them. */
export interface Unsupported {
  readonly kind: "unsupported";
  readonly bytes: Uint8Array;
  readonly reason: string;
}
