// Checks shared by the far transfers that load CS from a descriptor (far RET, far JMP; IRET reads
// the same rules in its own words).
import { GP, type Fault } from "../fault.ts";
import { canonical } from "../machine/registers.ts";
import type { RuleId } from "../rules/rule.ts";
import type { Descriptor } from "../segmentation/descriptor.ts";
import type { Transaction } from "../transaction/transaction.ts";

/** GLOBAL-02: L = 1 with D = 1 is not a valid code segment in IA-32e mode. */
export function invalidLongCode(d: Descriptor): boolean {
  return d.l === 1 && d.db === 1;
}

/** The target RIP (the offset or popped value, masked to the operand size, all of it): canonical
 *  for a 64-bit target (L = 1), else within the CS limit — so a compatibility-mode target above
 *  4 GiB is #GP(0), never cut to its bits 31:0 (SDM JMP: "tempEIP ← DEST(Offset) … tempEIP outside
 *  code segment limit"; RET: "the return instruction pointer is not within the return code segment
 *  limit"; docs/model-choices.md, "Transfers into compatibility mode"). */
export function checkTargetRip(t: Transaction, d: Descriptor, rip: bigint, rule: RuleId): Fault | undefined {
  const ok = d.l === 1 ? canonical(rip) : rip <= BigInt(d.limit);
  return ok ? undefined : t.fault(rule, GP, 0);
}
