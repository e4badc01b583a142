// spec/context: the context-switch semantics, an abstract model of tasks and their saved user
// contexts, and the rules (CTX-01 ... CTX-06) a correct kernel obeys at every user↔kernel
// boundary, checked from outside on any running machine.
export { CONTEXT_RULES, INVARIANTS, type ContextRuleId, type Invariant } from "./rules.ts";
export { initialContextModel, observe, needsState, boundaryInstruction, type Observation, type Observed } from "./check.ts";
export type { CheckCounts, ContextConfig, ContextModel, EntryKind, KernelRange, Suspended, TaskRecord, UserContext, Violation } from "./types.ts";
export { translate, readLinear, userMappings, tablePages } from "./memory.ts";
