// Rule coverage of a campaign: which of the spec's rules its cases exercised. The transition rules
// (SYSCALL, SYSRET, SWAPGS, delivery, #DF, exception classes, IRET, INT n, boundary events, IF,
// HLT, MSRs, CRs, descriptor tables, segment loads, far RET/JMP, SMAP flags, privileged
// instructions) are the ones the default campaign must reach; README names each it does not.
import { BOUNDARY_RULES } from "../../spec/transitions/boundary.ts";
import { CONTROL_REGISTER_RULES } from "../../spec/transitions/control-registers.ts";
import { DELIVER_RULES } from "../../spec/transitions/deliver.ts";
import { DESCRIPTOR_TABLE_RULES } from "../../spec/transitions/descriptor-tables.ts";
import { DOUBLE_FAULT_RULES } from "../../spec/transitions/double-fault.ts";
import { EXCEPTION_CLASS_RULES } from "../../spec/transitions/exception-classes.ts";
import { FAR_JUMP_RULES } from "../../spec/transitions/far-jump.ts";
import { FAR_RETURN_RULES } from "../../spec/transitions/far-return.ts";
import { HALT_RULES } from "../../spec/transitions/halt.ts";
import { INTERRUPT_FLAG_RULES } from "../../spec/transitions/interrupt-flag.ts";
import { IRET_RULES } from "../../spec/transitions/iret.ts";
import { MSR_RULES } from "../../spec/transitions/msr.ts";
import { PRIVILEGED_RULES } from "../../spec/transitions/privileged.ts";
import { SEGMENT_LOAD_RULES } from "../../spec/transitions/segment-load.ts";
import { SMAP_FLAG_RULES } from "../../spec/transitions/smap-flags.ts";
import { SOFTWARE_INTERRUPT_RULES } from "../../spec/transitions/software-interrupt.ts";
import { SWAPGS_RULES } from "../../spec/transitions/swapgs.ts";
import { SYSCALL_RULES } from "../../spec/transitions/syscall.ts";
import { SYSRET_RULES } from "../../spec/transitions/sysret.ts";

/** The transition rules, in the spec's reading order. */
export const TRANSITION_RULE_IDS: readonly string[] = [
  SYSCALL_RULES, SYSRET_RULES, SWAPGS_RULES, DELIVER_RULES, DOUBLE_FAULT_RULES, EXCEPTION_CLASS_RULES, IRET_RULES,
  SOFTWARE_INTERRUPT_RULES, BOUNDARY_RULES, INTERRUPT_FLAG_RULES, HALT_RULES, MSR_RULES, CONTROL_REGISTER_RULES,
  DESCRIPTOR_TABLE_RULES, SEGMENT_LOAD_RULES, FAR_RETURN_RULES, FAR_JUMP_RULES, SMAP_FLAG_RULES, PRIVILEGED_RULES,
].flatMap((family) => family.map((rule) => rule.id));
