// The instruction decoder: bytes at RIP → an Instruction (operand size, address size and every
// operand fixed), `unsupported` for valid bytes outside the model, or the fault the CPU raises
// while fetching or decoding (#PF/#GP on fetch, #GP(0) for > 15 bytes, #UD).
//
// Reading order: prefixes.ts (legacy prefixes, REX) → one-byte.ts / two-byte.ts (opcode maps) →
// modrm.ts (ModRM, SIB, displacement) → context.ts (operand-size rules). This file only glues
// them together and applies the LOCK rule, which depends on the whole instruction.
import { fault, UD, type Fault } from "../fault.ts";
import type { Instruction, Mnemonic, Unsupported } from "./instruction.ts";
import { DecodeContext, isStop } from "./context.ts";
import { decodeOneByte } from "./one-byte.ts";
import { scanPrefixes } from "./prefixes.ts";
import { ByteReader, type FetchByte } from "./reader.ts";
import { decodeTwoByte } from "./two-byte.ts";

export type { FetchByte } from "./reader.ts";

/** SDM Vol. 2A §2.1.1 "LOCK": the instructions LOCK may prefix — and only with a memory destination. */
const LOCKABLE: ReadonlySet<Mnemonic> = new Set<Mnemonic>([
  "add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "cmpxchg8b", "cmpxchg16b", "dec", "inc", "neg", "not", "or",
  "sbb", "sub", "xadd", "xor", "xchg",
]);

/** Decodes one instruction. `mode64`: 64-bit mode; otherwise compatibility mode with a 32-bit
 *  code segment (CS.D = 1): no REX, 40–4F are INC/DEC, operand and address size 32. */
export function decode(fetch: FetchByte, mode64: boolean): Instruction | Unsupported | Fault {
  const r = new ByteReader(fetch);
  const scanned = scanPrefixes(r, mode64);
  if (isStop(scanned)) return scanned;
  const { prefixes, opcode } = scanned;
  const ctx = new DecodeContext(r, mode64, prefixes);
  const d = opcode === 0x0f ? decodeTwoByte(ctx) : decodeOneByte(ctx, opcode);
  if (isStop(d)) return d;
  if (prefixes.lock && !(LOCKABLE.has(d.mnemonic) && d.operands[0]?.kind === "mem")) return fault("DECODE-LOCK", UD);
  return {
    kind: "instruction",
    mnemonic: d.mnemonic,
    length: r.bytes.length,
    bytes: new Uint8Array(r.bytes),
    operandSize: d.operandSize,
    // 67 in compatibility mode (16-bit addressing) never gets here with a memory operand.
    addressSize: ctx.addressSize === 8 ? 8 : 4,
    operands: d.operands,
    lock: prefixes.lock,
    rep: prefixes.rep,
    rexW: ctx.rexW,
    condition: d.condition ?? 0,
  };
}
