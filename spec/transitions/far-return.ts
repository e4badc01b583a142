// Far RET (CB, CA iw; REX.W CB = LRETQ) in IA-32e mode — SDM Vol. 2B "RET" pseudo-code, the
// IA-32E-MODE-RETURN-SAME/OUTER-PRIVILEGE-LEVEL branches. Call gates never return here.
import { GP, isFault, NP, SS, type Fault } from "../fault.ts";
import type { Instruction, OperandSize } from "../decode/instruction.ts";
import type { Machine } from "../machine/machine.ts";
import { RSP, sizeMask } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isCode, isConformingCode, isNullSelector, isWritableData, nullSegment,
  readDescriptor, segmentFromDescriptor, selectorRpl,
} from "../segmentation/descriptor.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { checkTargetRip, invalidLongCode } from "./code-segment.ts";
import { nullInaccessibleDataSegments, setAccessed } from "./segment-load.ts";

export const FAR_RETURN_RULES = defineRules([
  { id: "RETF-01", description: "far RET reads the return RIP and CS (operand-size slots) from the stack before any check; stack faults: #SS(0) non-canonical, #PF", source: "SDM Vol. 2B RET" },
  { id: "RETF-02", description: "far RET: NULL return CS selector: #GP(0)", source: "SDM Vol. 2B RET" },
  { id: "RETF-03", description: "far RET: return CS beyond the descriptor-table limit: #GP(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-04", description: "far RET: return CS not a code segment, or L = 1 with D = 1: #GP(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-05", description: "far RET: return CS.RPL < CPL: #GP(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-06", description: "far RET: conforming with DPL > RPL, or non-conforming with DPL != RPL: #GP(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-07", description: "far RET: return CS not present: #NP(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-08", description: "far RET to the same privilege: RIP canonical (64-bit target) or within the CS limit (compatibility target: the whole popped value, so one above 4 GiB too), else #GP(0); CS, RIP loaded; RSP += 2 slots + imm16 at the stack width", source: "SDM Vol. 2B RET" },
  { id: "RETF-09", description: "far RET to an outer privilege: SS:RSP read after imm16 bytes; NULL SS only for a 64-bit target with SS.RPL != 3, else #GP(0); beyond the limit, SS.RPL != CS.RPL, not writable data or DPL != CS.RPL: #GP(sel); not present: #SS(sel)", source: "SDM Vol. 2B RET" },
  { id: "RETF-10", description: "far RET to an outer privilege: RIP checked as RETF-08; CPL <- CS.RPL; CS, RIP, SS loaded; RSP <- popped RSP + imm16 (a compatibility-mode target: popped bits 31:0, imm16 at the new SS.B width)", source: "SDM Vol. 2B RET (\"ESP := tempESP\"); SDM Vol. 1 §3.4.1.1" },
  { id: "RETF-11", description: "far RET to an outer privilege: DS/ES/FS/GS whose hidden part is data or non-conforming code with DPL < new CPL become NULL (base kept); NULL selectors are left alone", source: "SDM Vol. 2B RET, IA-32e outer return (\"DPL in hidden part of segment register\")" },
]);

/** Far RET with `size`-byte slots, releasing `release` bytes (the imm16) on each stack. */
export function farReturnOn(t: Transaction, size: OperandSize, release: bigint): Fault | undefined {
  const cpl = t.cpl();
  // Slots are read at offsets above the stack pointer without moving it (compatibility mode:
  // through SS, with its checks).
  const readSlot = (offset: bigint) => t.readStack(offset, size);
  // ---- RETF-01: return address, read without moving RSP ----
  const ripRaw = readSlot(0n);
  if (isFault(ripRaw)) return ripRaw;
  const csRaw = readSlot(BigInt(size));
  if (isFault(csRaw)) return csRaw;
  t.hit("RETF-01");
  const popped = ripRaw & sizeMask(size);
  const csSelector = Number(csRaw & 0xffffn);
  const csCode = csSelector & 0xfffc;
  const rpl = selectorRpl(csSelector);
  // ---- return CS checks ----
  if (isNullSelector(csSelector)) return t.fault("RETF-02", GP, 0);
  const where = descriptorLocation(t, csSelector);
  if (!where.inside) return t.fault("RETF-03", GP, csCode);
  const cs = readDescriptor(t, where.address);
  if (isFault(cs)) return cs;
  if (!isCode(cs) || invalidLongCode(cs)) return t.fault("RETF-04", GP, csCode);
  if (rpl < cpl) return t.fault("RETF-05", GP, csCode);
  if (isConformingCode(cs) ? cs.dpl > rpl : cs.dpl !== rpl) return t.fault("RETF-06", GP, csCode);
  if (cs.present === 0) return t.fault("RETF-07", NP, csCode);
  // The whole popped value is checked (a compatibility-mode target: against the limit) and loaded.
  const rip = popped;
  const released = 2n * BigInt(size) + release;

  if (rpl === cpl) {
    // ---- same privilege ----
    const f = checkTargetRip(t, cs, rip, "RETF-08");
    if (isFault(f)) return f;
    const csLoaded = setAccessed(t, cs);
    if (isFault(csLoaded)) return csLoaded;
    // The stack pointer moves at the width of the stack RET read its slots from.
    t.moveStackPointer("RETF-08", released);
    t.update("RETF-08", { cs: segmentFromDescriptor(csSelector, csLoaded), rip });
    return undefined;
  }

  // ---- outer privilege: the caller's SS:RSP follow the released parameters ----
  const rspRaw = readSlot(released);
  if (isFault(rspRaw)) return rspRaw;
  const ssRaw = readSlot(released + BigInt(size));
  if (isFault(ssRaw)) return ssRaw;
  const ssSelector = Number(ssRaw & 0xffffn);
  const ssCode = ssSelector & 0xfffc;
  let ss;
  if (isNullSelector(ssSelector)) {
    if (cs.l === 0 || selectorRpl(ssSelector) === 3 || selectorRpl(ssSelector) !== rpl) return t.fault("RETF-09", GP, 0);
    ss = nullSegment(ssSelector);
  } else {
    const ssWhere = descriptorLocation(t, ssSelector);
    if (!ssWhere.inside) return t.fault("RETF-09", GP, ssCode);
    const d = readDescriptor(t, ssWhere.address);
    if (isFault(d)) return d;
    if (selectorRpl(ssSelector) !== rpl || !isWritableData(d) || d.dpl !== rpl) return t.fault("RETF-09", GP, ssCode);
    if (d.present === 0) return t.fault("RETF-09", SS, ssCode);
    const ssLoaded = setAccessed(t, d);
    if (isFault(ssLoaded)) return ssLoaded;
    ss = segmentFromDescriptor(ssSelector, ssLoaded);
  }
  const f = checkTargetRip(t, cs, rip, "RETF-10");
  if (isFault(f)) return f;
  const csLoaded = setAccessed(t, cs);
  if (isFault(csLoaded)) return csLoaded;
  // ---- commit ----
  t.update("RETF-10", { cs: segmentFromDescriptor(csSelector, csLoaded), rip, ss });
  // The caller's stack pointer, then the parameters released on it. A compatibility-mode target:
  // the popped value's bits 31:0, the release at the new SS.B width (docs/model-choices.md,
  // "Transfers into compatibility mode"; RET pseudo-code "ESP := tempESP").
  t.writeGpr("RETF-10", RSP, cs.l === 1 ? rspRaw & sizeMask(size) : rspRaw & sizeMask(size) & 0xffff_ffffn);
  t.moveStackPointer("RETF-10", release);
  nullInaccessibleDataSegments(t, rpl, "RETF-11", "leave-null-selectors");
  return undefined;
}

function releaseOperand(insn: Instruction): bigint {
  const op = insn.operands[0];
  return op?.kind === "imm" ? op.value & 0xffffn : 0n;
}

/** Far RET in the instruction table: slots of the operand size, the imm16 (CA iw) released. */
export function execRetf(t: Transaction, insn: Instruction): Fault | undefined {
  return farReturnOn(t, insn.operandSize, releaseOperand(insn));
}

/** Far RET alone (`size` 8 = LRETQ); `release` is the imm16. The new machine or the fault. */
export function farReturn(state: Machine, size: OperandSize, release: number, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 1, (t) => farReturnOn(t, size, BigInt(release & 0xffff)));
}
