// SETcc and CMOVcc — SDM Vol. 2B "SETcc—Set Byte on Condition", Vol. 2A "CMOVcc—Conditional
// Move". The conditions are Jcc's (tttn, control-flow.ts). Neither affects a flag.
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { operand, sizeOf } from "./operands.ts";
import { conditionHolds } from "./control-flow.ts";

/** SETcc r/m8: 1 when the condition holds, else 0. */
export const setcc: Semantics = (t, insn) => {
  const value = conditionHolds(insn.condition, t.rflags) ? 1n : 0n;
  return t.write(operand(insn, 0), value, t.rip, "SETCC-01");
};

/**
 * CMOVcc: `temp ← SRC` always — a memory source is read (and may fault) whatever the condition —
 * then `DEST ← temp` when it holds. When it does not, a 32-bit destination still has bits 63:32
 * cleared (the SDM's "ELSE IF (OperandSize = 32 and IA-32e mode active) THEN DEST[63:32] := 0").
 */
export const cmovcc: Semantics = (t, insn) => {
  const next = t.rip;
  const dst = operand(insn, 0);
  const temp = t.read(operand(insn, 1), next);
  if (isFault(temp)) return temp;
  if (conditionHolds(insn.condition, t.rflags)) return t.write(dst, temp, next, "CMOV-01");
  // The destination is a register (Gv): written with its own low half, or left as it is.
  if (dst.kind === "reg" && sizeOf(dst, insn) === 4) t.writeGpr("CMOV-02", dst.reg, t.readReg(dst.reg, 4));
  else t.hit("CMOV-01");
  return undefined;
};
