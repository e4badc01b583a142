// Rule coverage from execution: when switched on, every rule the model exercises in this process
// — through any engine, any transition called directly, any context check — is added to one set.
// The test suite switches it on (test/setup.ts) and its reporter merges what each test file hit
// into conformance/rule-coverage.json, which `ringspec rules` reports: a rule counts as covered
// because a test ran it, not because a test's title names it. Off (null) by default: nothing is
// recorded outside the test suite.
import type { RuleId } from "./rule.ts";

let sink: Set<RuleId> | null = null;

/** Starts (a set) or stops (null) recording every rule exercised in this process. */
export function collectExecutionCoverage(into: Set<RuleId> | null): void {
  sink = into;
}

/** Records that `rule` was exercised, when collection is on. */
export function recordExecuted(rule: RuleId): void {
  if (sink !== null) sink.add(rule);
}
