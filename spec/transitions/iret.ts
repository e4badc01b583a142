// IRET / IRETD / IRETQ in IA-32e mode — SDM Vol. 2A "IRET/IRETD/IRETQ" pseudo-code, IA-32e-MODE,
// RETURN-TO-SAME-PRIVILEGE-LEVEL and RETURN-TO-OUTER-PRIVILEGE-LEVEL; Vol. 3A §6.14.3. Every pop is
// tentative (RSP moves only at the commit); every check comes before the first update.
import { GP, isFault, NP, SS, type Fault } from "../fault.ts";
import type { Instruction, OperandSize } from "../decode/instruction.ts";
import type { Segment } from "../../contract/state.ts";
import { cpuRunState, type Machine } from "../machine/machine.ts";
import { canonical, cpl, in64BitMode, iopl, RFLAGS, RSP, smallBigInt, split64, splitLow, truncate } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isCode, isConformingCode, isNullSelector, isWritableData, nullSegment, readDescriptor,
  segmentFromDescriptor, selectorRpl, type Descriptor,
} from "../segmentation/descriptor.ts";
import { runAlone } from "../transaction/alone.ts";
import { stackWidthMask, withStackPointer } from "../transaction/segment-checks.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { nullInaccessibleDataSegments, setAccessed } from "./segment-load.ts";

export const IRET_RULES = defineRules([
  { id: "IRETQ-00", description: "IRET unblocks NMIs before anything else, even when it then faults", source: "SDM Vol. 3A §6.7.1" },
  { id: "IRETQ-01", description: "RFLAGS.NT = 1 in IA-32e mode → #GP(0)", source: "SDM Vol. 2A IRET pseudo-code, IA-32e-MODE" },
  { id: "IRETQ-02", description: "RIP, CS, RFLAGS read from the stack at the operand size without moving RSP; stack faults #SS(0)/#PF", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-03", description: "Return CS NULL → #GP(0)", source: "SDM Vol. 2A IRET, Protected Mode Exceptions" },
  { id: "IRETQ-04", description: "Return CS outside the descriptor table → #GP(CS)", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-05", description: "Return CS not a code segment → #GP(CS)", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-06", description: "Return CS.RPL < CPL → #GP(CS)", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-07", description: "Return CS with L = 1 and D = 1 → #GP(CS)", source: "SDM Vol. 2A IRET pseudo-code, IA-32e-MODE" },
  { id: "IRETQ-08", description: "Conforming CS with DPL > RPL, or non-conforming with DPL ≠ RPL → #GP(CS)", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-09", description: "Return CS not present → #NP(CS)", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "IRETQ-10", description: "SS:RSP popped on a return to an outer level and always when IRET began in 64-bit mode (any operand size)", source: "SDM Vol. 2A IRET pseudo-code, IA-32e-MODE" },
  { id: "IRETQ-11", description: "Popped SS: NULL only for a 64-bit target at RPL < 3 with SS.RPL = CS.RPL (else #GP(0)); otherwise limit, RPL, type, DPL → #GP(SS), not present → #SS(SS)", source: "SDM Vol. 2A IRET pseudo-code, RETURN-TO-OUTER-PRIVILEGE-LEVEL" },
  { id: "IRETQ-12", description: "Return RIP non-canonical (64-bit target), or its EIP (bits 31:0) beyond the CS limit (compatibility target) → #GP(0) at the old CPL", source: "SDM Vol. 2A IRET pseudo-code (\"IF EIP is not within CS limit\")" },
  { id: "IRETQ-13", description: "RFLAGS from the image: IF only if old CPL ≤ old IOPL, IOPL only at old CPL 0, VIF/VIP at CPL 0 with OS ≥ 32, RF/AC/ID with OS ≥ 32, VM never", source: "SDM Vol. 2A IRET pseudo-code" },
  { id: "RF-02", description: "IRET with a 32/64-bit operand size is the instruction that loads RF from memory (16-bit IRET does not)", source: "SDM Vol. 3A §18.3.1.1; Vol. 2A IRET" },
  { id: "IRETQ-14", description: "CPL ← return CS.RPL; CS cache from the descriptor; RIP ← popped RIP (zero-extended below 64 bits; a compatibility-mode target: EIP, zero-extended)", source: "SDM Vol. 2A IRET pseudo-code; docs/model-choices.md \"Transfers into compatibility mode\"" },
  { id: "IRETQ-15", description: "SS ← popped SS and RSP ← popped RSP (not canonical-checked; a compatibility-mode target: bits 31:0 with SS.B = 1, bits 15:0 into SP with SS.B = 0, RSP bits 63:16 kept); compatibility-mode same-level IRET only moves the stack pointer past the frame (SS.B width)", source: "SDM Vol. 2A IRET pseudo-code; SDM Vol. 3A §6.14.3 (\"The SS/ESP/RSP size adjustment is determined by the stack size\"); SDM Vol. 1 §3.4.1.1" },
  { id: "IRETQ-16", description: "Return to an outer level: DS/ES/FS/GS whose hidden part is data or non-conforming code with DPL < new CPL → NULL selector, unusable, base kept; a NULL selector with RPL != 0 → selector 0", source: "SDM Vol. 2A IRET pseudo-code, RETURN-TO-OUTER-PRIVILEGE-LEVEL (descriptor cache; SegmentSelector == NULL clause)" },
  { id: "IRETQ-17", description: "No interrupt shadow after IRET; a TF set by IRET traps after the next instruction", source: "SDM Vol. 3A §18.3.1.4", recordedWith: "IRETQ-14" },
]);

export type IretSize = 2 | 4 | 8;

/** IRETQ-13: flags IRET always loads from the image (CF PF AF ZF SF TF DF OF NT). */
const ALWAYS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.TF | RFLAGS.DF | RFLAGS.OF | RFLAGS.NT;
/** …and with a 32- or 64-bit operand size (RF AC ID). */
const WIDE = RFLAGS.RF | RFLAGS.AC | RFLAGS.ID;

/**
 * IRETQ-13: the new RFLAGS from the popped image, with permissions judged by the *old* CPL and IOPL.
 * VM is never loaded in IA-32e mode; reserved bits keep their fixed values (bit 1 = 1).
 */
export function iretRflags(current: bigint, image: bigint, size: IretSize, oldCpl: number, oldIopl: number): bigint {
  const writable = iretWritable(size, oldCpl, oldIopl);
  return ((current & writable.not) | (image & writable.mask)) | RFLAGS.FIXED1;
}

/** IRETQ-13: the RFLAGS bits IRET loads from the image, by the three facts they depend on. */
function iretWritableBits(wideOperand: boolean, cplWithinIopl: boolean, ring0: boolean): bigint {
  let writable = ALWAYS;
  if (wideOperand) writable |= WIDE; // RF-02
  if (cplWithinIopl) writable |= RFLAGS.IF;
  if (ring0) {
    writable |= RFLAGS.IOPL;
    if (wideOperand) writable |= RFLAGS.VIF | RFLAGS.VIP;
  }
  return writable;
}

/** iretWritableBits for each of the 8 combinations of its facts (bit 2: wide operand, 1: CPL ≤
 *  IOPL, 0: ring 0), and the complement, made once: a BigInt expression allocates each time. */
const IRET_WRITABLE = Array.from({ length: 8 }, (_, k) => {
  const mask = iretWritableBits((k & 4) !== 0, (k & 2) !== 0, (k & 1) !== 0);
  return { mask, not: ~mask };
});

/** The RFLAGS bits IRET loads from the image (IRETQ-13), and their complement. */
function iretWritable(size: IretSize, oldCpl: number, oldIopl: number): { readonly mask: bigint; readonly not: bigint } {
  return IRET_WRITABLE[(size >= 4 ? 4 : 0) | (oldCpl <= oldIopl ? 2 : 0) | (oldCpl === 0 ? 1 : 0)]!;
}

/** Stack slot `n` of `size` bytes above the stack pointer (compatibility mode: through SS, at
 *  SS.B's width, with its checks: Transaction.readStack). */
function readSlot(t: Transaction, n: number, size: IretSize): bigint | Fault {
  return t.readStack(smallBigInt(n * size), size);
}

/** IRET with operand size `size` on a transaction whose machine is the one IRET starts on. */
export function iretOn(t: Transaction, size: IretSize): Fault | undefined {
  // IRETQ-00 / NMI-03: IRET ends NMI blocking first, and a fault of the IRET does not undo it.
  if (t.now.cpu.nmiBlocked) t.updateKeptOnFault("IRETQ-00", (m) => ({ cpu: cpuRunState({ ...m.cpu, nmiBlocked: false }) }));
  const m = t.now;
  const oldCpl = cpl(m);
  const began64 = in64BitMode(m);
  // SMAP-03: the pops are explicit accesses at the current CPL (SMAP honours RFLAGS.AC at CPL < 3).
  t.hit("SMAP-03");

  if ((m.rflags & RFLAGS.NT) !== 0n) return t.fault("IRETQ-01", GP, 0);

  // IRETQ-02: RIP, CS, RFLAGS, read without moving RSP.
  const tempRip = readSlot(t, 0, size);
  if (isFault(tempRip)) return tempRip;
  const csWord = readSlot(t, 1, size);
  if (isFault(csWord)) return csWord;
  const tempRflags = readSlot(t, 2, size);
  if (isFault(tempRflags)) return tempRflags;
  t.hit("IRETQ-02");
  split64(csWord);
  const csSel = splitLow() & 0xffff;

  // ---- return code segment --------------------------------------------------------------
  if (isNullSelector(csSel)) return t.fault("IRETQ-03", GP, 0);
  const codeAt = descriptorLocation(t, csSel);
  if (!codeAt.inside) return t.fault("IRETQ-04", GP, csSel & 0xfffc);
  const code = readDescriptor(t, codeAt.address);
  if (isFault(code)) return code;
  if (!isCode(code)) return t.fault("IRETQ-05", GP, csSel & 0xfffc);
  const rpl = selectorRpl(csSel);
  if (rpl < oldCpl) return t.fault("IRETQ-06", GP, csSel & 0xfffc);
  if (code.l === 1 && code.db === 1) return t.fault("IRETQ-07", GP, csSel & 0xfffc);
  if (isConformingCode(code) ? code.dpl > rpl : code.dpl !== rpl) return t.fault("IRETQ-08", GP, csSel & 0xfffc);
  if (code.present === 0) return t.fault("IRETQ-09", NP, csSel & 0xfffc);
  const target64 = code.l === 1;
  const outer = rpl > oldCpl;

  // ---- SS:RSP (IRETQ-10: popped on a privilege change, and always when IRET began in 64-bit mode)
  /** The SS to load: its selector and descriptor (null for a NULL selector). */
  let newSs: { readonly selector: number; readonly descriptor: Descriptor | null } | null = null;
  let tempRsp = 0n;
  if (outer || began64) {
    const rspWord = readSlot(t, 3, size);
    if (isFault(rspWord)) return rspWord;
    const ssWord = readSlot(t, 4, size);
    if (isFault(ssWord)) return ssWord;
    t.hit("IRETQ-10");
    // A compatibility-mode target gets the popped RSP's bits 31:0 (docs/model-choices.md,
    // "Transfers into compatibility mode").
    tempRsp = target64 ? truncate(rspWord, size) : BigInt.asUintN(32, truncate(rspWord, size));
    split64(ssWord);
    const ssSel = splitLow() & 0xffff;
    if (isNullSelector(ssSel)) {
      // IRETQ-11: a NULL SS only for a 64-bit target below ring 3 with SS.RPL = CS.RPL.
      if (!target64 || rpl === 3 || selectorRpl(ssSel) !== rpl) return t.fault("IRETQ-11", GP, 0);
      newSs = { selector: ssSel, descriptor: null };
    } else {
      const stackAt = descriptorLocation(t, ssSel);
      if (!stackAt.inside) return t.fault("IRETQ-11", GP, ssSel & 0xfffc);
      const stack = readDescriptor(t, stackAt.address);
      if (isFault(stack)) return stack;
      if (selectorRpl(ssSel) !== rpl || !isWritableData(stack) || stack.dpl !== rpl) return t.fault("IRETQ-11", GP, ssSel & 0xfffc);
      if (stack.present === 0) return t.fault("IRETQ-11", SS, ssSel & 0xfffc);
      newSs = { selector: ssSel, descriptor: stack };
    }
  }

  // IRETQ-12: the return RIP, checked at the old CPL before anything commits: canonical for a
  // 64-bit target; for a compatibility-mode target the SDM checks EIP against the CS limit, and
  // EIP (zero-extended) is what RIP becomes.
  const newRip = target64 ? truncate(tempRip, size) : BigInt.asUintN(32, truncate(tempRip, size));
  if (target64 ? !canonical(newRip) : newRip > BigInt(code.limit)) return t.fault("IRETQ-12", GP, 0);

  // SEG-06: loading CS (and SS from a descriptor) sets the descriptors' accessed bits — implicit
  // writes that can still fault (a fault of the IRET).
  const csLoaded = setAccessed(t, code);
  if (isFault(csLoaded)) return csLoaded;
  let ssLoaded: Segment | null = null;
  if (newSs !== null && newSs.descriptor === null) ssLoaded = nullSegment(newSs.selector);
  else if (newSs !== null && newSs.descriptor !== null) {
    const stack = setAccessed(t, newSs.descriptor);
    if (isFault(stack)) return stack;
    ssLoaded = segmentFromDescriptor(newSs.selector, stack);
  }

  // IRETQ-13: the new RFLAGS, judged by the old CPL and IOPL; RF-02: with a 32/64-bit operand size
  // IRET loads RF from the image.
  const rflags = iretRflags(m.rflags, tempRflags, size, oldCpl, iopl(m));
  if (size >= 4) t.hit("RF-02");

  // ---- commit (no fault past this line) -------------------------------------------------
  t.update("IRETQ-13", { rflags });
  t.update("IRETQ-14", { cs: segmentFromDescriptor(csSel, csLoaded), rip: newRip });
  if (ssLoaded !== null) {
    // A compatibility-mode target's stack pointer is written at the new SS's width (SDM Vol. 3A
    // §6.14.3: "The SS/ESP/RSP size adjustment is determined by the stack size"): SS.B = 0 loads SP
    // only and RSP bits 63:16 keep what they held when IRET began (docs/model-choices.md, row
    // "Return to a 16-bit stack (SS.B = 0)"; silicon's espfix leak).
    t.writeGpr("IRETQ-15", RSP, target64 ? tempRsp : withStackPointer(t.gpr(RSP), tempRsp, stackWidthMask(ssLoaded)));
    t.update("IRETQ-15", { ss: ssLoaded });
  } else {
    // Compatibility mode, same privilege: the stack pointer moves past the three slots (SS.B width).
    t.moveStackPointer("IRETQ-15", BigInt(3 * size));
  }
  if (outer) nullInaccessibleDataSegments(t, rpl, "IRETQ-16", "null-selectors-too");
  return undefined;
}

/**
 * Callable alone: IRET with operand size `size` on `state`. Returns the machine after the return, or
 * the fault IRET raised (as data); IRETQ-00 (NMIs unblocked even when IRET faults) is then the
 * caller's to apply to the state it delivers on.
 */
export function iret(state: Machine, size: IretSize, profile: Profile): Machine | Fault {
  return runAlone(state, profile, (t) => iretOn(t, size));
}

/** IRET in the instruction table: the operand size is the size of each popped slot. */
export function execIret(t: Transaction, insn: Instruction): Fault | undefined {
  return iretOn(t, iretSize(insn.operandSize));
}

function iretSize(operandSize: OperandSize): IretSize {
  return operandSize === 8 ? 8 : operandSize === 2 ? 2 : 4;
}
