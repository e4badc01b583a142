// The mode-transfer sequence of one step: the instruction's part (or the event's), then one part
// per attempt to deliver through the IDT, with the escalation between attempts (#DF, serial
// delivery, shutdown). Lines follow the rules in the order the engine reported them
// (StepDetails.rules); the template of each family (templates.ts) says what each rule did with
// this step's values, and places the checks the spec records only when they fail. An engine that
// reports no rules (impl) gets the template's reading of the states, marked `derived`.
import type { ArchState } from "../../contract/state.ts";
import type { TraceFault, TraceRecord } from "../record.ts";
import type { Symbolizer } from "../symbols.ts";
import { deliveryFacts, faultName, vectorName, type DeliveryFacts, type DeliverySource } from "./facts.ts";
import { MASK64, hex } from "./machine.ts";
import {
  DELIVERY, EVENT, FAR_RET, IRET, SWAPGS, SYSCALL, SYSRET, errorCodeMeaning, nestingLine,
  type EventFacts, type InstructionFacts, type TemplateItem,
} from "./templates.ts";
import type { SequenceLine, SequencePart } from "./types.ts";

/** Rules that draw no line of their own unless they are the check that failed: they are counted
 *  under the part instead (page-walk A/D bits, RF cleared by a completed instruction...). */
const QUIET: ReadonlySet<string> = new Set(["PF-ACCESSED", "PF-DIRTY", "RF-01", "SMAP-03", "SHADOW-02", "PF-04"]);

export type InstructionFamily = "syscall" | "sysret" | "swapgs" | "iret" | "far-ret";

const FAMILY_TEMPLATES: Readonly<Record<InstructionFamily, readonly TemplateItem<InstructionFacts>[]>> = {
  syscall: SYSCALL, sysret: SYSRET, swapgs: SWAPGS, iret: IRET, "far-ret": FAR_RET,
};

/** The first word of a disassembly, without a `rex.w` prefix. */
export function mnemonicOf(disassembly: string): string {
  return disassembly.replace(/^rex(\.\w+)? /, "").split(/\s+/)[0] ?? "";
}

export function familyOf(mnemonic: string): InstructionFamily | "int" | null {
  if (mnemonic === "syscall") return "syscall";
  if (mnemonic.startsWith("sysret")) return "sysret";
  if (mnemonic === "swapgs") return "swapgs";
  if (mnemonic.startsWith("iret")) return "iret";
  if (mnemonic.startsWith("lret")) return "far-ret";
  if (mnemonic === "int" || mnemonic === "int3" || mnemonic === "int1" || mnemonic === "into") return "int";
  return null;
}

/** The vector a software-interrupt instruction raises. */
export function softwareVector(disassembly: string): number | null {
  const m = mnemonicOf(disassembly);
  if (m === "int3") return 3;
  if (m === "int1") return 1;
  if (m === "into") return 4;
  const imm = /^int \$(0x[0-9a-f]+|[0-9]+)/.exec(disassembly);
  return imm === null ? null : Number(imm[1]);
}

export interface StepInput {
  readonly record: TraceRecord;
  readonly before: ArchState;
  readonly after: ArchState;
  readonly symbol: Symbolizer;
  /** A rule's one-line description (the rule catalogue), for rules no template knows. */
  readonly describe: (rule: string) => string;
}

interface FailedCheck {
  readonly rule: string;
  readonly vector: number;
  readonly errorCode: number | null;
}

/** Sequence lines for `reported` (the part's rules in the engine's order; undefined: the engine
 *  reports none) against `template`. */
function linesFor<F>(
  template: readonly TemplateItem<F>[],
  facts: F,
  reported: readonly string[] | undefined,
  failed: FailedCheck | null,
  describe: (rule: string) => string,
): { lines: SequenceLine[]; also: { rule: string; count: number }[] } {
  const lines: SequenceLine[] = [];
  const also = new Map<string, number>();
  const applies = (item: TemplateItem<F>) => safe(() => item.applies?.(facts) ?? true, false);
  const emit = (item: TemplateItem<F>, status: SequenceLine["status"]) => {
    const text = safe(() => item.text(facts), describe(item.rule));
    for (const t of typeof text === "string" ? [text] : text) lines.push({ rule: item.rule, phase: item.phase, text: t, status });
  };
  const emitFailed = (rule: string, item: TemplateItem<F> | undefined) => {
    const why = item?.why === undefined ? describe(rule) : safe(() => item.why!(facts), describe(rule));
    lines.push({ rule, phase: "fault", text: why, status: "failed", why: `raises ${faultName(failed!.vector, failed!.errorCode)}${failed!.errorCode === null ? "" : errorCodeMeaning(failed!.vector, failed!.errorCode)}` });
  };

  if (reported === undefined) {
    for (const item of template) if (applies(item)) emit(item, "derived");
    if (failed !== null) emitFailed(failed.rule, template.find((i) => i.rule === failed.rule));
    return { lines, also: [] };
  }

  const index = new Map(template.map((item, i) => [item.rule, i] as const));
  // The failing check is the last report of its rule in the part.
  const failedAt = failed === null ? -1 : reported.lastIndexOf(failed.rule);
  const reportedItems = new Set<number>();
  reported.forEach((rule, r) => {
    const t = index.get(rule);
    if (t !== undefined && r !== failedAt) reportedItems.add(t);
  });
  // A silent check (recorded only when it fails) that passed is shown just before the next item
  // the engine did report: where the SDM's order puts it.
  const anchorOf = template.map((_, i) => {
    for (let j = i + 1; j < template.length; j++) if (reportedItems.has(j)) return j;
    return template.length;
  });
  const done = new Set<number>();
  const silentBefore = (t: number, upTo: (i: number) => boolean) => {
    for (let i = 0; i < template.length; i++)
      if (template[i]!.silent === true && !done.has(i) && upTo(i) && applies(template[i]!)) emit(template[i]!, "passed"), done.add(i);
    void t;
  };
  for (let r = 0; r < reported.length; r++) {
    const rule = reported[r]!;
    const t = index.get(rule);
    if (r === failedAt) {
      if (t !== undefined) silentBefore(t, (i) => i < t);
      emitFailed(rule, t === undefined ? undefined : template[t]);
      return { lines, also: alsoList(also) };
    }
    if (t === undefined) {
      if (QUIET.has(rule)) also.set(rule, (also.get(rule) ?? 0) + 1);
      else if (!lines.some((l) => l.rule === rule && l.status === "reported")) lines.push({ rule, phase: "note", text: describe(rule), status: "reported" });
      continue;
    }
    if (done.has(t)) continue;
    silentBefore(t, (i) => anchorOf[i] === t);
    emit(template[t]!, "reported");
    done.add(t);
  }
  // The failing rule was not reported (a decoder's fault): it ends the part. Otherwise the silent
  // checks after the last reported item passed too.
  if (failed !== null) emitFailed(failed.rule, template.find((i) => i.rule === failed.rule));
  else silentBefore(template.length, (i) => anchorOf[i] === template.length && i > Math.max(-1, ...reportedItems));
  return { lines, also: alsoList(also) };
}

function alsoList(also: Map<string, number>): { rule: string; count: number }[] {
  return [...also].map(([rule, count]) => ({ rule, count }));
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

const DELIVERY_RULES = new Set(DELIVERY.map((i) => i.rule).filter((r) => r !== "PF-01"));
const isNesting = (rule: string) => rule.startsWith("DF-");

/** The index in `rules` where delivery begins, given what came before it. */
function deliveryStart(rules: readonly string[], instructionFault: TraceFault | undefined, kind: "fault" | "int" | "boundary"): number {
  const firstDelivery = rules.findIndex((r) => DELIVERY_RULES.has(r) || isNesting(r));
  const limit = firstDelivery === -1 ? rules.length : firstDelivery;
  if (kind === "fault" && instructionFault !== undefined) {
    const k = rules.slice(0, limit).lastIndexOf(instructionFault.rule);
    if (k === -1) return firstAfterPrefix(rules, limit);
    let d = k + 1;
    // A page walk's fault records PF-01 and PF-02 with its rule; SHADOW-09 follows a fault in a shadow.
    if (rules[d] === "PF-01" && rules[d + 1] === "PF-02") d += 2;
    if (rules[d] === "SHADOW-09") d += 1;
    return d;
  }
  if (kind === "int") {
    let last = -1;
    rules.slice(0, limit).forEach((r, i) => {
      if (r.startsWith("SWINT-")) last = i;
    });
    return last + 1;
  }
  return firstAfterPrefix(rules, limit);
}

const EVENT_PREFIX = new Set(EVENT.map((i) => i.rule).filter((r) => !r.startsWith("SWINT-")));

function firstAfterPrefix(rules: readonly string[], limit: number): number {
  let i = 0;
  while (i < limit && EVENT_PREFIX.has(rules[i]!)) i++;
  return i;
}

interface Attempt {
  readonly vector: number;
  readonly source: DeliverySource;
  readonly errorCode: number | null;
  readonly rules: readonly string[] | undefined;
  /** The rules after the attempt failed (DF-02 ...), up to the next attempt. */
  readonly nesting: readonly string[];
  readonly failed: FailedCheck | null;
}

/** The sequence of a step that delivered an event or shut down (after a failed delivery). */
export function deliverySequence(input: StepInput, engineReportsRules: boolean): { parts: SequencePart[]; entered: DeliveryFacts | null } {
  const { record, before, after, symbol, describe } = input;
  const rules = engineReportsRules ? (record.rules ?? []) : undefined;
  const faults = record.faults ?? [];
  const instructionFault = faults.find((f) => f.during === "instruction");
  const deliveryFaults = faults.filter((f) => f.during === "delivery");
  const insn = record.instruction;
  const mnemonic = insn === null ? "" : mnemonicOf(insn.disassembly);
  const family = familyOf(mnemonic);
  const event = record.event;
  const finalVector = event.kind === "delivered" ? event.vector : null;
  const parts: SequencePart[] = [];

  // What the step started with: the boundary event, the INT instruction, or the faulting instruction.
  let kind: "fault" | "int" | "boundary";
  let first: { vector: number; source: DeliverySource; errorCode: number | null; savedRip: bigint };
  if (insn === null) {
    kind = "boundary";
    const source: DeliverySource = event.kind === "delivered" ? event.source : "exception";
    const vector = rules?.includes("NMI-01") ? 2 : rules?.includes("TF-02") ? 1 : source === "external" && before.cpu.pendingIrq !== null ? before.cpu.pendingIrq : (finalVector ?? 0);
    first = { vector, source: vector === 2 && source !== "external" ? "nmi" : vector === 1 && source !== "external" ? "exception" : source, errorCode: null, savedRip: before.rip };
    if (deliveryFaults.length === 0 && event.kind === "delivered") first = { ...first, vector: event.vector, source: event.source };
  } else if (family === "int" && instructionFault === undefined && (mnemonic !== "into" || instructionFault === undefined)) {
    kind = "int";
    const vector = softwareVector(insn.disassembly) ?? finalVector ?? 0;
    first = { vector, source: mnemonic === "int1" ? "exception" : "software", errorCode: null, savedRip: (before.rip + BigInt(insn.length)) & MASK64 };
  } else {
    kind = "fault";
    const f = instructionFault;
    first = {
      vector: f?.vector ?? finalVector ?? 0,
      source: "exception",
      errorCode: f !== undefined ? f.error_code : event.kind === "delivered" ? event.error_code : null,
      savedRip: before.rip,
    };
  }

  const start = rules === undefined ? 0 : deliveryStart(rules, instructionFault, kind);
  const prefix = rules?.slice(0, start);

  // The first part.
  if (kind === "boundary") {
    const facts: EventFacts = { vector: first.vector, source: first.source, instruction: null, halted: before.cpu.halted };
    const { lines, also } = linesFor(EVENT, facts, prefix ?? eventDerived(first), null, describe);
    parts.push({ title: `${eventName(first.vector, first.source)} at the boundary before ${hex(before.rip)}`, lines, also, failed: false });
  } else if (kind === "int") {
    const facts: EventFacts = { vector: first.vector, source: first.source, instruction: insn!.disassembly, halted: false };
    const { lines, also } = linesFor(EVENT, facts, prefix ?? [first.vector === 3 ? "SWINT-03" : first.vector === 1 ? "SWINT-04" : "SWINT-01", "SWINT-06"], null, describe);
    parts.push({ title: insn!.disassembly, lines, also, failed: false });
  } else {
    parts.push(faultedInstructionPart(input, family, prefix, instructionFault, first, engineReportsRules));
  }

  // The delivery attempts.
  const attempts: Attempt[] = [];
  if (rules === undefined) {
    const vector = finalVector ?? first.vector;
    const sameEvent = finalVector === null || finalVector === first.vector;
    attempts.push({
      vector, source: sameEvent ? first.source : "exception",
      errorCode: event.kind === "delivered" ? event.error_code : first.errorCode,
      rules: undefined, nesting: [], failed: null,
    });
  } else {
    let at = start;
    let vector = first.vector;
    let source = first.source;
    let errorCode = first.errorCode;
    for (let k = 0; at <= rules.length; k++) {
      const df = rules.indexOf("DF-02", at);
      const end = df === -1 ? rules.length : df;
      const fault = deliveryFaults[k];
      if (df === -1 || fault === undefined) {
        attempts.push({ vector, source, errorCode, rules: rules.slice(at, rules.length), nesting: [], failed: null });
        break;
      }
      let next = df;
      while (next < rules.length && isNesting(rules[next]!)) next++;
      const nesting = rules.slice(df, next);
      attempts.push({ vector, source, errorCode, rules: rules.slice(at, end), nesting, failed: { rule: fault.rule, vector: fault.vector, errorCode: fault.error_code } });
      if (nesting.includes("DF-05")) break;
      const toDoubleFault = nesting.includes("DF-04");
      vector = toDoubleFault ? 8 : fault.vector;
      errorCode = toDoubleFault ? 0 : fault.error_code;
      source = "exception";
      at = next;
    }
  }

  let enteredFacts: DeliveryFacts | null = null;
  attempts.forEach((a, k) => {
    const last = k === attempts.length - 1;
    const entered = last && event.kind === "delivered" ? after : null;
    const facts: DeliveryFacts = deliveryFacts(before, entered, { vector: a.vector, source: a.source, errorCode: a.errorCode }, k === 0 ? first.savedRip : before.rip, after.cr2, symbol);
    if (entered !== null) enteredFacts = facts;
    const { lines, also } = linesFor(DELIVERY, facts, a.rules, a.failed, describe);
    const failedName = a.failed === null ? "" : faultName(a.failed.vector, a.failed.errorCode);
    for (const rule of a.nesting) {
      const nextVector = a.nesting.includes("DF-04") ? 8 : (a.failed?.vector ?? null);
      const line = nestingLine(rule, a.vector, nextVector, failedName);
      if (line !== null) lines.push(line);
    }
    parts.push({
      title: `delivery of ${eventName(a.vector, a.source)}${a.errorCode === null ? "" : ` (error code ${hex(a.errorCode)})`} through IDT gate ${hex(a.vector)}`,
      lines, also, failed: a.failed !== null,
    });
  });
  if (rules === undefined && event.kind === "shutdown")
    parts.push({ title: "shutdown", lines: [{ rule: "DF-05", phase: "fault", status: "derived", text: "a fault while delivering #DF: triple fault, the processor shuts down" }], also: [], failed: true });
  return { parts, entered: enteredFacts };
}

function eventDerived(first: { vector: number; source: DeliverySource }): string[] {
  return first.source === "nmi" ? ["PRIO-01", "NMI-01"] : first.source === "external" ? ["PRIO-01"] : first.vector === 1 ? ["PRIO-01", "TF-02"] : [];
}

export function eventName(vector: number, source: DeliverySource): string {
  if (source === "software") return vector === 3 ? "INT3" : `INT ${hex(vector)}`;
  if (source === "external") return `IRQ ${hex(vector)}`;
  if (source === "nmi") return "NMI";
  return vectorName(vector);
}

/** The part of an instruction that did not complete: its rules up to the check that failed. */
function faultedInstructionPart(
  input: StepInput,
  family: InstructionFamily | "int" | null,
  rules: readonly string[] | undefined,
  fault: TraceFault | undefined,
  first: { vector: number; errorCode: number | null },
  engineReportsRules: boolean,
): SequencePart {
  const { record, before, after, symbol, describe } = input;
  const insn = record.instruction!;
  const template = family !== null && family !== "int" ? FAMILY_TEMPLATES[family] : [];
  const facts: InstructionFacts = { before, after, completed: false, size: operandSize(insn.disassembly, family), length: insn.length, symbol };
  const failedName = faultName(first.vector, first.errorCode);
  if (!engineReportsRules) {
    return {
      title: `${insn.disassembly} (faulted)`,
      lines: [{ rule: null, phase: "fault", status: "derived", text: `the instruction did not complete: it raised ${failedName}`, why: "this engine reports no rules: trace it with --engine spec to see the check that failed" }],
      also: [], failed: true,
    };
  }
  const failed: FailedCheck = { rule: fault?.rule ?? "?", vector: first.vector, errorCode: first.errorCode };
  const { lines, also } = linesFor(template, facts, rules, fault === undefined ? null : failed, describe);
  if (first.vector === 14 && fault !== undefined) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.status === "failed") lines[lines.length - 1] = { ...last, why: `${last.why} at ${hex(after.cr2)} (CR2, PF-01)` };
  }
  return { title: `${insn.disassembly} (faulted)`, lines, also, failed: true };
}

function operandSize(disassembly: string, family: InstructionFamily | "int" | null): number {
  const m = mnemonicOf(disassembly);
  if (family === "iret" || family === "far-ret") return m.endsWith("q") ? 8 : m.endsWith("w") ? 2 : 4;
  return 8;
}

/** The sequence of a transition instruction that completed (SYSCALL, SYSRET, SWAPGS, IRET, far RET). */
export function instructionSequence(input: StepInput, family: InstructionFamily, engineReportsRules: boolean): SequencePart[] {
  const { record, before, after, symbol, describe } = input;
  const insn = record.instruction!;
  const facts: InstructionFacts = { before, after, completed: true, size: operandSize(insn.disassembly, family), length: insn.length, symbol };
  const { lines, also } = linesFor(FAMILY_TEMPLATES[family], facts, engineReportsRules ? (record.rules ?? []) : undefined, null, describe);
  return [{ title: insn.disassembly, lines, also, failed: false }];
}
