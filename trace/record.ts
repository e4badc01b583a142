// A trace as data: one record per step, built from the runner's onStep (engines/runner.ts) and
// read by every renderer (text lines, JSON lines, later the HTML page and the reports). A record
// is plain JSON: values are spelled as the vector format spells them (hex strings, numbers,
// booleans), keys in the format's snake_case; trace/schema.ts validates it.
import { bytesToHex, hex } from "../contract/hex.ts";
import { compareStates, type FieldValue } from "../contract/compare.ts";
import type { DeliverySource, EngineEvent, StepView } from "../contract/engine.ts";
import { bitnessOf, bytesAtRip, disassemble, pageReader, ripLinear, type Bitness } from "./disassemble.ts";

/** What the step did, without its address (the record has it). */
export type TraceEvent =
  | { readonly kind: "retired" }
  | { readonly kind: "delivered"; readonly vector: number; readonly error_code: number | null; readonly source: DeliverySource }
  | { readonly kind: "halted" }
  | { readonly kind: "shutdown" }
  | { readonly kind: "io"; readonly direction: "in" | "out"; readonly port: number; readonly size: 1 | 2 | 4; readonly value: string }
  | { readonly kind: "unsupported"; readonly bytes: string; readonly reason: string }
  | { readonly kind: "memory-limit"; readonly reason: string }
  | { readonly kind: "exited"; readonly value: number };

/** The instruction of an instruction step. */
export interface TraceInstruction {
  /** Hex bytes of the encoding, two digits a byte. */
  readonly bytes: string;
  /** Encoded length (0: the bytes do not form an instruction, or none could be read). */
  readonly length: number;
  /** iced-x86, AT&T syntax; "(not mapped)" when no byte at RIP is mapped. */
  readonly disassembly: string;
  /** Where the bytes come from: `engine`, the bytes the engine fetched (StepInstruction); or
   *  `memory`, read from the state before the step for display, because the engine decoded none
   *  (its fetch faulted, or the decoder raised the fault). */
  readonly source: "engine" | "memory";
  /** The decoding mode. */
  readonly bitness: Bitness;
}

/** One field the step changed, named as the vector format names it (contract/compare.ts). Memory
 *  is in aligned 8-byte words (`memory@0x1ffd8`, hex bytes). */
export interface TraceChange {
  readonly field: string;
  readonly before: FieldValue;
  readonly after: FieldValue;
}

export interface TraceRecord {
  /** 1-based; an unsupported or memory-limit attempt has the number the step would have had. */
  readonly step: number;
  /** RIP at the step: the instruction's address, or the boundary's for a boundary event. */
  readonly rip: string;
  /** Its linear address (CS.base applies outside 64-bit mode). */
  readonly linear: string;
  /** null for an event taken at an instruction boundary (NMI, external interrupt, single-step
   *  trap) and for an idle CPU. */
  readonly instruction: TraceInstruction | null;
  readonly event: TraceEvent;
  /** Every field the step changed, in the comparison's field order, memory last. */
  readonly changes: readonly TraceChange[];
  /** Rule IDs the step exercised, in the order exercised (repeats kept), when the engine reports
   *  them (spec/ does). */
  readonly rules?: readonly string[];
  /** With `rules`, when a check failed during the step: the failed checks in order (the
   *  instruction's own fault, then each delivery attempt that faulted). */
  readonly faults?: readonly TraceFault[];
}

/** A check that failed during a step (contract StepFault, in the format's spelling). */
export interface TraceFault {
  readonly rule: string;
  readonly vector: number;
  readonly error_code: number | null;
  readonly during: "instruction" | "delivery";
}

export function traceEvent(e: EngineEvent): TraceEvent {
  switch (e.kind) {
    case "retired":
    case "halted":
    case "shutdown":
      return { kind: e.kind };
    case "delivered":
      return { kind: "delivered", vector: e.vector, error_code: e.errorCode ?? null, source: e.source };
    case "io":
      return { kind: "io", direction: e.direction, port: e.port, size: e.size, value: hex(e.value) };
    case "unsupported":
      return { kind: "unsupported", bytes: bytesToHex(e.bytes), reason: e.reason };
    case "memory-limit":
      return { kind: "memory-limit", reason: e.reason };
    case "exited":
      return { kind: "exited", value: e.value };
  }
}

function traceInstruction(view: StepView): TraceInstruction | null {
  const fetched = view.event.instruction;
  if (fetched === undefined) return null;
  const before = view.before;
  const bitness = bitnessOf(before);
  const linear = ripLinear(before);
  if (fetched.length > 0) {
    const text = disassemble(fetched.bytes, bitness, linear).text;
    return { bytes: bytesToHex(fetched.bytes), length: fetched.length, disassembly: text, source: "engine", bitness };
  }
  const bytes = bytesAtRip(before, pageReader(before.memory));
  if (bytes.length === 0) return { bytes: "", length: 0, disassembly: "(not mapped)", source: "memory", bitness };
  const d = disassemble(bytes, bitness, linear);
  const shown = d.length > 0 ? bytes.subarray(0, d.length) : bytes;
  return { bytes: bytesToHex(shown), length: d.length, disassembly: d.text, source: "memory", bitness };
}

/** The record of one step. */
export function traceRecord(view: StepView): TraceRecord {
  const changes = compareStates(view.before, view.after, { rule: "exact", memory: "all", memoryUnit: "word" }).differences.map(
    (d): TraceChange => ({ field: d.field, before: d.a, after: d.b }),
  );
  const rules = view.event.rules;
  const faults = view.event.faults;
  return {
    step: view.step,
    rip: hex(view.event.rip),
    linear: hex(ripLinear({ ...view.before, rip: view.event.rip })),
    instruction: traceInstruction(view),
    event: traceEvent(view.event),
    changes,
    ...(rules === undefined ? {} : { rules: [...rules] }),
    ...(faults === undefined || faults.length === 0
      ? {}
      : { faults: faults.map((f): TraceFault => ({ rule: f.rule, vector: f.vector, error_code: f.errorCode ?? null, during: f.during })) }),
  };
}

/** An onStep hook (engines/runner.ts) that hands each step's record to `sink`. */
export function tracer(sink: (record: TraceRecord) => void): (view: StepView) => void {
  return (view) => sink(traceRecord(view));
}
