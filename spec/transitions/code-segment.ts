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

/** The instruction pointer a transfer to `d` loads from `value` (already masked to the operand
 *  size): all of it for a 64-bit target (L = 1); for a compatibility-mode target, EIP — bits 31:0,
 *  zero-extended (docs/model-choices.md, "Transfers into compatibility mode"). */
export function targetRip(d: Descriptor, value: bigint): bigint {
  return d.l === 1 ? value : value & 0xffff_ffffn;
}

/** The target RIP (`targetRip`): canonical for a 64-bit target (L = 1), else EIP within the CS
 *  limit; #GP(0). */
export function checkTargetRip(t: Transaction, d: Descriptor, rip: bigint, rule: RuleId): Fault | undefined {
  const ok = d.l === 1 ? canonical(rip) : rip <= BigInt(d.limit);
  return ok ? undefined : t.fault(rule, GP, 0);
}
