// LGDT / LIDT (0F 01 /2, /3), SGDT / SIDT (0F 01 /0, /1), LTR (0F 00 /3), LLDT (0F 00 /2), SLDT
// (0F 00 /0) and STR (0F 00 /1) — SDM Vol. 2A "LGDT/LIDT", "LLDT", "LTR", Vol. 2B "SGDT", "SIDT",
// "SLDT", "STR". Rule IDs from the digest §18; DT-07 on are the model's.
import { GP, isFault, NP, type Fault } from "../fault.ts";
import type { Instruction, MemOperand } from "../decode/instruction.ts";
import { CR4, in64BitMode } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isNullSelector, nullSegment, readDescriptor, segmentFromDescriptor, selectorTi,
} from "../segmentation/descriptor.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const DESCRIPTOR_TABLE_RULES = defineRules([
  { id: "DT-01", description: "LGDT / LIDT: CPL != 0: #GP(0); reads limit (2 bytes) and base (8 bytes in 64-bit mode, else 4; 24 bits with a 16-bit operand); no check of the base", source: "SDM Vol. 2A LGDT/LIDT" },
  { id: "DT-02", description: "LTR: CPL != 0: #GP(0); NULL: #GP(0); TI = 1 or 16-byte descriptor beyond the GDT limit: #GP(sel); not an available 64-bit TSS or upper type bits != 0: #GP(sel); not present: #NP(sel)", source: "SDM Vol. 2A LTR" },
  { id: "DT-05", description: "SGDT / SIDT: with CR4.UMIP = 1 at CPL > 0: #GP(0); otherwise store limit and base (10 bytes in 64-bit mode, else 6 with the full 32-bit base) at the current CPL", source: "SDM Vol. 2B SGDT, SIDT" },
  { id: "DT-06", description: "LTR sets the busy bit of the TSS descriptor in the GDT (locked implicit write) and loads TR from it", source: "SDM Vol. 2A LTR" },
  { id: "DT-07", description: "SLDT / STR: with CR4.UMIP = 1 at CPL > 0: #GP(0), before the store", source: "SDM Vol. 2B SLDT, STR; Vol. 3A §2.5 (UMIP)" },
  { id: "DT-08", description: "SLDT / STR store the LDTR / TR selector: 16 bits to memory; to a register at the operand size (16: bits 15:0 only; 32 and 64: zero-extended)", source: "SDM Vol. 2B SLDT, STR" },
  { id: "DT-09", description: "LLDT: CPL != 0: #GP(0), before the operand is read", source: "SDM Vol. 2A LLDT" },
  { id: "DT-10", description: "LLDT with a NULL selector (bits 15:2 = 0): LDTR <- the selector, marked unusable; no descriptor is read", source: "SDM Vol. 2A LLDT" },
  { id: "DT-11", description: "LLDT: TI = 1 or a 16-byte descriptor beyond the GDT limit: #GP(sel); not an LDT descriptor (S = 0, type 2) or upper type bits != 0: #GP(sel); not present: #NP(sel)", source: "SDM Vol. 2A LLDT" },
  { id: "DT-12", description: "LLDT: LDTR <- the selector and the descriptor (64-bit base, limit scaled by G); no accessed or busy bit is written", source: "SDM Vol. 2A LLDT" },
]);

/** TSS descriptor types in IA-32e mode (SDM Vol. 3A Table 3-2); the descriptor is 16 bytes in
 *  compatibility mode too (the model runs only in IA-32e mode). The register form of
 *  LGDT/LIDT/SGDT/SIDT is #UD at decode. */
const TSS64_AVAILABLE = 9;
/** LDT descriptor type (SDM Vol. 3A Table 3-2). */
const LDT_TYPE = 2;

function memoryOperand(insn: Instruction): MemOperand {
  const op = insn.operands[0];
  if (op?.kind !== "mem") throw new Error(`${insn.mnemonic}: decoder gave no memory operand`);
  return op;
}

/** Bytes of the pseudo-descriptor: 2 of limit and 8 of base in 64-bit mode, else 4 of base. */
function pseudoDescriptorSize(t: Transaction): number {
  return in64BitMode(t.m) ? 10 : 6;
}

function loadTable(t: Transaction, insn: Instruction, table: "gdtr" | "idtr"): Fault | undefined {
  const op = memoryOperand(insn);
  if (t.cpl() !== 0) return t.fault("DT-01", GP, 0);
  const size = pseudoDescriptorSize(t);
  const linear = t.memoryLinear(op, t.m.rip, "read", size);
  if (isFault(linear)) return linear;
  const raw = t.readLinear(linear, size, t.dataMode(), { stack: op.stackSegment });
  if (isFault(raw)) return raw;
  const limit = Number(raw & 0xffffn);
  let base = raw >> 16n;
  if (size === 6 && insn.operandSize === 2) base &= 0xff_ffffn;
  t.update("DT-01", table === "gdtr" ? { gdtr: { base, limit } } : { idtr: { base, limit } });
  return undefined;
}

function storeTable(t: Transaction, insn: Instruction, table: "gdtr" | "idtr"): Fault | undefined {
  const op = memoryOperand(insn);
  if ((t.m.cr4 & CR4.UMIP) !== 0n && t.cpl() > 0) return t.fault("DT-05", GP, 0);
  const size = pseudoDescriptorSize(t);
  const { base, limit } = t.m[table];
  const baseMask = size === 10 ? (1n << 64n) - 1n : 0xffff_ffffn;
  // DT-05: the pseudo-descriptor is written at the current CPL (an ordinary data write).
  t.hit("DT-05");
  const linear = t.memoryLinear(op, t.m.rip, "write", size);
  if (isFault(linear)) return linear;
  // #AC (SMAP-06): "GDTR, IDTR, LDTR, or task register contents" need 4-byte alignment (SDM Table 6-7).
  return t.writeLinear(linear, size, ((base & baseMask) << 16n) | BigInt(limit & 0xffff), t.dataMode(), { stack: op.stackSegment, alignment: 4 });
}

export function execLtr(t: Transaction, insn: Instruction): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error("ltr: decoder gave no operand");
  if (t.cpl() !== 0) return t.fault("DT-02", GP, 0);
  const source = t.read(op, t.m.rip);
  if (isFault(source)) return source;
  const selector = Number(source & 0xffffn);
  const code = selector & 0xfffc;
  // ---- checks, in the SDM's order ----
  if (isNullSelector(selector)) return t.fault("DT-02", GP, 0);
  if (selectorTi(selector) === 1) return t.fault("DT-02", GP, code);
  const where = descriptorLocation(t, selector, 16);
  if (!where.inside) return t.fault("DT-02", GP, code);
  const d = readDescriptor(t, where.address, true);
  if (isFault(d)) return d;
  if (d.s !== 0 || d.type !== TSS64_AVAILABLE) return t.fault("DT-02", GP, code);
  if (((d.high >> 40n) & 0x1fn) !== 0n) return t.fault("DT-02", GP, code);
  if (d.present === 0) return t.fault("DT-02", NP, code);
  // ---- updates: busy bit in memory, then TR ----
  const busy = Number((d.low >> 40n) & 0xffn) | 0x2;
  const f = t.writeLinear(d.address + 5n, 1, BigInt(busy), "implicit");
  if (isFault(f)) return f;
  t.update("DT-06", { tr: segmentFromDescriptor(selector, { ...d, type: d.type | 0x2 }) });
  return undefined;
}

export function execLgdt(t: Transaction, insn: Instruction): Fault | undefined {
  return loadTable(t, insn, "gdtr");
}

export function execLidt(t: Transaction, insn: Instruction): Fault | undefined {
  return loadTable(t, insn, "idtr");
}

export function execSgdt(t: Transaction, insn: Instruction): Fault | undefined {
  return storeTable(t, insn, "gdtr");
}

export function execSidt(t: Transaction, insn: Instruction): Fault | undefined {
  return storeTable(t, insn, "idtr");
}

/** LLDT (0F 00 /2): the LDT register from a GDT descriptor, or marked unusable for a NULL selector. */
export function execLldt(t: Transaction, insn: Instruction): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error("lldt: decoder gave no operand");
  if (t.cpl() !== 0) return t.fault("DT-09", GP, 0);
  const source = t.read(op, t.m.rip);
  if (isFault(source)) return source;
  const selector = Number(source & 0xffffn);
  if (isNullSelector(selector)) {
    t.update("DT-10", { ldtr: nullSegment(selector) });
    return undefined;
  }
  const code = selector & 0xfffc;
  // ---- checks, in the SDM's order ----
  if (selectorTi(selector) === 1) return t.fault("DT-11", GP, code);
  const where = descriptorLocation(t, selector, 16);
  if (!where.inside) return t.fault("DT-11", GP, code);
  const d = readDescriptor(t, where.address, true);
  if (isFault(d)) return d;
  if (d.s !== 0 || d.type !== LDT_TYPE) return t.fault("DT-11", GP, code);
  if (((d.high >> 40n) & 0x1fn) !== 0n) return t.fault("DT-11", GP, code);
  if (d.present === 0) return t.fault("DT-11", NP, code);
  // ---- update: LDTR (no accessed or busy bit for an LDT) ----
  t.update("DT-12", { ldtr: segmentFromDescriptor(selector, d) });
  return undefined;
}

/** SLDT (0F 00 /0) and STR (0F 00 /1): the UMIP check, then the selector stored (DT-08). */
function storeSelector(t: Transaction, insn: Instruction, selector: number): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error(`${insn.mnemonic}: decoder gave no operand`);
  if ((t.m.cr4 & CR4.UMIP) !== 0n && t.cpl() > 0) return t.fault("DT-07", GP, 0);
  // To memory: a 16-bit store, whatever the operand size; to a register: at the operand size
  // (t.write: 16 bits merge, 32 and 64 zero-extend).
  return t.write(op, BigInt(selector), t.m.rip, "DT-08");
}

export function execSldt(t: Transaction, insn: Instruction): Fault | undefined {
  return storeSelector(t, insn, t.m.ldtr.selector);
}

export function execStr(t: Transaction, insn: Instruction): Fault | undefined {
  return storeSelector(t, insn, t.m.tr.selector);
}
