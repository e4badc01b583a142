// MOV to/from DR0–DR7 (0F 21 /r, 0F 23 /r) — SDM Vol. 2B "MOV—Move to/from Debug Registers";
// Vol. 3A §19.2 (the debug registers). The registers are state; breakpoints are not modelled, so a
// MOV to DR7 that would arm one (or general detection) stops as `unsupported`, and a state with
// one armed is refused (contract/scope.ts DR7_ARMING). DR6.BS on a single-step trap: boundary.ts
// (TF-03). The decoder raises #UD for REX.R (DECODE-DR).
import { GP, isFault, UD, type Fault } from "../fault.ts";
import type { Instruction, Operand } from "../decode/instruction.ts";
import { DR7_ARMING } from "../../contract/scope.ts";
import type { Machine, MachineRegisters } from "../machine/machine.ts";
import { CR4 } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const DEBUG_REGISTER_RULES = defineRules([
  { id: "MOVDR-01", description: "MOV to/from DR4 or DR5 with CR4.DE = 1: #UD, before the privilege check", source: "SDM Vol. 2B MOV DR" },
  { id: "MOVDR-02", description: "MOV to/from a debug register at CPL != 0: #GP(0)", source: "SDM Vol. 2B MOV DR" },
  { id: "MOVDR-03", description: "With CR4.DE = 0, DR4 and DR5 are DR6 and DR7", source: "SDM Vol. 2B MOV DR; Vol. 3A §19.2.2" },
  { id: "MOVDR-04", description: "MOV to DR0–DR3: the breakpoint address, any value (a 32-bit source in compatibility mode is zero-extended)", source: "SDM Vol. 3A §19.2.1" },
  { id: "MOVDR-05", description: "MOV to DR6: bits 63:32 set: #GP(0); stored (value AND E00FH) OR FFFF0FF0H (B0–B3, BD, BS, BT writable, the rest fixed)", source: "SDM Vol. 2B MOV DR; Vol. 3A §19.2.3" },
  { id: "MOVDR-06", description: "MOV to DR7: bits 63:32 set: #GP(0); arming a breakpoint (L0–L3, G0–G3) or GD: unsupported (no breakpoint is modelled); else stored (value AND FFFF23FFH) OR 400H", source: "SDM Vol. 2B MOV DR; Vol. 3A §19.2.4" },
  { id: "MOVDR-07", description: "MOV from a debug register: its value (bits 31:0 in compatibility mode); flags unchanged", source: "SDM Vol. 2B MOV DR" },
]);

/** DR6 bits software can write: B0–B3, BD, BS, BT; the others read as their fixed values. */
const DR6_WRITABLE = 0xe00fn;
const DR6_FIXED = 0xffff_0ff0n;
/** DR7 bits that are not reserved: L0–G3, LE, GE, GD, R/W and LEN; bit 10 reads as 1. */
const DR7_WRITABLE = 0xffff_23ffn;
const DR7_FIXED = 0x400n;

type DebugRegister = 0 | 1 | 2 | 3 | 6 | 7;

function drOperand(insn: Instruction): { dr: number; other: Operand } {
  const [a, b] = insn.operands;
  if (a?.kind === "dr" && b !== undefined) return { dr: a.dr, other: b };
  if (b?.kind === "dr" && a !== undefined) return { dr: b.dr, other: a };
  throw new Error(`${insn.mnemonic}: decoder gave no debug-register operand`);
}

/** MOVDR-01 / MOVDR-03 / MOVDR-02: which register the instruction names, or its fault. */
function checkedRegister(t: Transaction, dr: number): DebugRegister | Fault {
  const alias = dr === 4 || dr === 5;
  if (alias && (t.m.cr4 & CR4.DE) !== 0n) return t.fault("MOVDR-01", UD);
  if (t.cpl() !== 0) return t.fault("MOVDR-02", GP, 0);
  if (alias) t.hit("MOVDR-03");
  return (alias ? dr + 2 : dr) as DebugRegister;
}

function readDr(m: MachineRegisters, dr: DebugRegister): bigint {
  switch (dr) {
    case 0: return m.dr0;
    case 1: return m.dr1;
    case 2: return m.dr2;
    case 3: return m.dr3;
    case 6: return m.dr6;
    case 7: return m.dr7;
  }
}

export function execMovFromDr(t: Transaction, insn: Instruction): Fault | undefined {
  const { dr, other } = drOperand(insn);
  const register = checkedRegister(t, dr);
  if (isFault(register)) return register;
  return t.write(other, readDr(t.m, register), t.m.rip, "MOVDR-07");
}

export function execMovToDr(t: Transaction, insn: Instruction): Fault | UnsupportedOutcome | undefined {
  const { dr, other } = drOperand(insn);
  const register = checkedRegister(t, dr);
  if (isFault(register)) return register;
  const value = t.read(other, t.m.rip);
  if (isFault(value)) return value;
  switch (register) {
    case 0: t.update("MOVDR-04", { dr0: value }); return undefined;
    case 1: t.update("MOVDR-04", { dr1: value }); return undefined;
    case 2: t.update("MOVDR-04", { dr2: value }); return undefined;
    case 3: t.update("MOVDR-04", { dr3: value }); return undefined;
    case 6:
      if (value >> 32n !== 0n) return t.fault("MOVDR-05", GP, 0);
      t.update("MOVDR-05", { dr6: (value & DR6_WRITABLE) | DR6_FIXED });
      return undefined;
    case 7:
      if (value >> 32n !== 0n) return t.fault("MOVDR-06", GP, 0);
      if ((value & DR7_ARMING) !== 0n) return t.unsupported("MOVDR-06", "MOV DR7 arming a breakpoint or general detection: debug exceptions on a match are not modelled");
      t.update("MOVDR-06", { dr7: (value & DR7_WRITABLE) | DR7_FIXED });
      return undefined;
  }
}
