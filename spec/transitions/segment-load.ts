// Segment-register loads and stores: MOV Sreg,r/m (8E), MOV r/m,Sreg (8C), PUSH/POP Sreg — SDM Vol. 2A
// "MOV" (segment-register pseudo-code), Vol. 2B "POP", "PUSH"; Vol. 3A §3.4.5.1 (accessed bit).
// Rule IDs from the digest §22; SHADOW-05/07 are listed with the boundary rules (boundary.ts).
import { GP, isFault, NP, SS, UD, type Fault } from "../fault.ts";
import type { Instruction, Operand, SregName } from "../decode/instruction.ts";
import type { Segment } from "../../contract/state.ts";
import { cpuRunState, segment, type Machine } from "../machine/machine.ts";
import { in64BitMode } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import {
  descriptorLocation, isNullSelector, isReadable, isWritableData, nullSegment, readDescriptor,
  segmentFromDescriptor, selectorRpl, type Descriptor,
} from "../segmentation/descriptor.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SEGMENT_LOAD_RULES = defineRules([
  { id: "SEG-01", description: "load SS: NULL only in 64-bit mode at CPL < 3 with RPL = CPL, else #GP(0); RPL != CPL, beyond the table limit, not writable data or DPL != CPL: #GP(sel); not present: #SS(sel)", source: "SDM Vol. 2A MOV (segment registers); Vol. 2B POP" },
  { id: "SEG-02", description: "load DS/ES/FS/GS: NULL always allowed (hidden part unusable); beyond the table limit, not data or readable code, or data/non-conforming code with DPL < max(CPL, RPL): #GP(sel); not present: #NP(sel)", source: "SDM Vol. 2A MOV (segment registers)" },
  { id: "SEG-03", description: "FS/GS: a non-NULL selector loads the 32-bit descriptor base (zero-extended), overwriting a WRMSR/SWAPGS base; a NULL selector clears the base (intel) or keeps it (amd), per profile", source: "SDM Vol. 3A §3.4.4.1; Linux X86_BUG_NULL_SEG" },
  { id: "SEG-04", description: "PUSH Sreg pushes the selector zero-extended to the operand size; POP Sreg pops operand-size bytes and loads the low 16 bits as SEG-01/02", source: "SDM Vol. 2B PUSH, POP" },
  { id: "SEG-05", description: "MOV SS / POP SS arms the MOV-SS shadow for the next boundary", source: "SDM Vol. 2A MOV; Vol. 3A §7.8.3" },
  { id: "SEG-06", description: "loading a code or data descriptor sets its accessed bit in the descriptor table (implicit supervisor write, only when clear)", source: "SDM Vol. 3A §3.4.5.1" },
  { id: "SEG-07", description: "MOV r/m,Sreg: to a register, the selector zero-extended at 32/64-bit operand size (16-bit: low word only); to memory, always 16 bits", source: "SDM Vol. 2A MOV" },
  { id: "SEG-08", description: "MOV / POP to CS: #UD", source: "SDM Vol. 2A MOV" },
]);

export type LoadableSreg = "ss" | "ds" | "es" | "fs" | "gs";

/** The machine patch that replaces one segment register. */
export function segmentPatch(sreg: LoadableSreg | "cs", segment: Segment): Partial<Machine> {
  switch (sreg) {
    case "cs": return { cs: segment };
    case "ss": return { ss: segment };
    case "ds": return { ds: segment };
    case "es": return { es: segment };
    case "fs": return { fs: segment };
    case "gs": return { gs: segment };
  }
}

/** SEG-06: the descriptor with its accessed bit set, written back to the table if it was clear. */
export function setAccessed(t: Transaction, d: Descriptor): Descriptor | Fault {
  if ((d.type & 1) !== 0) return d;
  const byte5 = Number((d.low >> 40n) & 0xffn) | 1;
  const f = t.writeLinear(d.address + 5n, 1, BigInt(byte5), "implicit");
  if (isFault(f)) return f;
  t.hit("SEG-06");
  return { ...d, type: d.type | 1, low: d.low | (1n << 40n) };
}

/** SEG-01: MOV SS / POP SS checks and load (the shadow is the caller's). */
function loadSs(t: Transaction, selector: number): Fault | undefined {
  const cpl = t.cpl();
  const code = selector & 0xfffc;
  if (isNullSelector(selector)) {
    if (!in64BitMode(t.m) || cpl === 3 || selectorRpl(selector) !== cpl) return t.fault("SEG-01", GP, 0);
    t.update("SEG-01", { ss: nullSegment(selector) });
    return undefined;
  }
  if (selectorRpl(selector) !== cpl) return t.fault("SEG-01", GP, code);
  const where = descriptorLocation(t, selector);
  if (!where.inside) return t.fault("SEG-01", GP, code);
  const d = readDescriptor(t, where.address);
  if (isFault(d)) return d;
  if (!isWritableData(d) || d.dpl !== cpl) return t.fault("SEG-01", GP, code);
  if (d.present === 0) return t.fault("SEG-01", SS, code);
  const accessed = setAccessed(t, d);
  if (isFault(accessed)) return accessed;
  t.update("SEG-01", { ss: segmentFromDescriptor(selector, accessed) });
  return undefined;
}

/** SEG-02/03: DS, ES, FS, GS checks and load. */
function loadDataSegment(t: Transaction, sreg: "ds" | "es" | "fs" | "gs", selector: number): Fault | undefined {
  const fsOrGs = sreg === "fs" || sreg === "gs";
  const code = selector & 0xfffc;
  if (isNullSelector(selector)) {
    const base = fsOrGs && !t.profile.nullSelectorClearsBase ? t.m[sreg].base : 0n;
    if (fsOrGs) t.hit("SEG-03");
    t.update("SEG-02", segmentPatch(sreg, nullSegment(selector, base)));
    return undefined;
  }
  const where = descriptorLocation(t, selector);
  if (!where.inside) return t.fault("SEG-02", GP, code);
  const d = readDescriptor(t, where.address);
  if (isFault(d)) return d;
  if (!isReadable(d)) return t.fault("SEG-02", GP, code);
  const conformingCode = (d.type & 0xc) === 0xc;
  if (!conformingCode && (selectorRpl(selector) > d.dpl || t.cpl() > d.dpl)) return t.fault("SEG-02", GP, code);
  if (d.present === 0) return t.fault("SEG-02", NP, code);
  const accessed = setAccessed(t, d);
  if (isFault(accessed)) return accessed;
  if (fsOrGs) t.hit("SEG-03");
  t.update("SEG-02", segmentPatch(sreg, segmentFromDescriptor(selector, accessed)));
  return undefined;
}

/** Loads a data or stack segment register as MOV Sreg does (no shadow). */
export function loadSegment(t: Transaction, sreg: LoadableSreg, selector: number): Fault | undefined {
  return sreg === "ss" ? loadSs(t, selector) : loadDataSegment(t, sreg, selector);
}

/** SEG-05 / SHADOW-07: the MOV-SS shadow after a successful SS load. */
function armMovSsShadow(t: Transaction): void {
  if (t.startShadow === "movss") t.hit("SHADOW-07");
  else t.update("SEG-05", { cpu: cpuRunState({ ...t.m.cpu, shadow: "movss" }) });
}

function loadAndShadow(t: Transaction, sreg: SregName, selector: number): Fault | undefined {
  if (sreg === "cs") return t.fault("SEG-08", UD);
  const f = loadSegment(t, sreg, selector);
  if (isFault(f)) return f;
  if (sreg === "ss") armMovSsShadow(t);
  return undefined;
}

function sregOperand(op: Operand | undefined, insn: Instruction): SregName {
  if (op?.kind !== "sreg") throw new Error(`${insn.mnemonic}: decoder gave no segment-register operand`);
  return op.sreg;
}

export function execMovToSreg(t: Transaction, insn: Instruction): Fault | undefined {
  const sreg = sregOperand(insn.operands[0], insn);
  const src = insn.operands[1];
  if (src === undefined) throw new Error("mov_to_sreg: decoder gave no source operand");
  if (sreg === "cs") return t.fault("SEG-08", UD);
  const value = t.read(src.kind === "mem" ? { ...src, size: 2 } : src, t.m.rip);
  if (isFault(value)) return value;
  return loadAndShadow(t, sreg, Number(value & 0xffffn));
}

export function execMovFromSreg(t: Transaction, insn: Instruction): Fault | undefined {
  const dst = insn.operands[0];
  const sreg = sregOperand(insn.operands[1], insn);
  if (dst === undefined) throw new Error("mov_from_sreg: decoder gave no destination operand");
  const selector = BigInt(t.m[sreg].selector);
  return t.write(dst.kind === "mem" ? { ...dst, size: 2 } : dst, selector, t.m.rip, "SEG-07");
}

export function execPushSreg(t: Transaction, insn: Instruction): Fault | undefined {
  const sreg = sregOperand(insn.operands[0], insn);
  return t.push(BigInt(t.m[sreg].selector), insn.operandSize, "SEG-04");
}

export function execPopSreg(t: Transaction, insn: Instruction): Fault | undefined {
  const sreg = sregOperand(insn.operands[0], insn);
  if (sreg === "cs") return t.fault("SEG-08", UD);
  const value = t.pop(insn.operandSize);
  if (isFault(value)) return value;
  t.hit("SEG-04");
  return loadAndShadow(t, sreg, Number(value & 0xffffn));
}

/**
 * On a return to an outer privilege level (far RET, IRET), DS, ES, FS and GS are judged by their
 * hidden part — the cached descriptor, whatever the selector says: one holding data or
 * non-conforming code with DPL < the new CPL becomes NULL (selector 0, hidden part limit 0,
 * attributes 0, unusable; the base kept: docs/model-choices.md "NULL segment hidden parts").
 * IRET's pseudo-code also sets a NULL selector (any RPL) to 0, its hidden part as it was
 * (`null-selectors-too`); far RET's IA-32e loop has no such clause and leaves NULL selectors alone.
 */
export function nullInaccessibleDataSegments(t: Transaction, newCpl: number, rule: RuleId, nullSelectors: "null-selectors-too" | "leave-null-selectors"): void {
  const m = t.now;
  const es = afterReturn(m.es, newCpl, nullSelectors);
  const ds = afterReturn(m.ds, newCpl, nullSelectors);
  const fs = afterReturn(m.fs, newCpl, nullSelectors);
  const gs = afterReturn(m.gs, newCpl, nullSelectors);
  // Nothing to null (the usual return to CPL 3 with flat DPL-3 data segments): the rule still
  // applied, but the record is not copied for an empty update.
  if (es === m.es && ds === m.ds && fs === m.fs && gs === m.gs) t.hit(rule);
  else t.update(rule, { es, ds, fs, gs });
}

/** One data segment register after a return to `newCpl` (nullInaccessibleDataSegments): NULL,
 *  its selector made 0, or unchanged (the same object). */
function afterReturn(seg: Segment, newCpl: number, nullSelectors: "null-selectors-too" | "leave-null-selectors"): Segment {
  const dataOrNonConforming = seg.s === 1 && (seg.type & 0xc) !== 0xc;
  if (dataOrNonConforming && seg.dpl < newCpl) return nullSegment(0, seg.base);
  if (nullSelectors === "null-selectors-too" && isNullSelector(seg.selector) && seg.selector !== 0) return segment({ ...seg, selector: 0 });
  return seg;
}

/** MOV Sreg, r16 alone (2 bytes): the checks, the load and the MOV-SS shadow. */
export function movToSreg(state: Machine, sreg: SregName, selector: number, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 2, (t) => loadAndShadow(t, sreg, selector & 0xffff));
}
