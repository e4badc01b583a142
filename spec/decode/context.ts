// What every opcode handler needs: the byte reader, the mode, the prefixes, and the size rules
// (SDM Vol. 1 §3.6, Vol. 2A §2.2.1.2 "operand size in 64-bit mode").
import { fault, isFault, UD, type Fault } from "../fault.ts";
import type { RuleId } from "../rules/rule.ts";
import type { Mnemonic, Operand, OperandSize, Unsupported } from "./instruction.ts";
import type { Prefixes } from "./prefixes.ts";
import type { ByteReader } from "./reader.ts";

/** What an opcode handler produces; decode() adds length, bytes and the prefix fields. */
export interface Decoded {
  readonly kind: "decoded";
  readonly mnemonic: Mnemonic;
  readonly operandSize: OperandSize;
  readonly operands: readonly Operand[];
  readonly condition?: number;
}

/** Anything that ends decoding early. */
export type Stop = Fault | Unsupported;
export type Result = Decoded | Stop;

export function isStop(x: unknown): x is Stop {
  const kind = (x as { kind?: unknown }).kind;
  return kind === "fault" || kind === "unsupported";
}

export class DecodeContext {
  readonly rexW: boolean;
  /** REX.R/X/B as the value added to a 3-bit register field (0 or 8). */
  readonly rexR: number;
  readonly rexX: number;
  readonly rexB: number;
  /** Any REX prefix (even 40) makes byte registers 4–7 SPL/BPL/SIL/DIL instead of AH/CH/DH/BH. */
  readonly hasRex: boolean;
  /** Address size: 8 in 64-bit mode (4 with 67); 4 in compatibility mode (2 with 67 — not modelled). */
  readonly addressSize: 2 | 4 | 8;

  constructor(readonly r: ByteReader, readonly mode64: boolean, readonly p: Prefixes) {
    this.rexW = (p.rex & 8) !== 0;
    this.rexR = (p.rex & 4) << 1;
    this.rexX = (p.rex & 2) << 2;
    this.rexB = (p.rex & 1) << 3;
    this.hasRex = p.rex !== 0;
    this.addressSize = mode64 ? (p.addressSizeOverride ? 4 : 8) : p.addressSizeOverride ? 2 : 4;
  }

  /** Ordinary operand size: 32, 16 with 66, 64 with REX.W (REX.W wins over 66). */
  operandSize(): 2 | 4 | 8 {
    if (this.rexW) return 8;
    return this.p.operandSizeOverride ? 2 : 4;
  }

  /** Stack operations (PUSH, POP, PUSHF, POPF, push/pop Sreg): 64-bit by default in 64-bit mode,
   *  16-bit with 66; no 32-bit form exists in 64-bit mode. */
  stackOperandSize(): 2 | 4 | 8 {
    if (this.mode64) return this.p.operandSizeOverride && !this.rexW ? 2 : 8;
    return this.p.operandSizeOverride ? 2 : 4;
  }

  /** Near branches (JMP, Jcc, CALL, RET): fixed at 64 bits in 64-bit mode — Intel ignores 66 there
   *  (AMD honours it; SDM Vol. 2A §2.2.1.3). In compatibility mode 66 makes them 16-bit. */
  branchOperandSize(): 2 | 4 | 8 {
    if (this.mode64) return 8;
    return this.p.operandSizeOverride ? 2 : 4;
  }

  /** Size of a full-size immediate (iz): 2 with a 16-bit operand size, otherwise 4. */
  immediateSize(operandSize: OperandSize): 2 | 4 {
    return operandSize === 2 ? 2 : 4;
  }

  /** General register `reg` (0–15) at `size`. */
  gpr(reg: number, size: OperandSize): Operand {
    return { kind: "reg", reg, size, high8: size === 1 && !this.hasRex && reg >= 4 && reg <= 7 };
  }

  /** Reads an immediate of `bytes` bytes, sign-extends it and masks it to `size` bytes. */
  signedImm(bytes: 1 | 2 | 4 | 8, size: OperandSize): Operand | Fault {
    const raw = this.r.uint(bytes);
    if (isFault(raw)) return raw;
    return { kind: "imm", value: BigInt.asUintN(8 * size, BigInt.asIntN(8 * bytes, raw)), size };
  }

  /** Reads an unsigned immediate of `bytes` bytes (shift counts, INT n, RET iw). */
  unsignedImm(bytes: 1 | 2): Operand | Fault {
    const raw = this.r.uint(bytes);
    if (isFault(raw)) return raw;
    return { kind: "imm", value: raw, size: bytes };
  }

  /** Reads a relative branch displacement of `bytes` bytes. */
  rel(bytes: 1 | 2 | 4): Operand | Fault {
    const raw = this.r.uint(bytes);
    if (isFault(raw)) return raw;
    return { kind: "rel", disp: BigInt.asIntN(8 * bytes, raw) };
  }

  ud(rule: RuleId): Fault {
    return fault(rule, UD);
  }

  /** Valid on a real CPU but outside the model: the run stops, naming the bytes read so far. */
  unsupported(what: string): Unsupported {
    const bytes = Uint8Array.from(this.r.bytes);
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    return { kind: "unsupported", bytes, reason: `${what} not modelled (bytes ${hex})` };
  }

  decoded(mnemonic: Mnemonic, operandSize: OperandSize, operands: readonly Operand[], condition?: number): Decoded {
    return condition === undefined
      ? { kind: "decoded", mnemonic, operandSize, operands }
      : { kind: "decoded", mnemonic, operandSize, operands, condition };
  }
}
