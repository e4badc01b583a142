// Faults raised while delivering an event: serial delivery, #DF, triple fault (shutdown) —
// SDM Vol. 3A §6.15 "Interrupt 8—Double Fault Exception (#DF)", Table 6-4 and Table 6-5. One attempt
// at delivery is deliver.ts; this file chains attempts, and `deliver` runs the chain alone.
import { match, P } from "ts-pattern";
import { DF, isFault, PF, type Fault } from "../fault.ts";
import { patchRegisters, withMemory, type Machine, type MachineRegisters } from "../machine/machine.ts";
import type { MemoryDraft } from "../machine/physical-memory.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import { runAlone } from "../transaction/alone.ts";
import { Transaction } from "../transaction/transaction.ts";
import type { RegisterJournal } from "../transaction/register-journal.ts";
import { deliverOnce } from "./deliver.ts";
import { DOUBLE_FAULT_EVENT, doubleFaultClass, exceptionEvent, type InterruptEvent } from "./exception-classes.ts";

export const DOUBLE_FAULT_RULES = defineRules([
  { id: "DF-01", description: "Double-fault classes: benign, contributory (#DE, #TS, #NP, #SS, #GP), page fault (#PF, #VE)", source: "SDM Vol. 3A §6.15, Table 6-4" },
  { id: "DF-02", description: "A second exception is one raised while delivering the first (IDT, GDT, TSS reads, stack checks, frame pushes)", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-03", description: "Contributory then contributory, page fault then contributory or page fault → #DF; else the second is delivered serially", source: "SDM Vol. 3A Table 6-5" },
  { id: "DF-04", description: "#DF: vector 8, abort class, error code 0, through IDT entry 8", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-05", description: "Any fault while delivering #DF → triple fault: the processor shuts down", source: "SDM Vol. 3A §6.15 Interrupt 8" },
  { id: "DF-06", description: "CR2 is written for every #PF detected, including one that escalates to #DF or shutdown", source: "SDM Vol. 3A §6.15 Interrupt 14" },
  { id: "DF-07", description: "Benign first events (incl. INT n, NMI, external interrupts) and benign/page-fault seconds after contributory are delivered serially", source: "SDM Vol. 3A Table 6-5" },
]);

/** The `nested` of a delivery that raised no fault (most): one frozen empty array. */
const NO_FAULTS: readonly Fault[] = Object.freeze([]);

export interface DeliveryOutcome<M extends MachineRegisters = Machine> {
  /** The handler's entry state, or the shut-down machine. */
  readonly state: M;
  /** The event whose handler was entered (the first one, a serial second one, or #DF); null after
   *  a triple fault. */
  readonly delivered: InterruptEvent | null;
  /** Every fault raised by a failed delivery attempt, in order. */
  readonly nested: readonly Fault[];
}

/**
 * DF-03 (SDM Table 6-5): what to deliver when delivering `first` raised `second` — #DF, or the
 * second exception, serially (the first is dropped).
 *
 *   first \ second   benign   contributory   page fault
 *   benign           serial   serial         serial
 *   contributory     serial   #DF            serial
 *   page fault       serial   #DF            #DF
 */
export function afterNestedFault(first: InterruptEvent, second: Fault): InterruptEvent {
  const serial = exceptionEvent(second);
  return match([doubleFaultClass(first), doubleFaultClass(serial)] as const)
    .returnType<InterruptEvent>()
    .with(["benign", P._], () => serial)
    .with(["contributory", "benign"], ["contributory", "page-fault"], () => serial)
    .with(["contributory", "contributory"], () => DOUBLE_FAULT_EVENT)
    .with(["page-fault", "benign"], () => serial)
    .with(["page-fault", "contributory"], ["page-fault", "page-fault"], () => DOUBLE_FAULT_EVENT)
    .exhaustive();
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
  const memory = state.memory.draft();
  const outcome = deliverWithNestingOn(state, faultState, memory, event, profile, coverage);
  return { ...outcome, state: withMemory(outcome.state, memory.snapshot()) };
}

/** `deliverWithNesting` inside a step: the machines' memory is `memory`, the step's draft. */
export function deliverWithNestingOn(
  state: MachineRegisters,
  /** Or a function that makes it, called only if a fault is raised (INT n: a copy of the machine
   *  at the INT, which a delivery that succeeds never needs). */
  faultState: MachineRegisters | (() => MachineRegisters),
  memory: MemoryDraft,
  event: InterruptEvent,
  profile: Profile,
  coverage: Set<RuleId> | null,
  /** When given, `state` is owned by the caller's step and is written in place (logged here; an
   *  attempt that faults takes its writes back). */
  journal?: RegisterJournal,
): DeliveryOutcome<MachineRegisters> {
  let nested: Fault[] | null = null;
  let on = state;
  let base = faultState;
  let current = event;
  for (let attempt = 0; attempt < 8; attempt++) {
    const t = new Transaction(on, profile, coverage, memory, journal);
    const f = deliverOnce(t, current);
    if (!isFault(f)) return { state: t.m, delivered: current, nested: nested ?? NO_FAULTS };
    // DF-02: a fault raised while delivering `current` is a second exception.
    t.hit("DF-02");
    (nested ??= []).push(f);
    const address = f.address;
    if (f.vector === PF && address !== undefined) t.updateKeptOnFault("DF-06", () => ({ cr2: address }));
    // Only A/D bits and CR2 survive the failed attempt (GLOBAL-05); the next event is delivered on
    // the machine of the interrupted instruction.
    t.rollBackMemory();
    t.rollBackRegisters();
    base = t.keptOnFaultFrom(typeof base === "function" ? base() : base);
    if (current.vector === DF && current.source === "exception") {
      t.hit("DF-05");
      return { state: patchRegisters(base, { cpu: { ...base.cpu, shutdown: true, halted: false } }), delivered: null, nested };
    }
    // DF-01: both events classed (benign, contributory, page fault; EXC-01's table) for DF-03.
    t.hit("DF-01");
    const next = afterNestedFault(current, f);
    t.hit("DF-03");
    t.hit(next === DOUBLE_FAULT_EVENT ? "DF-04" : "DF-07");
    current = next;
    on = base;
  }
  // Unreachable: every chain reaches a handler, #DF, or shutdown within four attempts.
  throw new Error("deliverWithNesting: nesting did not terminate");
}

/**
 * Delivery callable alone: delivers `event` on `state` (RIP = the RIP to save, EXC-03). With
 * `nesting: "architectural"` (default) a fault raised on the way is handled as the processor does
 * (serial delivery, #DF, or a shut-down machine with cpu.shutdown) and a Machine always comes back;
 * with `nesting: "none"` the first such fault is returned as data.
 */
export function deliver(
  state: Machine,
  event: InterruptEvent,
  profile: Profile,
  options: { readonly nesting?: "architectural" | "none" } = {},
): Machine | Fault {
  if (options.nesting === "none") return runAlone(state, profile, (t) => deliverOnce(t, event));
  return deliverWithNesting(state, state, event, profile, null).state;
}
