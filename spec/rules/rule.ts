// What a rule is: an ID from the reference digest (shared/reference/x86-64-transitions.md), a
// one-line description and its source. IDs stay stable; finer rules add a suffix or a new number in
// the same family. Each family file lists its own rules (`defineRules`); spec/rule-catalogue.ts
// collects every list, so which rules exist never depends on which modules happen to be loaded.

export type RuleId = string;

export interface Rule {
  readonly id: RuleId;
  /** One line: what the rule checks or updates. */
  readonly description: string;
  /** Where it comes from, e.g. "SDM Vol. 2B SYSRET" or "SDM Vol. 3A §4.7". */
  readonly source: string;
  /**
   * For a rule with no check or update of its own — it says what a transition leaves alone, or
   * restates another rule's effect (e.g. "the same value under both profiles") — the rule(s) whose
   * check or update realises it. Coverage records it whenever one of them is recorded
   * (spec/rule-catalogue.ts, `recordImpliedRules`), so transition bodies carry no marker for it.
   */
  readonly recordedWith?: RuleId | readonly RuleId[];
}

/** A family's rules, as data. */
export function defineRules(rules: readonly Rule[]): readonly Rule[] {
  return rules;
}
