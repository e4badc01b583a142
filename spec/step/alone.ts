// Running one transition by itself, outside the step loop, so other projects can call e.g.
// `sysret(state, "64", INTEL)` and get the new state or the fault as data.
import { isFault, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import type { Profile } from "../../contract/profile.ts";
import type { RuleId } from "../rules/registry.ts";
import { Transaction } from "./transaction.ts";

/** Runs `body` on a transaction over `state`; returns the new machine, or the fault it raised. */
export function runAlone(
  state: Machine,
  profile: Profile,
  body: (t: Transaction) => Fault | undefined | void,
  coverage: Set<RuleId> | null = null,
): Machine | Fault {
  const t = new Transaction(state, profile, coverage);
  const result = body(t);
  return isFault(result) ? result : t.m;
}
