// ringspec/spec: the executable reference model.
export { step, run, canWake, Stepper, type StepOptions, type RunOptions } from "./step/step.ts";
export type { StepEvent, StepResult, RunResult, StopReason } from "./step/events.ts";
export { machineFromState, stateFromMachine, type Machine } from "./machine/machine.ts";
export { PhysicalMemory } from "./machine/physical-memory.ts";
export { INTEL, AMD, profileByName, type Profile } from "../contract/profile.ts";
export { fault, isFault, describeFault, type Fault } from "./fault.ts";
export { allRules, ruleById } from "./rule-catalogue.ts";
export type { Rule, RuleId } from "./rules/rule.ts";
export { SEMANTICS } from "./semantics-table.ts";
export { decode } from "./decode/decode.ts";
export type { Instruction, Operand, Mnemonic } from "./decode/instruction.ts";
export * from "./transitions/index.ts";
export { SpecEngine } from "./engine.ts";
// The context-switch rules (CTX-01 ... CTX-06), checked from outside on any running kernel.
export * as context from "./context/index.ts";
