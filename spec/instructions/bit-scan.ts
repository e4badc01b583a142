// BSF, BSR — SDM Vol. 2A "BSF—Bit Scan Forward", "BSR—Bit Scan Reverse" (F3 0F BC/BD too: without
// BMI1/LZCNT they execute as BSF/BSR, docs/model-choices.md), and BSWAP — Vol. 2A "BSWAP".
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { RFLAGS } from "../machine/registers.ts";
import { negative, parity } from "./flags.ts";
import { operand, setStatus, sizeOf } from "./operands.ts";

/**
 * BSF/BSR: source ≠ 0 → the index of its lowest (BSF) or highest (BSR) set bit, ZF = 0 (BSF-01);
 * source = 0 → ZF = 1 and the destination is left as it was, except that a 32-bit destination
 * register has bits 63:32 cleared (BSF-02). The flags the SDM leaves undefined are those of a
 * logical result (CF = OF = AF = 0, SF and PF from the index) when the source is not 0, and
 * unchanged when it is (undefined-flags.ts).
 */
function bitScan(reverse: boolean): Semantics {
  return (t, insn) => {
    const next = t.rip;
    const dst = operand(insn, 0);
    const source = t.read(operand(insn, 1), next);
    if (isFault(source)) return source;
    const size = sizeOf(dst, insn);
    if (source === 0n) {
      if (dst.kind === "reg" && size === 4) t.writeGpr("BSF-02", dst.reg, t.readReg(dst.reg, 4));
      t.update("BSF-02", { rflags: t.rflags | RFLAGS.ZF });
      return undefined;
    }
    const index = BigInt(reverse ? source.toString(2).length - 1 : (source & -source).toString(2).length - 1);
    const f = t.write(dst, index, next);
    if (isFault(f)) return f;
    // ZF = 0 even for index 0 (bit 0 set): ZF says whether the source was 0, not the index.
    setStatus(t, "BSF-01", { cf: false, pf: parity(index), af: false, zf: false, sf: negative(index, size), of: false });
    return undefined;
  };
}

export const bsf = bitScan(false);
export const bsr = bitScan(true);

/** BSWAP r32 / r64: the bytes in reverse order (r32 zero-extends). BSWAP r16 is undefined in the
 *  SDM; the model clears the low 16 bits, as processors do (BSWAP-01). */
export const bswap: Semantics = (t, insn) => {
  const dst = operand(insn, 0);
  if (dst.kind !== "reg") throw new Error("bswap: expected a register");
  const size = dst.size;
  const value = t.readReg(dst.reg, size);
  let swapped = 0n;
  if (size !== 2) for (let i = 0n; i < BigInt(size); i++) swapped |= ((value >> (8n * i)) & 0xffn) << (8n * (BigInt(size) - 1n - i));
  return t.write(dst, swapped, t.rip, "BSWAP-01");
};
