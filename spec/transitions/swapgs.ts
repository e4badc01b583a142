// SWAPGS (0F 01 F8) — SDM Vol. 2B "SWAPGS". Rule IDs from the digest §4.
import { GP, UD, type Fault } from "../fault.ts";
import { segmentWithBase, type Machine } from "../machine/machine.ts";
import { in64BitMode } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SWAPGS_RULES = defineRules([
  { id: "SWAPGS-01", description: "SWAPGS outside 64-bit mode: #UD", source: "SDM Vol. 2B SWAPGS" },
  { id: "SWAPGS-02", description: "SWAPGS at CPL != 0: #GP(0)", source: "SDM Vol. 2B SWAPGS" },
  { id: "SWAPGS-03", description: "exchange GS.base and KERNEL_GS_BASE; the GS selector and attributes are unchanged; no canonical check", source: "SDM Vol. 2B SWAPGS" },
]);

export function execSwapgs(t: Transaction): Fault | undefined {
  const m = t.now;
  if (!in64BitMode(m)) return t.fault("SWAPGS-01", UD);
  if (t.cpl() !== 0) return t.fault("SWAPGS-02", GP, 0);
  t.update("SWAPGS-03", { gs: segmentWithBase(m.gs, m.kernelGsBase), kernelGsBase: m.gs.base });
  return undefined;
}

/** SWAPGS alone: `state` at the instruction (3 bytes); the new machine or the fault. */
export function swapgs(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 3, execSwapgs);
}
