// The system opcodes of the two-byte map (SDM Vol. 2D Tables ): group 6 (0F 00), group 7
// (0F 01, memory and register forms), MOV DR (0F 21/0F 23), the FSGSBASE forms of group 15
// (F3 0F AE), INVPCID (66 0F 38 82) and the encodings of features the modelled CPU lacks
// (docs/model-choices.md, rows "CPU features" and "Decoding: 0F 00, 0F 01"). A #UD decided by ModRM
// is raised once the whole instruction is fetched (its operand read), as everywhere in the decoder.
import type { OperandSize } from "./instruction.ts";
import { isStop, type DecodeContext, type Result } from "./context.ts";
import { memoryOperand, readModRM, rmOperand, type ModRM } from "./modrm.ts";

/** The prefix that selects among the 0F 01 register forms: the last of F2/F3, else 66, else none. */
type PrefixClass = "np" | "66" | "f3" | "f2";

function prefixClass(ctx: DecodeContext): PrefixClass {
  if (ctx.p.rep === "rep") return "f3";
  if (ctx.p.rep === "repne") return "f2";
  return ctx.p.operandSizeOverride ? "66" : "np";
}

const SVM = [0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf];
/**
 * 0F 01 register forms that are instructions of features the modelled CPU lacks, by prefix: in both
 * modes, and in 64-bit mode only. Every other register form that is not a modelled instruction is
 * reserved. (VMX, SGX, PCONFIG, WRMSRNS, MONITOR/MWAIT, RTM/HLE, SERIALIZE, PKU, MONITORX/MWAITX,
 * CLZERO, RDPRU, INVLPGB/TLBSYNC, MCOMMIT, SVM and VMGEXIT, TDX, FRED, CET, UINTR, TSXLDTRK, MSRLIST,
 * SEV-SNP, PBNDKB.)
 */
const ABSENT_0F01: Readonly<Record<PrefixClass, { readonly any: readonly number[]; readonly only64: readonly number[] }>> = {
  np: { any: [0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc8, 0xc9, 0xcf, 0xd4, 0xd5, 0xd6, 0xd7, ...SVM, 0xe8, 0xee, 0xef, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff], only64: [0xc7] },
  "66": { any: [0xcc, ...SVM, 0xfc], only64: [0xcd, 0xce, 0xcf] },
  f3: { any: [...SVM, 0xe8, 0xea, 0xfa, 0xfc], only64: [0xc6, 0xca, 0xec, 0xed, 0xee, 0xef, 0xfd, 0xfe, 0xff] },
  f2: { any: [...SVM, 0xe8, 0xe9, 0xfc, 0xff], only64: [0xc6, 0xca, 0xfe] },
};

function absentFeature(ctx: DecodeContext, modrm: number): boolean {
  const absent = ABSENT_0F01[prefixClass(ctx)];
  return absent.any.includes(modrm) || (ctx.mode64 && absent.only64.includes(modrm));
}

/**
 * 0F 00: /0 SLDT, /1 STR (r/m16: a register destination takes the operand size), /2 LLDT, /3 LTR,
 * /4 VERR, /5 VERW (r/m16); /6 and /7 are reserved (F2 /6 in 64-bit mode is LKGS, absent).
 * 66/F2/F3 change nothing else.
 */
export function group6(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const size = ctx.operandSize();
  switch (m.reg) {
    case 0: case 1: {
      const dst = rmOperand(ctx, m, size, 2);
      if (isStop(dst)) return dst;
      return ctx.decoded(m.reg === 0 ? "sldt" : "str", size, [dst]);
    }
    case 2: case 3: case 4: case 5: {
      const src = rmOperand(ctx, m, 2);
      if (isStop(src)) return src;
      return ctx.decoded((["lldt", "ltr", "verr", "verw"] as const)[m.reg - 2] ?? "ltr", 2, [src]);
    }
    default: {
      const operand = rmOperand(ctx, m, 2);
      if (isStop(operand)) return operand;
      return ctx.ud(m.reg === 6 && ctx.mode64 && ctx.p.rep === "repne" ? "DECODE-FEATURE" : "DECODE-RESERVED");
    }
  }
}

/**
 * 0F 01. Memory forms (66/F2/F3 ignored): /0 SGDT, /1 SIDT, /2 LGDT, /3 LIDT, /4 SMSW m16, /5
 * reserved (F3: RSTORSSP, absent), /6 LMSW m16, /7 INVLPG. Register forms (ModRM C0–FF) are
 * instructions of their own: E0–E7 SMSW r, F0–F7 LMSW r16, F8 SWAPGS (64-bit mode), F9 RDTSCP —
 * whatever 66/F2/F3 — and, with none of those prefixes (the SDM's "NP"), CA CLAC, CB STAC,
 * D0 XGETBV, D1 XSETBV; the rest are absent features or reserved.
 */
export function group7(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.mod !== 3) return group7Memory(ctx, m);
  const modrm = 0xc0 | (m.reg << 3) | m.rm;
  if (m.reg === 4) return ctx.decoded("smsw", ctx.operandSize(), [ctx.gpr(m.rm | ctx.rexB, ctx.operandSize())]);
  if (m.reg === 6) return ctx.decoded("lmsw", 2, [ctx.gpr(m.rm | ctx.rexB, 2)]);
  if (modrm === 0xf8) return ctx.mode64 ? ctx.decoded("swapgs", ctx.operandSize(), []) : ctx.ud("DECODE-MODE");
  if (modrm === 0xf9) return ctx.decoded("rdtscp", ctx.operandSize(), []);
  if (prefixClass(ctx) === "np") {
    switch (modrm) {
      case 0xca: return ctx.decoded("clac", ctx.operandSize(), []);
      case 0xcb: return ctx.decoded("stac", ctx.operandSize(), []);
      case 0xd0: return ctx.decoded("xgetbv", ctx.operandSize(), []);
      case 0xd1: return ctx.decoded("xsetbv", ctx.operandSize(), []);
    }
  }
  return ctx.ud(absentFeature(ctx, modrm) ? "DECODE-FEATURE" : "DECODE-RESERVED");
}

function group7Memory(ctx: DecodeContext, m: ModRM): Result {
  switch (m.reg) {
    case 0: case 1: case 2: case 3: {
      // Digest DT-01: 2-byte limit then an 8-byte base in 64-bit mode (4-byte base elsewhere).
      const table = memoryOperand(ctx, m, ctx.mode64 ? 10 : 6);
      if (isStop(table)) return table;
      const mnemonic = (["sgdt", "sidt", "lgdt", "lidt"] as const)[m.reg] ?? "sgdt";
      return ctx.decoded(mnemonic, ctx.mode64 ? 8 : ctx.operandSize(), [table]);
    }
    case 4: case 6: {
      const word = memoryOperand(ctx, m, 2);
      if (isStop(word)) return word;
      return m.reg === 4 ? ctx.decoded("smsw", ctx.operandSize(), [word]) : ctx.decoded("lmsw", 2, [word]);
    }
    case 5: {
      const operand = memoryOperand(ctx, m, 8);
      if (isStop(operand)) return operand;
      return ctx.ud(ctx.p.rep === "rep" ? "DECODE-FEATURE" : "DECODE-RESERVED");
    }
    default: {
      const page = memoryOperand(ctx, m, 0);
      if (isStop(page)) return page;
      return ctx.decoded("invlpg", ctx.operandSize(), [page]);
    }
  }
}

/** Debug registers that exist; DR8–DR15 would need REX.R, which is #UD (SDM MOV DR). */
const DEBUG_REGISTERS = 8;

/** 0F 21 / 0F 23, MOV r, DRn / MOV DRn, r: as MOV CR, the register form whatever ModRM.mod says,
 *  64-bit in 64-bit mode (66/REX.W ignored), 32-bit in compatibility mode; REX.R → #UD. */
export function movDr(ctx: DecodeContext, toDr: boolean): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (ctx.rexR !== 0 || m.reg >= DEBUG_REGISTERS) return ctx.ud("DECODE-DR");
  const size: OperandSize = ctx.mode64 ? 8 : 4;
  const gpr = ctx.gpr(m.rm | ctx.rexB, size);
  const dr = { kind: "dr", dr: m.reg } as const;
  return toDr ? ctx.decoded("mov_to_dr", size, [dr, gpr]) : ctx.decoded("mov_from_dr", size, [gpr, dr]);
}

/**
 * 0F AE: with F3 and ModRM.mod = 11, /0 RDFSBASE, /1 RDGSBASE, /2 WRFSBASE, /3 WRGSBASE (64-bit
 * mode only; REX.W → 64-bit operand), /4–/7 absent features (PTWRITE, INCSSP, UMONITOR) or
 * reserved. Without a prefix, the register forms /5 /6 /7 are LFENCE, MFENCE, SFENCE (any rm).
 * The memory forms (FXSAVE, LDMXCSR, XSAVE, CLFLUSH, ...) and the other prefixed register forms
 * are not modelled here.
 */
export function group15(ctx: DecodeContext): Result {
  // The ModRM byte is part of the bytes an `unsupported` step names (docs/model-choices.md).
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (ctx.p.rep === "rep" && m.mod === 3) {
    // PTWRITE (/4) takes no 66; /7 is no instruction.
    if (m.reg >= 4) return ctx.ud(m.reg === 7 || (m.reg === 4 && ctx.p.operandSizeOverride) ? "DECODE-RESERVED" : "DECODE-FEATURE");
    if (!ctx.mode64) return ctx.ud("DECODE-MODE");
    const size: OperandSize = ctx.rexW ? 8 : 4;
    const mnemonic = (["rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase"] as const)[m.reg] ?? "rdfsbase";
    return ctx.decoded(mnemonic, size, [ctx.gpr(m.rm | ctx.rexB, size)]);
  }
  const prefixed = ctx.p.operandSizeOverride || ctx.p.rep !== null;
  if (m.mod === 3 && !prefixed && m.reg >= 5) return ctx.decoded((["lfence", "mfence", "sfence"] as const)[m.reg - 5] ?? "mfence", ctx.operandSize(), []);
  return ctx.unsupported(m.mod === 3 ? "0F AE register form" : "0F AE memory form (FXSAVE, LDMXCSR, XSAVE, CLFLUSH, ...)");
}

/**
 * 0F 38 xx: only the system instructions of the three-byte map. 66 0F 38 82 INVPCID (memory
 * operand only; the register operand is 64-bit in 64-bit mode, 32-bit in compatibility mode);
 * 66 0F 38 80/81 INVEPT/INVVPID (VMX, absent). Everything else there is not modelled.
 */
export function threeByte38(ctx: DecodeContext): Result {
  const op = ctx.r.u8();
  if (isStop(op)) return op;
  if (op !== 0x80 && op !== 0x81 && op !== 0x82) return ctx.unsupported(`opcode 0f 38 ${op.toString(16).padStart(2, "0")}`);
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const system = ctx.p.operandSizeOverride && ctx.p.rep === null;
  if (!system) return op === 0x82 ? ctx.ud("DECODE-RESERVED") : ctx.unsupported(`opcode 0f 38 ${op.toString(16)}`);
  if (m.mod === 3) return ctx.ud("DECODE-MEMORY-ONLY");
  const descriptor = memoryOperand(ctx, m, 16);
  if (isStop(descriptor)) return descriptor;
  if (op !== 0x82) return ctx.ud("DECODE-FEATURE");
  const size: OperandSize = ctx.mode64 ? 8 : 4;
  return ctx.decoded("invpcid", size, [ctx.gpr(m.reg | ctx.rexR, size), descriptor]);
}

/**
 * 0F C7: /1 with a memory operand is CMPXCHG8B (CMPXCHG16B with REX.W); its register form is #UD.
 * Memory forms of absent features: /3 XRSTORS, /5 XSAVES (no prefix), /6 VMPTRLD (no prefix),
 * VMCLEAR (66), VMXON (F3), /7 VMPTRST (no prefix) — #UD. Every other 0F C7 form (XSAVEC, RDRAND,
 * RDSEED, RDPID, ...) is not modelled here.
 */
export function group9(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.reg === 1) {
    if (m.mod === 3) return ctx.ud("DECODE-MEMORY-ONLY");
    const size: OperandSize = ctx.rexW ? 8 : 4;
    const target = memoryOperand(ctx, m, 2 * size);
    if (isStop(target)) return target;
    return ctx.decoded(ctx.rexW ? "cmpxchg16b" : "cmpxchg8b", size, [target]);
  }
  const cls = prefixClass(ctx);
  const absent = m.mod !== 3 && (((m.reg === 3 || m.reg === 5 || m.reg === 7) && cls === "np") || (m.reg === 6 && cls !== "f2"));
  if (!absent) return ctx.unsupported("0F C7 form");
  const operand = memoryOperand(ctx, m, 8);
  if (isStop(operand)) return operand;
  return ctx.ud("DECODE-FEATURE");
}

/** 0F 78 / 0F 79 without a prefix: VMREAD / VMWRITE (VMX, absent) — #UD once the operand is read.
 *  With 66 or F2 they are AMD's EXTRQ/INSERTQ: not modelled. */
export function vmreadVmwrite(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (prefixClass(ctx) !== "np") return ctx.unsupported("EXTRQ/INSERTQ");
  const operand = rmOperand(ctx, m, ctx.mode64 ? 8 : 4);
  if (isStop(operand)) return operand;
  return ctx.ud("DECODE-FEATURE");
}

/** 0F 37 GETSEC (SMX, absent), an "NP" instruction: with 66/F2/F3 it is no instruction at all. */
export function getsec(ctx: DecodeContext): Result {
  return ctx.ud(prefixClass(ctx) === "np" ? "DECODE-FEATURE" : "DECODE-RESERVED");
}
