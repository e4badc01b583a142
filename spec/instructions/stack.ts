// PUSH, POP (register, immediate, r/m), PUSHF/PUSHFQ, POPF/POPFQ — SDM Vol. 2B instruction pages and
// digest §14 (FLAGS-01..03). Stack accesses go through Transaction.push/pop (#SS on non-canonical).
// Sizes: 64-bit by default in 64-bit mode, 16-bit with 66 (the decoder fixes insn.operandSize).
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { iopl, RBP, RFLAGS, RFLAGS_DEFINED, RSP, sizeMask } from "../machine/registers.ts";
import { operand } from "./operands.ts";

/** PUSH: the value is read before RSP moves, so PUSH RSP pushes the old RSP and PUSH [RSP+d]
 *  addresses with the old RSP (SDM PUSH). */
export const push: Semantics = (t, insn) => {
  const value = t.read(operand(insn, 0), t.rip);
  if (isFault(value)) return value;
  return t.push(value, insn.operandSize, "STACK-01");
};

/** POP: RSP is incremented before the destination is written, so POP [RSP+d] addresses with the
 *  new RSP, and POP RSP leaves the popped value in RSP (SDM POP). */
export const pop: Semantics = (t, insn) => {
  const value = t.pop(insn.operandSize);
  if (isFault(value)) return value;
  return t.write(operand(insn, 0), value, t.rip, "STACK-02");
};

/** FLAGS-01: the pushed image has RF and VM as 0; no IOPL check outside virtual-8086 mode. */
export const pushf: Semantics = (t, insn) => t.push(t.rflags & ~(RFLAGS.RF | RFLAGS.VM), insn.operandSize, "FLAGS-01");

/** The RFLAGS bits POPF may load at the current privilege (FLAGS-02): never RF (cleared), VM,
 *  VIF or VIP; IOPL only at CPL 0; IF only when CPL ≤ IOPL — otherwise silently kept. */
export function popfWritable(cpl: number, currentIopl: number, operandSize: number): bigint {
  let writable = RFLAGS_DEFINED & ~(RFLAGS.RF | RFLAGS.VM | RFLAGS.VIF | RFLAGS.VIP);
  if (cpl > 0) writable &= ~RFLAGS.IOPL;
  if (cpl > currentIopl) writable &= ~RFLAGS.IF;
  // 16-bit POPF loads FLAGS only; bits 31:16 keep their values.
  return writable & sizeMask(operandSize);
}

export const popf: Semantics = (t, insn) => {
  const image = t.pop(insn.operandSize);
  if (isFault(image)) return image;
  const writable = popfWritable(t.cpl(), iopl(t.m), insn.operandSize);
  // Reserved bits are fixed (bit 1 reads 1, the others 0); RF was already cleared by the step.
  const rflags = (((t.rflags & ~writable) | (image & writable)) & RFLAGS_DEFINED) | RFLAGS.FIXED1;
  // FLAGS-03: a TF set here traps after the *next* instruction; the step loop decides that from TF
  // at the start of each instruction, so only the flag is written.
  if ((rflags & ~t.rflags & RFLAGS.TF) !== 0n) t.hit("FLAGS-03");
  t.update("FLAGS-02", { rflags: rflags & ~RFLAGS.RF });
  return undefined;
};



/** LEAVE: RSP ← RBP, then RBP ← POP (8 bytes; 2 into BP with 66). The pop reads at the new RSP;
 *  if it faults, nothing has changed. */
export const leave: Semantics = (t, insn) => {
  t.setGpr(RSP, t.gpr(RBP));
  const value = t.pop(insn.operandSize);
  if (isFault(value)) return value;
  t.writeReg(RBP, insn.operandSize, value);
  t.hit("LEAVE-01");
  return undefined;
};
