// ModRM, SIB and displacement: the r/m operand (SDM Vol. 2A §2.1.5, Tables 2-2 and 2-3; 64-bit
// forms §2.2.1.1–§2.2.1.6). 16-bit addressing (67 in compatibility mode) is not modelled.
import { isFault, type Fault } from "../fault.ts";
import type { MemOperand, Operand, OperandSize, SregName } from "./instruction.ts";
import type { DecodeContext, Stop } from "./context.ts";

export interface ModRM {
  readonly mod: number;
  /** The 3-bit reg field, without REX.R (it is an opcode extension as often as a register). */
  readonly reg: number;
  readonly rm: number;
}

export function readModRM(ctx: DecodeContext): ModRM | Fault {
  const b = ctx.r.u8();
  if (isFault(b)) return b;
  return { mod: b >> 6, reg: (b >> 3) & 7, rm: b & 7 };
}

/** The register named by ModRM.reg (extended by REX.R). */
export function regOperand(ctx: DecodeContext, m: ModRM, size: OperandSize): Operand {
  return ctx.gpr(m.reg | ctx.rexR, size);
}

/** The r/m operand: a register when mod = 11, else memory of `memSize` bytes. */
export function rmOperand(ctx: DecodeContext, m: ModRM, regSize: OperandSize, memSize: number = regSize): Operand | Stop {
  if (m.mod === 3) return ctx.gpr(m.rm | ctx.rexB, regSize);
  return memoryOperand(ctx, m, memSize);
}

/** The memory operand of a ModRM with mod ≠ 11, reading SIB and displacement. */
export function memoryOperand(ctx: DecodeContext, m: ModRM, size: number): MemOperand | Stop {
  if (ctx.addressSize === 2) return ctx.unsupported("16-bit addressing");
  let base: number | null;
  let index: number | null = null;
  let scale: MemOperand["scale"] = 1;
  let ripRelative = false;
  let dispBytes: 0 | 1 | 4 = m.mod === 1 ? 1 : m.mod === 2 ? 4 : 0;
  if (m.rm === 4) {
    const sib = ctx.r.u8();
    if (isFault(sib)) return sib;
    const sibIndex = ((sib >> 3) & 7) | ctx.rexX;
    // Index 100b means "no index" — but with REX.X it is R12, a real index.
    if (sibIndex !== 4) {
      index = sibIndex;
      scale = (1 << (sib >> 6)) as MemOperand["scale"];
    }
    // Base 101b with mod = 00 means "disp32, no base", whatever REX.B says (so R13 needs a disp8).
    if ((sib & 7) === 5 && m.mod === 0) {
      base = null;
      dispBytes = 4;
    } else {
      base = (sib & 7) | ctx.rexB;
    }
  } else if (m.rm === 5 && m.mod === 0) {
    // In 64-bit mode this is RIP-relative (EIP-relative with 67); elsewhere an absolute disp32.
    // REX.B does not change it.
    base = null;
    ripRelative = ctx.mode64;
    dispBytes = 4;
  } else {
    base = m.rm | ctx.rexB;
  }
  let disp = 0n;
  if (dispBytes !== 0) {
    const raw = ctx.r.uint(dispBytes);
    if (isFault(raw)) return raw;
    disp = BigInt.asIntN(8 * dispBytes, raw);
  }
  return memory(ctx, size, base, index, scale, disp, ripRelative);
}

/** MOV A0–A3: an absolute offset (moffs) as wide as the address size; no ModRM. */
export function moffsOperand(ctx: DecodeContext, size: number): MemOperand | Stop {
  if (ctx.addressSize === 2) return ctx.unsupported("16-bit addressing");
  const raw = ctx.r.uint(ctx.addressSize);
  if (isFault(raw)) return raw;
  // Stored as a signed displacement like any other; effective address = disp mod 2^(8·addressSize).
  return memory(ctx, size, null, null, 1, BigInt.asIntN(8 * ctx.addressSize, raw), false);
}

/**
 * The implicit operands of the string instructions (SDM Vol. 1 §7.3.9.1): the source DS:[RSI]
 * (the segment may be overridden) or the destination ES:[RDI] (never overridden), `size` bytes, at
 * the instruction's address size. No ModRM, no displacement.
 */
export function stringOperand(ctx: DecodeContext, which: "source" | "destination", size: number): MemOperand | Stop {
  if (ctx.addressSize === 2) return ctx.unsupported("16-bit addressing");
  const base = which === "source" ? 6 : 7; // RSI, RDI
  const segment: SregName = which === "source" ? (ctx.p.segment ?? "ds") : "es";
  return {
    kind: "mem", size, segment, stackSegment: segment === "ss", base, index: null, scale: 1, disp: 0n, ripRelative: false,
    addressSize: ctx.addressSize === 8 ? 8 : 4,
  };
}

function memory(
  ctx: DecodeContext, size: number, base: number | null, index: number | null,
  scale: MemOperand["scale"], disp: bigint, ripRelative: boolean,
): MemOperand {
  // SDM Vol. 1 §3.7.4 Table 3-5: SS is the default for a base of (E/R)SP or (E/R)BP — register
  // numbers 4 and 5 exactly. R12 and R13 share those low bits but are not "SP/BP" and default to
  // DS (QEMU and iced-x86 agree). An FS/GS override (any override outside 64-bit mode) replaces it.
  const segment: SregName = ctx.p.segment ?? (base === 4 || base === 5 ? "ss" : "ds");
  return {
    kind: "mem", size, segment, stackSegment: segment === "ss", base, index, scale, disp, ripRelative,
    addressSize: ctx.addressSize === 8 ? 8 : 4,
  };
}
