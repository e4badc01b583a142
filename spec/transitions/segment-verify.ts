// VERR / VERW (0F 00 /4, /5): may the current program read or write the segment a selector names?
// — SDM Vol. 2B "VERR/VERW". Not privileged; the answer is ZF, and no other state changes (no
// accessed bit is written). The descriptor read is an implicit access and may #PF.
import { isFault, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import { RFLAGS } from "../machine/registers.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import {
  descriptorLocation, isConformingCode, isNullSelector, isReadable, isWritableData, readDescriptor, selectorRpl,
} from "../segmentation/descriptor.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SEGMENT_VERIFY_RULES = defineRules([
  { id: "VERIFY-01", description: "VERR / VERW: a NULL selector, or one whose descriptor lies beyond the GDT/LDT limit (or TI = 1 with an unusable LDTR): ZF <- 0, no descriptor read", source: "SDM Vol. 2B VERR/VERW" },
  { id: "VERIFY-02", description: "VERR / VERW: a system descriptor, or data / non-conforming code with DPL < CPL or DPL < RPL: ZF <- 0", source: "SDM Vol. 2B VERR/VERW" },
  { id: "VERIFY-03", description: "VERR: ZF <- 1 for a readable segment (data, or code with R); VERW: ZF <- 1 for writable data; else 0. Only ZF changes", source: "SDM Vol. 2B VERR/VERW" },
]);

function setZf(t: Transaction, rule: RuleId, zf: boolean): undefined {
  const rflags = t.m.rflags;
  t.update(rule, { rflags: zf ? rflags | RFLAGS.ZF : rflags & ~RFLAGS.ZF });
  return undefined;
}

function verify(t: Transaction, insn: Instruction, access: "read" | "write"): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error(`${insn.mnemonic}: decoder gave no operand`);
  const source = t.read(op, t.m.rip);
  if (isFault(source)) return source;
  const selector = Number(source & 0xffffn);
  if (isNullSelector(selector)) return setZf(t, "VERIFY-01", false);
  const where = descriptorLocation(t, selector);
  if (!where.inside) return setZf(t, "VERIFY-01", false);
  const d = readDescriptor(t, where.address);
  if (isFault(d)) return d;
  if (d.s === 0) return setZf(t, "VERIFY-02", false);
  if (!isConformingCode(d) && (t.cpl() > d.dpl || selectorRpl(selector) > d.dpl)) return setZf(t, "VERIFY-02", false);
  return setZf(t, "VERIFY-03", access === "read" ? isReadable(d) : isWritableData(d));
}

export function execVerr(t: Transaction, insn: Instruction): Fault | undefined {
  return verify(t, insn, "read");
}

export function execVerw(t: Transaction, insn: Instruction): Fault | undefined {
  return verify(t, insn, "write");
}
