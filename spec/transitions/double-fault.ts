// Faults raised while delivering an event: serial delivery, #DF, triple fault (shutdown) —
// SDM Vol. 3A §6.15 "Interrupt 8—Double Fault Exception (#DF)", Table 6-4 and Table 6-5.
import { DF, PF, type Fault } from "../fault.ts";
import { patchMachine, type Machine } from "../machine/machine.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules, type RuleId } from "../rules/registry.ts";
import { Transaction } from "../step/transaction.ts";
import { deliverOnce } from "./deliver.ts";
import { DOUBLE_FAULT_EVENT, doubleFaultClass, exceptionEvent, type InterruptEvent } from "./exception-classes.ts";

export interface DeliveryOutcome {
  /** The handler's entry state, or the shut-down machine. */
  readonly state: Machine;
  /** The event whose handler was entered (the first one, a serial second one, or #DF); null after
   *  a triple fault. */
  readonly delivered: InterruptEvent | null;
  /** Every fault raised by a failed delivery attempt, in order. */
  readonly nested: readonly Fault[];
}

/**
 * DF-03: what to deliver when delivering `first` raised `second`: #DF for contributory after
 * contributory and for contributory or page fault after a page fault; otherwise the second
 * exception, serially (the first is dropped).
 */
export function afterNestedFault(first: InterruptEvent, second: Fault): InterruptEvent {
  const a = doubleFaultClass(first);
  const b = doubleFaultClass(exceptionEvent(second));
  if ((a === "contributory" && b === "contributory") || (a === "page-fault" && b !== "benign")) return DOUBLE_FAULT_EVENT;
  return exceptionEvent(second);
}

/**
 * Delivers `event` on `state` (RIP = the RIP to save). A fault raised while delivering it is
 * delivered on `faultState` — the machine before the instruction that raised `event` (for a fault
 * or a boundary event the same as `state`; for INT n the INT instruction, which then counts as the
 * faulting one) — or turned into #DF, or, while delivering #DF, into shutdown (DF-05).
 */
export function deliverWithNesting(
  state: Machine,
  faultState: Machine,
  event: InterruptEvent,
  profile: Profile,
  coverage: Set<RuleId> | null,
): DeliveryOutcome {
  const nested: Fault[] = [];
  let on = state;
  let base = faultState;
  let current = event;
  for (let attempt = 0; attempt < 8; attempt++) {
    // PF-01: CR2 is written before #PF delivery begins (and stays written if delivery fails).
    if (current.vector === PF && current.source === "exception" && current.address !== undefined) {
      on = patchMachine(on, { cr2: current.address });
      base = patchMachine(base, { cr2: current.address });
      coverage?.add("PF-01");
    }
    const t = new Transaction(on, profile, coverage);
    const f = deliverOnce(t, current);
    if (f === undefined) return { state: t.m, delivered: current, nested };
    nested.push(f);
    coverage?.add("DF-02");
    // Only A/D bits survive the failed attempt (GLOBAL-05); the next event is delivered on the
    // machine of the interrupted instruction.
    base = patchMachine(base, { memory: t.machineAfterFault(on).memory });
    if (f.vector === PF && f.address !== undefined) {
      base = patchMachine(base, { cr2: f.address });
      coverage?.add("DF-06");
    }
    if (current.vector === DF && current.source === "exception") {
      coverage?.add("DF-05");
      return { state: { ...base, cpu: { ...base.cpu, shutdown: true, halted: false } }, delivered: null, nested };
    }
    const next = afterNestedFault(current, f);
    coverage?.add(next === DOUBLE_FAULT_EVENT ? "DF-04" : "DF-07");
    coverage?.add("DF-03");
    current = next;
    on = base;
  }
  // Unreachable: every chain reaches a handler, #DF, or shutdown within four attempts.
  throw new Error("deliverWithNesting: nesting did not terminate");
}

defineRules([
  { id: "DF-01", description: "Double-fault classes: benign, contributory (#DE, #TS, #NP, #SS, #GP), page fault (#PF, #VE)", source: "SDM Vol. 3A §6.15, Table 6-4" },
  { id: "DF-02", description: "A second exception is one raised while delivering the first (IDT, GDT, TSS reads, stack checks, frame pushes)", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-03", description: "Contributory then contributory, page fault then contributory or page fault → #DF; else the second is delivered serially", source: "SDM Vol. 3A Table 6-5" },
  { id: "DF-04", description: "#DF: vector 8, abort class, error code 0, through IDT entry 8", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-05", description: "Any fault while delivering #DF → triple fault: the processor shuts down", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-06", description: "CR2 is written for every #PF detected, including one that escalates to #DF or shutdown", source: "SDM Vol. 3A §6.15 Interrupt 14" },
  { id: "DF-07", description: "Benign first events (incl. INT n, NMI, external interrupts) and benign/page-fault seconds after contributory are delivered serially", source: "SDM Vol. 3A Table 6-5" },
]);
