// INVPCID (66 0F 38 82 /r, memory operand only) — SDM Vol. 2B "INVPCID"; Vol. 3A §4.10.1 (PCIDs).
// No TLB is observable, so INVPCID is its checks: privilege, the descriptor read, the type and
// descriptor checks. The PCID part of CR3 and CR4.PCIDE: control-registers.ts (MOVCR-11, MOVCR-12).
import { GP, isFault, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import { canonical, CR4 } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const INVPCID_RULES = defineRules([
  { id: "INVPCID-01", description: "INVPCID at CPL != 0: #GP(0), before the descriptor is read", source: "SDM Vol. 2B INVPCID" },
  { id: "INVPCID-02", description: "INVPCID reads its 16-byte descriptor (a data read: canonical #GP(0)/#SS(0), compatibility-mode segment checks, #PF); an INVPCID type (the register) above 3: #GP(0)", source: "SDM Vol. 2B INVPCID" },
  { id: "INVPCID-03", description: "INVPCID: descriptor bits 63:12 not all 0: #GP(0)", source: "SDM Vol. 2B INVPCID" },
  { id: "INVPCID-04", description: "INVPCID type 0 or 1 with a PCID (descriptor bits 11:0) other than 0 while CR4.PCIDE = 0: #GP(0)", source: "SDM Vol. 2B INVPCID, 64-Bit Mode Exceptions; docs/discrepancies.md" },
  { id: "INVPCID-05", description: "INVPCID type 0 with a non-canonical linear address (descriptor bits 127:64): #GP(0)", source: "SDM Vol. 2B INVPCID" },
  { id: "INVPCID-06", description: "INVPCID that passes its checks: no architectural effect (no TLB is modelled)", source: "SDM Vol. 2B INVPCID" },
]);

export function execInvpcid(t: Transaction, insn: Instruction): Fault | undefined {
  const [typeOperand, descriptorOperand] = insn.operands;
  if (typeOperand === undefined || descriptorOperand?.kind !== "mem") throw new Error("invpcid: decoder gave no register and memory operand");
  if (t.cpl() !== 0) return t.fault("INVPCID-01", GP, 0);
  const descriptor = t.read(descriptorOperand, t.m.rip);
  if (isFault(descriptor)) return descriptor;
  const type = t.read(typeOperand, t.m.rip);
  if (isFault(type)) return type;
  if (type > 3n) return t.fault("INVPCID-02", GP, 0);
  const low = descriptor & 0xffff_ffff_ffff_ffffn;
  const address = descriptor >> 64n;
  if (low >> 12n !== 0n) return t.fault("INVPCID-03", GP, 0);
  if (type <= 1n && (low & 0xfffn) !== 0n && (t.m.cr4 & CR4.PCIDE) === 0n) return t.fault("INVPCID-04", GP, 0);
  if (type === 0n && !canonical(address)) return t.fault("INVPCID-05", GP, 0);
  t.hit("INVPCID-06");
  return undefined;
}
