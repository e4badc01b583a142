// THE table of status flags the SDM leaves undefined, per mnemonic, and what this model produces
// for them. Vectors that must hold on any CPU leave these flags out of the comparison; generators
// read `undefinedFlags` for the exact mask of one instruction instance. impl/ must produce the
// same values so that spec and impl agree bit for bit.
//
// The choices follow what Intel processors are documented (sandpile.org "undefined integer FLAGS
// behavior", P4/Core column) to produce where that is well known and simple; otherwise the flag is
// left unchanged. A flag not listed for a mnemonic is defined by the SDM (or unaffected).
//
// Vendors really differ here, which is why vectors must mask these flags: on an AMD EPYC host the
// project measured MUL leaving SF/ZF/AF/PF unchanged, DIV changing CF/AF/OF, and every shift with a
// non-zero count setting AF = 1 — all different from the values below. The OF choices for shifts and
// rotates with counts > 1 and the CF choices for long 8/16-bit shifts agreed with that host.
import type { Mnemonic, OperandSize } from "../decode/instruction.ts";
import { RFLAGS } from "../machine/registers.ts";

const { CF, PF, AF, ZF, SF, OF } = RFLAGS;

export interface UndefinedFlagsEntry {
  /** Every flag the SDM leaves undefined for at least one operand combination. */
  readonly mask: bigint;
  /** The value the model produces for each of them, and why. */
  readonly produced: string;
}

export const UNDEFINED_FLAGS: Readonly<Partial<Record<Mnemonic, UndefinedFlagsEntry>>> = {
  and: { mask: AF, produced: "AF = 0 (Intel clears it)" },
  or: { mask: AF, produced: "AF = 0 (Intel clears it)" },
  xor: { mask: AF, produced: "AF = 0 (Intel clears it)" },
  test: { mask: AF, produced: "AF = 0 (Intel clears it)" },
  mul: { mask: SF | ZF | AF | PF, produced: "SF, ZF, PF from the low half of the product (AL/AX/EAX/RAX); AF = 0" },
  imul: { mask: SF | ZF | AF | PF, produced: "SF, ZF, PF from the low half of the product (the destination or AL/AX/EAX/RAX); AF = 0" },
  div: { mask: CF | PF | AF | ZF | SF | OF, produced: "all six unchanged" },
  idiv: { mask: CF | PF | AF | ZF | SF | OF, produced: "all six unchanged" },
  bsf: { mask: CF | OF | SF | AF | PF, produced: "source ≠ 0: CF = OF = AF = 0, SF and PF from the bit index; source = 0: unchanged" },
  bsr: { mask: CF | OF | SF | AF | PF, produced: "source ≠ 0: CF = OF = AF = 0, SF and PF from the bit index; source = 0: unchanged" },
  bt: { mask: OF | SF | AF | PF, produced: "unchanged" },
  bts: { mask: OF | SF | AF | PF, produced: "unchanged" },
  btr: { mask: OF | SF | AF | PF, produced: "unchanged" },
  btc: { mask: OF | SF | AF | PF, produced: "unchanged" },
  shl: {
    mask: OF | AF | CF,
    produced: "count ≠ 0: AF = 0; OF = MSB(result) XOR CF for every count (the count-1 formula); " +
      "CF = the last bit shifted out (count = width: the original bit 0), 0 once the count exceeds the width (8/16-bit only)",
  },
  shr: {
    mask: OF | AF | CF,
    produced: "count ≠ 0: AF = 0; OF = MSB(result) XOR bit width−2 of the result (count 1: the original MSB; " +
      "counts ≥ 2: 0); CF = the last bit shifted out, 0 once the count exceeds the operand width (8/16-bit only)",
  },
  sar: { mask: OF | AF, produced: "count ≠ 0: AF = 0; OF = 0 for every count" },
  rol: { mask: OF, produced: "masked count ≠ 0: OF = MSB(result) XOR CF(new) for every count" },
  ror: { mask: OF, produced: "masked count ≠ 0: OF = MSB(result) XOR bit width−2 of result for every count" },
  rcl: { mask: OF, produced: "masked count ≠ 0: OF = MSB(result) XOR CF(new) for every count" },
  rcr: { mask: OF, produced: "masked count ≠ 0: OF = MSB(result) XOR bit width−2 of result for every count" },
};

export interface FlagContext {
  readonly operandSize?: OperandSize;
  /** The shift/rotate count as encoded (before masking). */
  readonly count?: bigint;
}

/**
 * The undefined flags of one instruction instance. Shifts and rotates depend on the count: a masked
 * count of 0 changes nothing; a count of 1 leaves only AF undefined (shifts); larger counts add OF,
 * and CF for SHL/SHR when the count reaches (SHL) or exceeds (SHR) the operand width — the SDM says
 * "greater than or equal to" for both; the mask covers both. Without a count the
 * worst case (the table's mask) is returned.
 */
export function undefinedFlags(mnemonic: Mnemonic, context: FlagContext = {}): bigint {
  const entry = UNDEFINED_FLAGS[mnemonic];
  if (entry === undefined) return 0n;
  const isShift = mnemonic === "shl" || mnemonic === "shr" || mnemonic === "sar";
  const isRotate = mnemonic === "rol" || mnemonic === "ror" || mnemonic === "rcl" || mnemonic === "rcr";
  if (!(isShift || isRotate) || context.count === undefined || context.operandSize === undefined) return entry.mask;
  const width = BigInt(8 * context.operandSize);
  const count = context.count & (context.operandSize === 8 ? 0x3fn : 0x1fn);
  if (count === 0n) return 0n;
  let mask = isShift ? AF : 0n;
  if (count !== 1n) mask |= OF;
  if ((mnemonic === "shl" || mnemonic === "shr") && count >= width) mask |= CF;
  return mask;
}
