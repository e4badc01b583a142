// The rule registry: every rule ID the spec uses, with a one-line description and its source.
// IDs come from the reference digest (shared/reference/x86-64-transitions.md) and stay stable;
// finer rules add a suffix or a new number in the same family. Each family file registers its own.

export type RuleId = string;

export interface Rule {
  readonly id: RuleId;
  /** One line: what the rule checks or updates. */
  readonly description: string;
  /** Where it comes from, e.g. "SDM Vol. 2B SYSRET" or "SDM Vol. 3A §4.7". */
  readonly source: string;
}

const registry = new Map<RuleId, Rule>();

/** Registers rules (at module load); a duplicate ID is a programming error. */
export function defineRules(rules: readonly Rule[]): void {
  for (const rule of rules) {
    if (registry.has(rule.id)) throw new Error(`rule ${rule.id} defined twice`);
    registry.set(rule.id, rule);
  }
}

export function allRules(): readonly Rule[] {
  return [...registry.values()].sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
}

export function ruleById(id: RuleId): Rule | undefined {
  return registry.get(id);
}
