// JMP far through memory (FF /5: m16:16, m16:32, REX.W m16:64) in IA-32e mode — SDM Vol. 2A "JMP",
// the CONFORMING- and NONCONFORMING-CODE-SEGMENT branches. A far JMP through a call gate changes
// no privilege but is not modelled (the step stops as unsupported); task gates and TSSs are #GP
// in IA-32e mode.
import { GP, isFault, NP, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import { sizeMask } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isCode, isConformingCode, isNullSelector, readDescriptor,
  segmentFromDescriptor, selectorRpl,
} from "../segmentation/descriptor.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { checkTargetRip, invalidLongCode } from "./code-segment.ts";
import { setAccessed } from "./segment-load.ts";

export const FAR_JUMP_RULES = defineRules([
  { id: "JMPF-01", description: "far JMP reads offset (operand size) then selector (2 bytes) from memory", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-02", description: "far JMP: NULL selector: #GP(0)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-03", description: "far JMP: selector beyond the descriptor-table limit: #GP(sel)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-04", description: "far JMP: a 64-bit call gate is not modelled (unsupported); any other non-code descriptor: #GP(sel)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-05", description: "far JMP: code segment with L = 1 and D = 1: #GP(sel)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-06", description: "far JMP: conforming with DPL > CPL, or non-conforming with RPL > CPL or DPL != CPL: #GP(sel)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-07", description: "far JMP: code segment not present: #NP(sel)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-08", description: "far JMP: target RIP not canonical (64-bit target), or beyond the CS limit (compatibility target: the whole offset, so one above 4 GiB too): #GP(0)", source: "SDM Vol. 2A JMP" },
  { id: "JMPF-09", description: "far JMP: CS <- selector with RPL <- CPL, hidden part from the descriptor; RIP <- offset (a compatibility-mode target: EIP, zero-extended); CPL unchanged", source: "SDM Vol. 2A JMP" },
]);

const CALL_GATE_64 = 12;

export function execJmpFar(t: Transaction, insn: Instruction): Fault | UnsupportedOutcome | undefined {
  const op = insn.operands[0];
  if (op?.kind !== "mem") throw new Error("jmp_far: decoder gave no memory operand");
  const cpl = t.cpl();
  const size = insn.operandSize;
  const linear = t.memoryLinear(op, t.m.rip, "read", size + 2);
  if (isFault(linear)) return linear;
  // #AC (SMAP-06) by the far pointer's alignment, SDM Table 6-7: m16:16 2, m16:32 4; m16:64 8 (a
  // model choice: the table has no 80-bit pointer).
  const raw = t.readLinear(linear, size + 2, t.dataMode(), { stack: op.stackSegment, alignment: size });
  if (isFault(raw)) return raw;
  t.hit("JMPF-01");
  const selector = Number((raw >> BigInt(8 * size)) & 0xffffn);
  const code = selector & 0xfffc;
  if (isNullSelector(selector)) return t.fault("JMPF-02", GP, 0);
  const where = descriptorLocation(t, selector);
  if (!where.inside) return t.fault("JMPF-03", GP, code);
  const d = readDescriptor(t, where.address);
  if (isFault(d)) return d;
  if (d.s === 0 && d.type === CALL_GATE_64) return t.unsupported("JMPF-04", "far JMP through a call gate is not modelled");
  if (!isCode(d)) return t.fault("JMPF-04", GP, code);
  if (invalidLongCode(d)) return t.fault("JMPF-05", GP, code);
  if (isConformingCode(d) ? d.dpl > cpl : selectorRpl(selector) > cpl || d.dpl !== cpl) return t.fault("JMPF-06", GP, code);
  if (d.present === 0) return t.fault("JMPF-07", NP, code);
  // The whole offset is checked (a compatibility-mode target: against the limit) and loaded.
  const offset = raw & sizeMask(size);
  const f = checkTargetRip(t, d, offset, "JMPF-08");
  if (isFault(f)) return f;
  const loaded = setAccessed(t, d);
  if (isFault(loaded)) return loaded;
  t.update("JMPF-09", { cs: segmentFromDescriptor((selector & 0xfffc) | cpl, loaded), rip: offset });
  return undefined;
}

