// CLI (FA) and STI (FB) in IA-32e mode — SDM Vol. 2A "CLI", Vol. 2B "STI". CR4.PVI is outside
// the model (contract/scope.ts), so the VIF paths of CLI-02/STI-02 never apply.
import { GP, type Fault } from "../fault.ts";
import { cpuRunState, type Machine } from "../machine/machine.ts";
import { iopl, RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

// SHADOW-01 (the STI shadow) is listed with the boundary rules (boundary.ts); STI arms it here.
export const INTERRUPT_FLAG_RULES = defineRules([
  { id: "CLI-02", description: "CLI: CPL <= IOPL clears IF, else #GP(0) (no PVI in the model)", source: "SDM Vol. 2A CLI" },
  { id: "STI-02", description: "STI: CPL <= IOPL sets IF, else #GP(0) (no PVI in the model)", source: "SDM Vol. 2B STI" },
  { id: "STI-03", description: "with IOPL = 0, CLI and STI at CPL 3 raise #GP(0)", source: "SDM Vol. 2A CLI, Vol. 2B STI" },
]);

/** The #GP(0) for CPL > IOPL; STI-03 names the common case IOPL = 0 at CPL 3. */
function iplFault(t: Transaction, rule: "CLI-02" | "STI-02"): Fault {
  if (t.cpl() === 3 && iopl(t.m) === 0) t.hit("STI-03");
  return t.fault(rule, GP, 0);
}

export function execCli(t: Transaction): Fault | undefined {
  if (t.cpl() > iopl(t.m)) return iplFault(t, "CLI-02");
  t.update("CLI-02", { rflags: t.m.rflags & ~RFLAGS.IF });
  // SHADOW-03: `sti; cli` — the STI shadow covered the boundary before CLI: no window opened.
  if (t.startShadow === "sti") t.hit("SHADOW-03");
  return undefined;
}

export function execSti(t: Transaction): Fault | undefined {
  const m = t.m;
  if (t.cpl() > iopl(m)) return iplFault(t, "STI-02");
  t.update("STI-02", { rflags: m.rflags | RFLAGS.IF });
  if ((m.rflags & RFLAGS.IF) === 0n) t.update("SHADOW-01", { cpu: cpuRunState({ ...m.cpu, shadow: "sti" }) });
  return undefined;
}

/** CLI alone: `state` at the instruction (1 byte); the new machine or the fault. */
export function cli(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 1, execCli);
}

/** STI alone: `state` at the instruction (1 byte); the new machine (with its shadow) or the fault. */
export function sti(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 1, execSti);
}
