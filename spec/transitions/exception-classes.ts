// The events the IDT delivers, their classes and their error codes (SDM Vol. 3A §6.3–6.5, §6.13,
// §6.15 "Exception and Interrupt Reference"; digest §7 EXC, §8 DF-01, §13 RF-03).
import { match, P } from "ts-pattern";
import { DB, DE, DF, GP, HAS_ERROR_CODE, NP, PF, SS, TS, type Fault } from "../fault.ts";
import { defineRules } from "../rules/rule.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const EXCEPTION_CLASS_RULES = defineRules([
  { id: "EXC-01", description: "Exception vectors are fault, trap or abort class; benign, contributory or page-fault class for #DF", source: "SDM Vol. 3A §6.15, Table 6-1, Table 6-4" },
  { id: "EXC-02", description: "Only exceptions 8, 10–14, 17, 21 push an error code (zero-extended to 8 bytes); INT n and interrupts never do", source: "SDM Vol. 3A §6.13, §6.14.4" },
  { id: "EXC-03", description: "Saved RIP: faults the faulting instruction; traps and INT n the next; interrupts the next instruction not executed (after HLT)", source: "SDM Vol. 3A §6.5" },
  { id: "EXC-04", description: "Selector error code: EXT bit 0, IDT bit 1, TI bit 2, index bits 15:3", source: "SDM Vol. 3A §6.13, Figure 6-7" },
  { id: "EXC-05", description: "EXT = 1 in error codes raised while delivering an event other than INT n / INT3 / INTO", source: "SDM Vol. 3A §6.13" },
  { id: "RF-03", description: "Pushed RFLAGS image: RF = 1 for fault-class exceptions (and #DF); the current RF for traps, INT n and interrupts", source: "SDM Vol. 3A §6.8.3 note, §18.3.1.1" },
  { id: "RF-04", description: "Event delivery clears RF in RFLAGS", source: "SDM Vol. 3A §6.12.1", recordedWith: "DELIVER-20" },
]);

/**
 * Where an event comes from. It decides EXT (EXC-05), the gate DPL check (DELIVER-04) and whether an
 * error code is pushed (EXC-02):
 * - `exception`: raised by the processor (a fault, or the single-step #DB trap); EXT = 1.
 * - `software`: INT n, INT3, INTO; EXT = 0, gate DPL checked, never an error code.
 * - `int1`: INT1 / ICEBP (F1); delivered like a hardware exception: EXT = 1, no DPL check (SWINT-04).
 * - `external`: a maskable interrupt from the interrupt controller; EXT = 1.
 * - `nmi`: vector 2; EXT = 1 (NMI-01).
 */
export type EventSource = "exception" | "software" | "int1" | "external" | "nmi";

/** One event to deliver through the IDT. The saved RIP is the RIP of the state it is delivered on. */
export interface InterruptEvent {
  readonly vector: number;
  readonly source: EventSource;
  /** Exceptions of the EXC-02 vectors only; otherwise undefined (nothing pushed). */
  readonly errorCode: number | undefined;
  /** #PF: the linear address written to CR2 before delivery (PF-01). */
  readonly address: bigint | undefined;
}

/** The exception a failed check raised, as an event to deliver. */
export function exceptionEvent(f: Fault): InterruptEvent {
  return { vector: f.vector, source: "exception", errorCode: f.errorCode, address: f.address };
}

export function externalEvent(vector: number): InterruptEvent {
  return { vector, source: "external", errorCode: undefined, address: undefined };
}

export const NMI_EVENT: InterruptEvent = { vector: 2, source: "nmi", errorCode: undefined, address: undefined };

/** TF-02: the single-step trap (a trap-class #DB; DR6 is not modelled). */
export const SINGLE_STEP_EVENT: InterruptEvent = { vector: DB, source: "exception", errorCode: undefined, address: undefined };

/** DF-04: #DF, error code 0. */
export const DOUBLE_FAULT_EVENT: InterruptEvent = { vector: DF, source: "exception", errorCode: 0, address: undefined };

export function softwareEvent(vector: number, source: "software" | "int1"): InterruptEvent {
  return { vector, source, errorCode: undefined, address: undefined };
}

/** EXC-05: EXT is 0 only while delivering INT n / INT3 / INTO. */
export function extBit(event: InterruptEvent): 0 | 1 {
  return event.source === "software" ? 0 : 1;
}

/** EXC-04: an error code naming an IDT entry: index = vector, IDT bit set, EXT. */
export function idtErrorCode(t: Transaction, vector: number, ext: 0 | 1): number {
  t.hit("EXC-04");
  return (vector << 3) | 2 | ext;
}

/** EXC-04: an error code naming a GDT/LDT selector: TI and index kept, RPL bits replaced by EXT. */
export function selectorErrorCode(t: Transaction, selector: number, ext: 0 | 1): number {
  t.hit("EXC-04");
  return (selector & 0xfffc) | ext;
}

/** EXC-02: whether delivering `event` pushes an error code. */
export function pushesErrorCode(event: InterruptEvent): boolean {
  return event.source === "exception" && HAS_ERROR_CODE.has(event.vector);
}

/**
 * RF-03: whether the pushed RFLAGS image has RF = 1. Every exception the model raises other than the
 * single-step #DB is fault-class (the instruction did not complete), and so is #DF, which only ever
 * arises from two faults (vector df-rsp0-unmapped-ist: pushed RF = 1). INT n, INT1, interrupts and
 * the single-step trap push the current RF.
 */
export function pushesRfSet(event: InterruptEvent): boolean {
  return event.source === "exception" && event.vector !== DB;
}

export type DoubleFaultClass = "benign" | "contributory" | "page-fault";

/** #VE, the other page-fault-class exception (never raised by the model). */
const VE = 20;

/** DF-01 (SDM Table 6-4): the class of an event for the double-fault rules. Only exceptions can be
 *  contributory or page-fault class; INT n, INT1, NMI and external interrupts are benign (DF-03). */
export function doubleFaultClass(event: InterruptEvent): DoubleFaultClass {
  return match(event)
    .returnType<DoubleFaultClass>()
    .with({ source: "exception", vector: P.union(DE, TS, NP, SS, GP) }, () => "contributory")
    .with({ source: "exception", vector: P.union(PF, VE) }, () => "page-fault")
    .otherwise(() => "benign");
}
