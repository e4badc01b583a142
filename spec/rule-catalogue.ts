// Every rule of the model, collected from the family files that define them (each starts with its
// list). `npx ringspec rules --list` prints them; the rule-coverage report reads them from here.
import type { Rule, RuleId } from "./rules/rule.ts";
import { CONTEXT_RULE_LIST } from "./context/rules.ts";
import { DECODE_RULES } from "./decode/rules.ts";
import { DEVICE_RULES } from "./devices/devices.ts";
import { INSTRUCTION_RULES } from "./instructions/rules.ts";
import { PAGING_RULES } from "./paging/rules.ts";
import { BOUNDARY_RULES } from "./transitions/boundary.ts";
import { CONTROL_REGISTER_RULES } from "./transitions/control-registers.ts";
import { DEBUG_REGISTER_RULES } from "./transitions/debug-registers.ts";
import { FSGSBASE_RULES } from "./transitions/fsgsbase.ts";
import { INVPCID_RULES } from "./transitions/invpcid.ts";
import { SEGMENT_VERIFY_RULES } from "./transitions/segment-verify.ts";
import { SYSENTER_RULES } from "./transitions/sysenter.ts";
import { SEGMENT_CHECK_RULES } from "./transaction/segment-checks.ts";
import { DELIVER_RULES } from "./transitions/deliver.ts";
import { DESCRIPTOR_TABLE_RULES } from "./transitions/descriptor-tables.ts";
import { DOUBLE_FAULT_RULES } from "./transitions/double-fault.ts";
import { EXCEPTION_CLASS_RULES } from "./transitions/exception-classes.ts";
import { FAR_JUMP_RULES } from "./transitions/far-jump.ts";
import { FAR_RETURN_RULES } from "./transitions/far-return.ts";
import { HALT_RULES } from "./transitions/halt.ts";
import { INTERRUPT_FLAG_RULES } from "./transitions/interrupt-flag.ts";
import { IRET_RULES } from "./transitions/iret.ts";
import { MSR_RULES } from "./transitions/msr.ts";
import { PRIVILEGED_RULES } from "./transitions/privileged.ts";
import { SEGMENT_LOAD_RULES } from "./transitions/segment-load.ts";
import { SMAP_FLAG_RULES } from "./transitions/smap-flags.ts";
import { SOFTWARE_INTERRUPT_RULES } from "./transitions/software-interrupt.ts";
import { SWAPGS_RULES } from "./transitions/swapgs.ts";
import { SYSCALL_RULES } from "./transitions/syscall.ts";
import { SYSRET_RULES } from "./transitions/sysret.ts";

/** The families, in reading order: the transitions, then the general instructions, paging, the
 *  decoder, the devices, and the context-switch rules a kernel obeys (spec/context/). */
const FAMILIES: readonly (readonly Rule[])[] = [
  SYSCALL_RULES, SYSRET_RULES, SWAPGS_RULES, DELIVER_RULES, DOUBLE_FAULT_RULES, EXCEPTION_CLASS_RULES,
  IRET_RULES, SOFTWARE_INTERRUPT_RULES, BOUNDARY_RULES, INTERRUPT_FLAG_RULES, HALT_RULES, MSR_RULES,
  CONTROL_REGISTER_RULES, DESCRIPTOR_TABLE_RULES, SEGMENT_LOAD_RULES, FAR_RETURN_RULES, FAR_JUMP_RULES,
  SMAP_FLAG_RULES, PRIVILEGED_RULES, SYSENTER_RULES, DEBUG_REGISTER_RULES, SEGMENT_VERIFY_RULES, FSGSBASE_RULES,
  INVPCID_RULES, SEGMENT_CHECK_RULES,
  INSTRUCTION_RULES, PAGING_RULES, DECODE_RULES, DEVICE_RULES, CONTEXT_RULE_LIST,
];

const byId = new Map<RuleId, Rule>();
for (const family of FAMILIES)
  for (const rule of family) {
    if (byId.has(rule.id)) throw new Error(`rule ${rule.id} defined twice`);
    byId.set(rule.id, rule);
  }

/** Rule → the rules recorded with it (Rule.recordedWith, read the other way round). */
const implied = new Map<RuleId, RuleId[]>();
for (const rule of byId.values()) {
  if (rule.recordedWith === undefined) continue;
  for (const anchor of typeof rule.recordedWith === "string" ? [rule.recordedWith] : rule.recordedWith) {
    if (!byId.has(anchor)) throw new Error(`rule ${rule.id} is recorded with ${anchor}, which is not defined`);
    const list = implied.get(anchor) ?? [];
    list.push(rule.id);
    implied.set(anchor, list);
  }
}

const sorted = [...byId.values()].sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));

export function allRules(): readonly Rule[] {
  return sorted;
}

export function ruleById(id: RuleId): Rule | undefined {
  return byId.get(id);
}

/** Adds to `coverage` the rules recorded with the ones it holds (Rule.recordedWith). */
export function recordImpliedRules(coverage: Set<RuleId>): void {
  for (const [anchor, rules] of implied) if (coverage.has(anchor)) for (const rule of rules) coverage.add(rule);
}
