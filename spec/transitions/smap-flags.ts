// STAC (0F 01 CB) and CLAC (0F 01 CA) — SDM Vol. 2B "STAC", Vol. 2A "CLAC". The model's CPU
// supports SMAP (CR4.SMAP may be set), so the CPUID #UD never applies; both work with CR4.SMAP = 0.
import { UD, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import { RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SMAP_FLAG_RULES = defineRules([
  { id: "SMAP-04", description: "STAC sets RFLAGS.AC, CLAC clears it; both #UD at CPL > 0", source: "SDM Vol. 2B STAC, Vol. 2A CLAC" },
]);

export function execStac(t: Transaction): Fault | undefined {
  if (t.cpl() > 0) return t.fault("SMAP-04", UD);
  t.update("SMAP-04", { rflags: t.m.rflags | RFLAGS.AC });
  return undefined;
}

export function execClac(t: Transaction): Fault | undefined {
  if (t.cpl() > 0) return t.fault("SMAP-04", UD);
  t.update("SMAP-04", { rflags: t.m.rflags & ~RFLAGS.AC });
  return undefined;
}

/** STAC alone: `state` at the instruction (3 bytes). */
export function stac(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 3, execStac);
}

/** CLAC alone: `state` at the instruction (3 bytes). */
export function clac(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 3, execClac);
}
