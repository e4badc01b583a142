// HLT (F4) — SDM Vol. 2A "HLT". Waking up (HLT-03..06) belongs to the step loop.
import { GP, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/registry.ts";
import type { Executor, Halt } from "../step/executor.ts";
import type { Transaction } from "../step/transaction.ts";
import { runInstructionAlone } from "./instruction-alone.ts";

defineRules([
  { id: "HLT-01", description: "HLT at CPL != 0: #GP(0)", source: "SDM Vol. 2A HLT" },
  { id: "HLT-02", description: "HLT: RIP is past the HLT and the processor enters the HALT state", source: "SDM Vol. 2A HLT" },
]);

export function execHlt(t: Transaction): Fault | Halt {
  if (t.cpl() !== 0) return t.fault("HLT-01", GP, 0);
  t.hit("HLT-02");
  return { kind: "halt" };
}

export const hltExecutor: Executor = (t) => execHlt(t);

/** HLT alone: `state` at the instruction (1 byte); the halted machine (`cpu.halted`) or the fault. */
export function hlt(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 1, (t) => {
    const outcome = execHlt(t);
    if (outcome.kind === "fault") return outcome;
    t.m = { ...t.m, cpu: { ...t.m.cpu, halted: true } };
    return undefined;
  });
}
