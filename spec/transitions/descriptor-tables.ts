// LGDT / LIDT (0F 01 /2, /3), SGDT / SIDT (0F 01 /0, /1) and LTR (0F 00 /3) — SDM Vol. 2A "LGDT/LIDT",
// "SGDT", "SIDT", "LTR". Rule IDs from the digest §18.
import { GP, isFault, NP, type Fault } from "../fault.ts";
import type { Instruction, MemOperand } from "../decode/instruction.ts";
import { CR4, in64BitMode } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isNullSelector, readDescriptor, segmentFromDescriptor, selectorTi,
} from "../segmentation/descriptor.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const DESCRIPTOR_TABLE_RULES = defineRules([
  { id: "DT-01", description: "LGDT / LIDT: CPL != 0: #GP(0); reads limit (2 bytes) and base (8 bytes in 64-bit mode, else 4; 24 bits with a 16-bit operand); no check of the base", source: "SDM Vol. 2A LGDT/LIDT" },
  { id: "DT-02", description: "LTR: CPL != 0: #GP(0); NULL: #GP(0); TI = 1 or 16-byte descriptor beyond the GDT limit: #GP(sel); not an available 64-bit TSS or upper type bits != 0: #GP(sel); not present: #NP(sel)", source: "SDM Vol. 2A LTR" },
  { id: "DT-05", description: "SGDT / SIDT: with CR4.UMIP = 1 at CPL > 0: #GP(0); otherwise store limit and base (10 bytes in 64-bit mode, else 6 with the full 32-bit base) at the current CPL", source: "SDM Vol. 2B SGDT, SIDT" },
  { id: "DT-06", description: "LTR sets the busy bit of the TSS descriptor in the GDT (locked implicit write) and loads TR from it", source: "SDM Vol. 2A LTR" },
]);

/** TSS descriptor types in IA-32e mode (SDM Vol. 3A Table 3-2); the descriptor is 16 bytes in
 *  compatibility mode too (the model runs only in IA-32e mode). The register form of
 *  LGDT/LIDT/SGDT/SIDT is #UD at decode. */
const TSS64_AVAILABLE = 9;

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
  const raw = t.readLinear(t.linearAddress(op, t.m.rip), size, t.dataMode(), { stack: op.stackSegment });
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
  return t.writeLinear(t.linearAddress(op, t.m.rip), size, ((base & baseMask) << 16n) | BigInt(limit & 0xffff), t.dataMode(), { stack: op.stackSegment });
}

export function execLtr(t: Transaction, insn: Instruction): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error("ltr: decoder gave no operand");
  if (t.cpl() !== 0) return t.fault("DT-02", GP, 0);
  const source = op.kind === "mem" ? t.readLinear(t.linearAddress(op, t.m.rip), 2, t.dataMode(), { stack: op.stackSegment }) : t.read(op, t.m.rip);
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
