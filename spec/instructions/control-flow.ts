// Near JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JRCXZ — SDM Vol. 2A/2B instruction pages; digest
// §21 (CANON). A target that is
// not canonical faults #GP(0) at the branch itself (RIP unchanged). A 16-bit operand size
// truncates the target to 16 bits (32-bit in compatibility mode).
import { isFault, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { Semantics } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { canonical, MASK64, RCX, RFLAGS, RSP, sizeMask } from "../machine/registers.ts";
import { operand } from "./operands.ts";

/** The branch target at the operand size, or #GP(0) if it is not canonical (BRANCH-01) or, in
 *  compatibility mode, beyond the CS limit (BRANCH-04). */
function target(t: Transaction, insn: Instruction, raw: bigint): bigint | Fault {
  const rip = raw & sizeMask(insn.operandSize);
  if (insn.operandSize !== 8) t.hit("BRANCH-02");
  if (!canonical(rip)) return t.fault("BRANCH-01", 13, 0);
  if (!t.in64BitMode() && rip > BigInt(t.m.cs.limit)) return t.fault("BRANCH-04", 13, 0);
  return rip;
}

/** rel → next RIP + displacement; r/m → the operand's value. */
function destination(t: Transaction, insn: Instruction): bigint | Fault {
  const op = operand(insn, 0);
  if (op.kind === "rel") return (t.rip + op.disp) & MASK64;
  return t.read(op, t.rip);
}

function jumpTo(t: Transaction, insn: Instruction): Fault | undefined {
  const raw = destination(t, insn);
  if (isFault(raw)) return raw;
  const rip = target(t, insn, raw);
  if (isFault(rip)) return rip;
  t.update("BRANCH-03", { rip });
  return undefined;
}

// The status flags as a number (they lie in RFLAGS[11:0]): a condition reads four of them.
const CF = Number(RFLAGS.CF), PF = Number(RFLAGS.PF), ZF = Number(RFLAGS.ZF), SF = Number(RFLAGS.SF), OF = Number(RFLAGS.OF);

/** Jcc condition codes (SDM Vol. 1 Appendix B, "tttn"): even codes test, odd codes negate. */
export function conditionHolds(condition: number, rflags: bigint): boolean {
  const status = Number(BigInt.asUintN(12, rflags));
  const cf = (status & CF) !== 0, pf = (status & PF) !== 0, zf = (status & ZF) !== 0;
  const sf = (status & SF) !== 0, of = (status & OF) !== 0;
  let base: boolean;
  switch (condition >> 1) {
    case 0: base = of; break; //             O
    case 1: base = cf; break; //             B, C, NAE
    case 2: base = zf; break; //             E, Z
    case 3: base = cf || zf; break; //       BE, NA
    case 4: base = sf; break; //             S
    case 5: base = pf; break; //             P, PE
    case 6: base = sf !== of; break; //      L, NGE
    case 7: base = zf || sf !== of; break; // LE, NG
    default: throw new Error(`jcc: condition ${condition} out of range`);
  }
  return (condition & 1) === 0 ? base : !base;
}

export const jmp: Semantics = (t, insn) => jumpTo(t, insn);

export const jcc: Semantics = (t, insn) => {
  t.hit("JCC-01");
  return conditionHolds(insn.condition, t.rflags) ? jumpTo(t, insn) : undefined;
};

/** CALL: the target is checked before anything is pushed; then the next RIP is pushed. */
export const call: Semantics = (t, insn) => {
  const raw = destination(t, insn);
  if (isFault(raw)) return raw;
  const rip = target(t, insn, raw);
  if (isFault(rip)) return rip;
  const f = t.push(t.rip, insn.operandSize);
  if (isFault(f)) return f;
  t.update("CALL-01", { rip });
  return undefined;
};

/** RET [imm16]: pop the return address, check it, then release imm16 more bytes of stack. */
export const ret: Semantics = (t, insn) => {
  const raw = t.pop(insn.operandSize);
  if (isFault(raw)) return raw;
  const rip = target(t, insn, raw);
  if (isFault(rip)) return rip;
  const release = insn.operands[0];
  if (release !== undefined && release.kind === "imm") t.moveStackPointer("RET-01", release.value);
  t.update("RET-01", { rip });
  return undefined;
};


/**
 * LOOP / LOOPE / LOOPNE: the count register (RCX, or ECX with a 32-bit address size) counts down
 * without touching a flag, then the branch is taken while it is not 0 (and ZF = 1 for LOOPE, ZF = 0
 * for LOOPNE). A target that faults leaves the count unchanged (the step's transaction).
 */
function loopWhile(zf: boolean | undefined): Semantics {
  return (t, insn) => {
    const size = insn.addressSize;
    const count = (t.readReg(RCX, size) - 1n) & sizeMask(size);
    t.writeReg(RCX, size, count);
    t.hit("LOOP-01");
    const taken = count !== 0n && (zf === undefined || ((t.rflags & RFLAGS.ZF) !== 0n) === zf);
    return taken ? jumpTo(t, insn) : undefined;
  };
}

export const loop = loopWhile(undefined);
export const loope = loopWhile(true);
export const loopne = loopWhile(false);

/** JRCXZ (JECXZ with a 32-bit address size): the branch is taken when the count register is 0. */
export const jrcxz: Semantics = (t, insn) => {
  t.hit("JRCXZ-01");
  return t.readReg(RCX, insn.addressSize) === 0n ? jumpTo(t, insn) : undefined;
};
