// HLT (F4) — SDM Vol. 2A "HLT". Waking up (HLT-03..06) is taken at an instruction boundary
// (boundary.ts).
import { GP, type Fault } from "../fault.ts";
import { cpuRunState, type Machine } from "../machine/machine.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const HALT_RULES = defineRules([
  { id: "HLT-01", description: "HLT at CPL != 0: #GP(0)", source: "SDM Vol. 2A HLT" },
  { id: "HLT-02", description: "HLT: RIP is past the HLT and the processor enters the HALT state", source: "SDM Vol. 2A HLT" },
]);

export function execHlt(t: Transaction): Fault | undefined {
  if (t.cpl() !== 0) return t.fault("HLT-01", GP, 0);
  t.update("HLT-02", { cpu: cpuRunState({ ...t.m.cpu, halted: true }) });
  // HLT-05 / SHADOW-03: `sti; hlt` — the STI shadow covered the boundary before HLT and ends with
  // it, so an interrupt is recognised at the boundary after HLT and wakes it.
  if (t.startShadow === "sti") {
    t.hit("HLT-05");
    t.hit("SHADOW-03");
  }
  return undefined;
}

/** HLT alone: `state` at the instruction (1 byte); the halted machine (`cpu.halted`) or the fault. */
export function hlt(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 1, execHlt);
}
