// Small helpers the general instructions' semantics use: operand lookup, read-modify-write
// destinations, and the RFLAGS update.
import type { Fault } from "../fault.ts";
import type { Instruction, Operand, OperandSize } from "../decode/instruction.ts";
import type { RuleId } from "../rules/rule.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { withStatus, type StatusFlags } from "./flags.ts";

/** Operand `i` as the decoder laid it out (Intel order); a missing one is a decoder bug. */
export function operand(insn: Instruction, i: number): Operand {
  const op = insn.operands[i];
  if (op === undefined) throw new Error(`${insn.mnemonic}: operand ${i} missing`);
  return op;
}

/** The data size of a register or memory operand; immediates carry their own. */
export function sizeOf(op: Operand, insn: Instruction): OperandSize {
  if (op.kind === "reg" || op.kind === "imm") return op.size;
  if (op.kind === "mem" && (op.size === 1 || op.size === 2 || op.size === 4 || op.size === 8)) return op.size;
  return insn.operandSize;
}

/** Reads the destination of a read-modify-write instruction. A memory destination is translated as
 *  a write from the start, so a #PF reports W = 1 as hardware does (SDM Vol. 3A §4.7). */
export function readDestination(t: Transaction, op: Operand, nextRip: bigint): bigint | Fault {
  return t.read(op, nextRip, op.kind === "mem" ? "write" : "read");
}

/** Writes status flags into RFLAGS under `rule`. */
export function setStatus(t: Transaction, rule: RuleId, flags: Partial<StatusFlags>): void {
  t.update(rule, { rflags: withStatus(t.rflags, flags) });
}
