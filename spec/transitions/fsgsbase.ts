// RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (F3 0F AE /0–/3, register forms, 64-bit mode only) — SDM
// Vol. 2B "RDFSBASE/RDGSBASE", "WRFSBASE/WRGSBASE". Any CPL, once the OS sets CR4.FSGSBASE; the
// paranoid entry of Linux reads and writes GS this way. The decoder raises #UD outside 64-bit mode
// (DECODE-MODE) and for LOCK (DECODE-LOCK).
import { GP, isFault, UD, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import { segment } from "../machine/machine.ts";
import { canonical, CR4 } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const FSGSBASE_RULES = defineRules([
  { id: "FSGSBASE-01", description: "RDFSBASE / RDGSBASE / WRFSBASE / WRGSBASE with CR4.FSGSBASE = 0: #UD", source: "SDM Vol. 2B RDFSBASE/RDGSBASE, WRFSBASE/WRGSBASE" },
  { id: "FSGSBASE-02", description: "RDFSBASE / RDGSBASE: the register <- the FS / GS base (32-bit operand: bits 31:0, zero-extended)", source: "SDM Vol. 2B RDFSBASE/RDGSBASE" },
  { id: "FSGSBASE-03", description: "WRFSBASE / WRGSBASE with a 64-bit operand that is not canonical: #GP(0)", source: "SDM Vol. 2B WRFSBASE/WRGSBASE" },
  { id: "FSGSBASE-04", description: "WRFSBASE / WRGSBASE: the FS / GS base <- the register (32-bit: zero-extended); selector and the rest of the hidden part unchanged; IA32_FS_BASE / IA32_GS_BASE are the same value", source: "SDM Vol. 2B WRFSBASE/WRGSBASE" },
]);

function register(insn: Instruction) {
  const op = insn.operands[0];
  if (op?.kind !== "reg") throw new Error(`${insn.mnemonic}: decoder gave no register operand`);
  return op;
}

function readBase(t: Transaction, insn: Instruction, sreg: "fs" | "gs"): Fault | undefined {
  if ((t.m.cr4 & CR4.FSGSBASE) === 0n) return t.fault("FSGSBASE-01", UD);
  return t.write(register(insn), t.m[sreg].base, t.m.rip, "FSGSBASE-02");
}

function writeBase(t: Transaction, insn: Instruction, sreg: "fs" | "gs"): Fault | undefined {
  if ((t.m.cr4 & CR4.FSGSBASE) === 0n) return t.fault("FSGSBASE-01", UD);
  const base = t.read(register(insn), t.m.rip);
  if (isFault(base)) return base;
  if (!canonical(base)) return t.fault("FSGSBASE-03", GP, 0);
  t.update("FSGSBASE-04", sreg === "fs" ? { fs: segment({ ...t.m.fs, base }) } : { gs: segment({ ...t.m.gs, base }) });
  return undefined;
}

export const execRdfsbase = (t: Transaction, insn: Instruction): Fault | undefined => readBase(t, insn, "fs");
export const execRdgsbase = (t: Transaction, insn: Instruction): Fault | undefined => readBase(t, insn, "gs");
export const execWrfsbase = (t: Transaction, insn: Instruction): Fault | undefined => writeBase(t, insn, "fs");
export const execWrgsbase = (t: Transaction, insn: Instruction): Fault | undefined => writeBase(t, insn, "gs");
