// Running one transition by itself, outside the step loop, so other projects can call e.g.
// `sysret(state, "64", INTEL)` and get the new state or the fault as data.
import { isFault, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import { in64BitMode, MASK64, RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import type { RuleId } from "../rules/rule.ts";
import type { UnsupportedOutcome } from "./semantics.ts";
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
  return isFault(result) ? result : t.snapshot();
}

/**
 * One instruction's semantics alone. `state` is the machine at the instruction (RIP = its address).
 * As the step loop does before the semantics run, RIP moves past the instruction's `length` bytes,
 * RF is cleared (RF-01) and the shadow of the previous instruction ends (SHADOW-02;
 * `t.startShadow` still tells what it was).
 */
export function runInstructionAlone(
  state: Machine,
  profile: Profile,
  length: number,
  body: (t: Transaction) => Fault | undefined,
  coverage: Set<RuleId> | null = null,
): Machine | Fault {
  return runAlone(
    state,
    profile,
    (t) => {
      const width = in64BitMode(state) ? MASK64 : 0xffff_ffffn;
      t.update("RF-01", { rip: (state.rip + BigInt(length)) & width, rflags: t.m.rflags & ~RFLAGS.RF, cpu: { ...t.m.cpu, shadow: "none" } });
      return body(t);
    },
    coverage,
  );
}

/** As runInstructionAlone, for semantics that may also stop as `unsupported` (state unchanged). */
export function runInstructionAloneOrUnsupported(
  state: Machine,
  profile: Profile,
  length: number,
  body: (t: Transaction) => Fault | UnsupportedOutcome | undefined,
): Machine | Fault | UnsupportedOutcome {
  let outside: UnsupportedOutcome | undefined;
  const result = runInstructionAlone(state, profile, length, (t) => {
    const outcome = body(t);
    if (outcome?.kind !== "unsupported") return outcome;
    outside = outcome;
    return undefined;
  });
  return outside ?? result;
}
