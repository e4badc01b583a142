// MOVS, STOS, LODS, CMPS, SCAS and their REP/REPE/REPNE forms — SDM Vol. 2B "MOVS/MOVSB/...",
// "STOS", "LODS", "CMPS", "SCAS", "REP/REPE/REPZ/REPNE/REPNZ", Vol. 1 §7.3.9.
//
// One step is one iteration (docs/model-choices.md, "REP string instructions"). A repeated
// instruction whose count register is 0 completes without an iteration (REP-01). Otherwise the
// step does one element (STR-01..05), moves RSI/RDI by the element size (backwards with DF = 1)
// and counts down (REP-02); if the repetition goes on, RIP stays at the instruction and RF is set
// (REP-03), so an event taken between iterations pushes RF = 1 and the IRET back resumes the
// string instruction where it stopped. REPE/REPNE end CMPS/SCAS early on ZF (REP-04). A fault in an
// iteration keeps nothing of that iteration (the step's transaction) and leaves the completed ones
// (REP-05): RCX, RSI and RDI say how far the string got.
import { isFault, type Fault } from "../fault.ts";
import type { Instruction, MemOperand } from "../decode/instruction.ts";
import type { Semantics } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { MASK64, RAX, RCX, RDI, RFLAGS, RSI, sizeMask } from "../machine/registers.ts";
import { subWithBorrow } from "./flags.ts";
import { operand, setStatus } from "./operands.ts";

/** The element operation of one iteration: its accesses and register updates. */
type Element = (t: Transaction, insn: Instruction, next: bigint) => Fault | undefined;

const memory = (insn: Instruction, i: number): MemOperand => {
  const op = operand(insn, i);
  if (op.kind !== "mem") throw new Error(`${insn.mnemonic}: operand ${i} must be memory`);
  return op;
};

/** MOVS: ES:[RDI] ← DS:[RSI] (the source read first). */
const moveElement: Element = (t, insn, next) => {
  const value = t.read(memory(insn, 1), next);
  if (isFault(value)) return value;
  return t.write(memory(insn, 0), value, next, "STR-01");
};

/** STOS: ES:[RDI] ← AL/AX/EAX/RAX. */
const storeElement: Element = (t, insn, next) => t.write(memory(insn, 0), t.readReg(RAX, insn.operandSize), next, "STR-02");

/** LODS: AL/AX/EAX/RAX ← DS:[RSI] (EAX zero-extends). */
const loadElement: Element = (t, insn, next) => {
  const value = t.read(memory(insn, 0), next);
  if (isFault(value)) return value;
  t.writeReg(RAX, insn.operandSize, value);
  t.hit("STR-03");
  return undefined;
};

/** CMPS: the flags of DS:[RSI] − ES:[RDI] (the first source read first), as CMP. */
const compareElement: Element = (t, insn, next) => {
  const a = t.read(memory(insn, 0), next);
  if (isFault(a)) return a;
  const b = t.read(memory(insn, 1), next);
  if (isFault(b)) return b;
  setStatus(t, "STR-04", subWithBorrow(a, b, false, insn.operandSize).flags);
  return undefined;
};

/** SCAS: the flags of AL/AX/EAX/RAX − ES:[RDI], as CMP. */
const scanElement: Element = (t, insn, next) => {
  const b = t.read(memory(insn, 0), next);
  if (isFault(b)) return b;
  setStatus(t, "STR-05", subWithBorrow(t.readReg(RAX, insn.operandSize), b, false, insn.operandSize).flags);
  return undefined;
};

/** RSI and/or RDI, moved by the element size at the address size (32-bit writes zero-extend). */
function advance(t: Transaction, insn: Instruction, registers: readonly number[]): void {
  const step = BigInt(insn.operandSize);
  const delta = (t.rflags & RFLAGS.DF) !== 0n ? -step : step;
  for (const reg of registers) t.writeReg(reg, insn.addressSize, (t.readReg(reg, insn.addressSize) + delta) & sizeMask(insn.addressSize));
}

function stringInstruction(element: Element, registers: readonly number[], comparing: boolean): Semantics {
  return (t, insn) => {
    const next = t.rip;
    const repeated = insn.rep !== null;
    const count = repeated ? t.readReg(RCX, insn.addressSize) : 1n;
    if (count === 0n) {
      t.hit("REP-01");
      return undefined;
    }
    const f = element(t, insn, next);
    if (isFault(f)) return f;
    advance(t, insn, registers);
    if (!repeated) return undefined;
    const left = (count - 1n) & sizeMask(insn.addressSize);
    t.writeReg(RCX, insn.addressSize, left);
    t.hit("REP-02");
    if (left === 0n) return undefined;
    if (comparing) {
      // REPE (F3) goes on while ZF = 1, REPNE (F2) while ZF = 0.
      const zf = (t.rflags & RFLAGS.ZF) !== 0n;
      t.hit("REP-04");
      if (zf !== (insn.rep === "rep")) return undefined;
    }
    // More to do: RIP back to this instruction, RF = 1 for an event taken before the next iteration.
    const rip = (next - BigInt(insn.length)) & (t.in64BitMode() ? MASK64 : 0xffff_ffffn);
    t.update("REP-03", { rip, rflags: t.rflags | RFLAGS.RF });
    return undefined;
  };
}

export const movs = stringInstruction(moveElement, [RSI, RDI], false);
export const stos = stringInstruction(storeElement, [RDI], false);
export const lods = stringInstruction(loadElement, [RSI], false);
export const cmps = stringInstruction(compareElement, [RSI, RDI], true);
export const scas = stringInstruction(scanElement, [RDI], true);
