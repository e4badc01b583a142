// MOV to/from CR0, CR2, CR3, CR4, CR8 (0F 20 /r, 0F 22 /r), CLTS (0F 06), SMSW and LMSW (0F 01 /4,
// /6) — SDM Vol. 2B "MOV—Move to/from Control Registers", "CLTS", "SMSW", Vol. 2A "LMSW"; Vol. 3A
// §2.5, §4.10.1 (PCIDs). Rule IDs from the digest §17; MOVCR-11 on and MSW- are the model's.
import { match } from "ts-pattern";
import { GP, isFault, UD, type Fault } from "../fault.ts";
import type { Instruction, Operand } from "../decode/instruction.ts";
import { CR4_MODELLED, MAXPHYADDR } from "../../contract/scope.ts";
import type { Machine, MachineRegisters } from "../machine/machine.ts";
import { CR0, CR4, EFER, in64BitMode, MASK64 } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone, runInstructionAloneOrUnsupported } from "../transaction/alone.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const CONTROL_REGISTER_RULES = defineRules([
  { id: "MOVCR-01", description: "MOV to or from a control register at CPL != 0: #GP(0)", source: "SDM Vol. 2B MOV—Move to/from Control Registers" },
  { id: "MOVCR-02", description: "CR1, CR5-CR7, CR9-CR15: #UD", source: "SDM Vol. 2B MOV—Move to/from Control Registers" },
  { id: "MOVCR-03", description: "write CR0: bits 63:32 set, PG without PE, NW without CD, or clearing PG in 64-bit mode: #GP(0); reserved bits 31:0 ignored (read as 0), ET reads as 1", source: "SDM Vol. 2B MOV CR; Vol. 3A §2.5" },
  { id: "MOVCR-04", description: "write CR3: bits at or above MAXPHYADDR (46) set: #GP(0); otherwise stored as written", source: "SDM Vol. 2B MOV CR; Vol. 3A §4.5" },
  { id: "MOVCR-05", description: "write CR4: a bit outside the modelled set (reserved for this CPU) or clearing PAE while EFER.LMA = 1: #GP(0)", source: "SDM Vol. 2B MOV CR; Vol. 3A §2.5" },
  { id: "MOVCR-06", description: "write CR8: bits 63:4 set: #GP(0)", source: "SDM Vol. 2B MOV CR" },
  { id: "MOVCR-07", description: "CR2 is read and written as a full 64-bit value", source: "SDM Vol. 3A §2.5" },
  { id: "MOVCR-08", description: "MOV CR leaves the arithmetic flags unchanged (architecturally undefined)", source: "SDM Vol. 2B MOV CR", recordedWith: ["MOVCR-03", "MOVCR-04", "MOVCR-05", "MOVCR-06", "MOVCR-07", "MOVCR-09"] },
  { id: "MOVCR-09", description: "MOV from CR0/CR2/CR3/CR4/CR8 copies the register to the destination (32 bits outside 64-bit mode)", source: "SDM Vol. 2B MOV CR" },
  { id: "MOVCR-10", description: "clearing CR0.PG in compatibility mode would leave IA-32e mode: outside the model, the step stops as unsupported", source: "SDM Vol. 3A §10.8.5" },
  { id: "MOVCR-11", description: "write CR3 with CR4.PCIDE = 1: bit 63 is the no-flush bit (no TLB: no effect) and is not stored; bits 62:46 set: #GP(0); bits 11:0 (the PCID) stored", source: "SDM Vol. 2B MOV CR (\"does not modify bit 63 of CR3\"); Vol. 3A §4.10.4.1" },
  { id: "MOVCR-12", description: "write CR4 setting PCIDE (0 -> 1) while CR3[11:0] != 0: #GP(0); clearing PCIDE is allowed", source: "SDM Vol. 2B MOV CR, 64-Bit Mode Exceptions" },
  { id: "MOVCR-13", description: "write CR0 clearing PG in compatibility mode while CR4.PCIDE = 1: #GP(0)", source: "SDM Vol. 2B MOV CR, Compatibility Mode Exceptions" },
  { id: "MSW-01", description: "SMSW with CR4.UMIP = 1 at CPL > 0: #GP(0), before the store", source: "SDM Vol. 2B SMSW; Vol. 3A §2.5 (UMIP)" },
  { id: "MSW-02", description: "SMSW: to memory CR0[15:0] (16 bits); to a register CR0 at the operand size (16: bits 15:0 merged; 32: CR0[31:0] zero-extended, compatibility mode too; 64: CR0)", source: "SDM Vol. 2B SMSW" },
  { id: "MSW-03", description: "LMSW at CPL != 0: #GP(0), before the operand is read", source: "SDM Vol. 2A LMSW" },
  { id: "MSW-04", description: "LMSW: CR0[3:0] (PE MP EM TS) <- source[3:0], except that PE cannot be cleared; no other bit changes", source: "SDM Vol. 2A LMSW" },
  { id: "CLTS-01", description: "CLTS at CPL != 0: #GP(0)", source: "SDM Vol. 2A CLTS" },
  { id: "CLTS-02", description: "CLTS clears CR0.TS", source: "SDM Vol. 2A CLTS" },
]);

/** CR0 bits this CPU implements; writes to the others are ignored (they read as 0). */
const CR0_DEFINED = CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG;
const CR3_RESERVED = MASK64 & ~((1n << BigInt(MAXPHYADDR)) - 1n);

export type ControlRegister = 0 | 2 | 3 | 4 | 8;

function isControlRegister(cr: number): cr is ControlRegister {
  return cr === 0 || cr === 2 || cr === 3 || cr === 4 || cr === 8;
}

function readCr(m: MachineRegisters, cr: ControlRegister): bigint {
  return match(cr)
    .with(0, () => m.cr0)
    .with(2, () => m.cr2)
    .with(3, () => m.cr3)
    .with(4, () => m.cr4)
    .with(8, () => m.cr8)
    .exhaustive();
}

/** MOV to CRn once CPL is checked: the register's own checks, then its update. */
export function writeCr(t: Transaction, cr: ControlRegister, value: bigint): Fault | UnsupportedOutcome | undefined {
  return match(cr)
    .with(0, () => writeCr0(t, value))
    .with(2, () => writeCr2(t, value))
    .with(3, () => writeCr3(t, value))
    .with(4, () => writeCr4(t, value))
    .with(8, () => writeCr8(t, value))
    .exhaustive();
}

function writeCr0(t: Transaction, value: bigint): Fault | UnsupportedOutcome | undefined {
  if (value >> 32n !== 0n) return t.fault("MOVCR-03", GP, 0);
  if ((value & CR0.PG) !== 0n && (value & CR0.PE) === 0n) return t.fault("MOVCR-03", GP, 0);
  if ((value & CR0.NW) !== 0n && (value & CR0.CD) === 0n) return t.fault("MOVCR-03", GP, 0);
  if ((value & CR0.PG) === 0n) {
    if (in64BitMode(t.m)) return t.fault("MOVCR-03", GP, 0);
    if ((t.m.cr4 & CR4.PCIDE) !== 0n) return t.fault("MOVCR-13", GP, 0);
    return t.unsupported("MOVCR-10", "MOV CR0 clearing PG in compatibility mode leaves IA-32e mode (outside the model)");
  }
  t.update("MOVCR-03", { cr0: (value & CR0_DEFINED) | CR0.ET });
  return undefined;
}

function writeCr2(t: Transaction, value: bigint): undefined {
  t.update("MOVCR-07", { cr2: value });
  return undefined;
}

/** CR3 bit 63: with CR4.PCIDE = 1, MOV to CR3's "do not flush" bit, never stored. */
const CR3_NO_FLUSH = 1n << 63n;

function writeCr3(t: Transaction, value: bigint): Fault | undefined {
  if ((t.m.cr4 & CR4.PCIDE) !== 0n) {
    if ((value & CR3_RESERVED & ~CR3_NO_FLUSH) !== 0n) return t.fault("MOVCR-11", GP, 0);
    t.update("MOVCR-11", { cr3: value & ~CR3_NO_FLUSH });
    return undefined;
  }
  if ((value & CR3_RESERVED) !== 0n) return t.fault("MOVCR-04", GP, 0);
  t.update("MOVCR-04", { cr3: value });
  return undefined;
}

function writeCr4(t: Transaction, value: bigint): Fault | undefined {
  if ((value & ~CR4_MODELLED) !== 0n) return t.fault("MOVCR-05", GP, 0);
  if ((value & CR4.PAE) === 0n && (t.m.efer & EFER.LMA) !== 0n) return t.fault("MOVCR-05", GP, 0);
  if ((value & ~t.m.cr4 & CR4.PCIDE) !== 0n && (t.m.cr3 & 0xfffn) !== 0n) return t.fault("MOVCR-12", GP, 0);
  t.update("MOVCR-05", { cr4: value });
  return undefined;
}

function writeCr8(t: Transaction, value: bigint): Fault | undefined {
  if ((value & ~0xfn) !== 0n) return t.fault("MOVCR-06", GP, 0);
  t.update("MOVCR-06", { cr8: value });
  return undefined;
}

function crOperand(insn: Instruction): { cr: number; other: Operand } {
  const [a, b] = insn.operands;
  if (a?.kind === "cr" && b !== undefined) return { cr: a.cr, other: b };
  if (b?.kind === "cr" && a !== undefined) return { cr: b.cr, other: a };
  throw new Error(`${insn.mnemonic}: decoder gave no control-register operand`);
}

export function execMovToCr(t: Transaction, insn: Instruction): Fault | UnsupportedOutcome | undefined {
  const { cr, other } = crOperand(insn);
  if (!isControlRegister(cr)) return t.fault("MOVCR-02", UD);
  t.hit("MOVCR-02");
  if (t.cpl() !== 0) return t.fault("MOVCR-01", GP, 0);
  const value = t.read(other, t.m.rip);
  if (isFault(value)) return value;
  return writeCr(t, cr, value);
}

export function execMovFromCr(t: Transaction, insn: Instruction): Fault | undefined {
  const { cr, other } = crOperand(insn);
  if (!isControlRegister(cr)) return t.fault("MOVCR-02", UD);
  t.hit("MOVCR-02");
  if (t.cpl() !== 0) return t.fault("MOVCR-01", GP, 0);
  return t.write(other, readCr(t.m, cr), t.m.rip, cr === 2 ? "MOVCR-07" : "MOVCR-09");
}

/** SMSW (0F 01 /4): the UMIP check, then CR0 stored (MSW-02). */
export function execSmsw(t: Transaction, insn: Instruction): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error("smsw: decoder gave no operand");
  if ((t.m.cr4 & CR4.UMIP) !== 0n && t.cpl() > 0) return t.fault("MSW-01", GP, 0);
  // To memory the machine status word, 16 bits; to a register CR0 at the operand size (t.write:
  // 16 bits merge, 32 and 64 zero-extend).
  return t.write(op, op.kind === "mem" ? t.m.cr0 & 0xffffn : t.m.cr0, t.m.rip, "MSW-02");
}

/** CR0 bits LMSW loads. */
const MSW_BITS = CR0.PE | CR0.MP | CR0.EM | CR0.TS;

/** LMSW (0F 01 /6). */
export function execLmsw(t: Transaction, insn: Instruction): Fault | undefined {
  const op = insn.operands[0];
  if (op === undefined) throw new Error("lmsw: decoder gave no operand");
  if (t.cpl() !== 0) return t.fault("MSW-03", GP, 0);
  const source = t.read(op, t.m.rip);
  if (isFault(source)) return source;
  const cr0 = t.m.cr0;
  // PE can be set but not cleared (it is always set in IA-32e mode).
  t.update("MSW-04", { cr0: (cr0 & ~MSW_BITS) | (source & MSW_BITS) | (cr0 & CR0.PE) });
  return undefined;
}

export function execClts(t: Transaction): Fault | undefined {
  if (t.cpl() !== 0) return t.fault("CLTS-01", GP, 0);
  t.update("CLTS-02", { cr0: t.m.cr0 & ~CR0.TS });
  return undefined;
}

/** MOV CRn, value alone (`length` bytes: 3, or 4 with a REX prefix); CPL checked as the instruction does. */
export function movToCr(state: Machine, cr: ControlRegister, value: bigint, profile: Profile, length = 3): Machine | Fault | UnsupportedOutcome {
  return runInstructionAloneOrUnsupported(state, profile, length, (t) => {
    if (t.cpl() !== 0) return t.fault("MOVCR-01", GP, 0);
    return writeCr(t, cr, value & (in64BitMode(state) ? MASK64 : 0xffff_ffffn));
  });
}

/** CLTS alone (2 bytes). */
export function clts(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 2, execClts);
}
