// Builds the trace model from a run, step by step: each step's trace record, the boundary context
// after it (privilege, mode, IF, stack, GS parity) for the timeline, and for every transition its
// mode-transfer sequence and stack frame, read from the states before and after the step. The
// builder keeps no state but what the model holds (and the TSS stack tops it last read), so a long
// run costs memory in proportion to its transitions and recorded steps, not to its states.
import type { ArchState } from "../../contract/state.ts";
import type { StepView } from "../../contract/engine.ts";
import { traceRecord, type TraceRecord } from "../record.ts";
import { NO_SYMBOLS, symbolizer, type Symbolizer } from "../symbols.ts";
import { displayTranslate, pageReader } from "../disassemble.ts";
import { faultName, vectorName } from "./facts.ts";
import { deliveryFrame, popFrame, registerFrame } from "./frame.ts";
import { cplOf, hex, modeOf, readPhysical, TSS_STACK_FIELDS, tssFieldOffset } from "./machine.ts";
import { deliverySequence, eventName, familyOf, instructionSequence, mnemonicOf, type StepInput } from "./sequence.ts";
import {
  TRACE_MODEL_FORMAT,
  type BoundaryContext, type EndPoint, type Frame, type FrameLayout, type ModelStep, type RoundTripGroup, type RuleInfo,
  type SequencePart, type TimelineSegment, type TraceModel, type Transition, type TransitionKind,
} from "./types.ts";

export interface TraceModelOptions {
  readonly title?: string;
  /** The file traced, the engine, the profile, and the command that makes the trace again. */
  readonly file: string;
  readonly engine: string;
  readonly profile: string;
  readonly command: string;
  /** Whether the engine reports rules (its records carry `rules`). */
  readonly engineReportsRules: boolean;
  /** The rule catalogue: description and SDM source of a rule ID. */
  readonly catalogue: (rule: string) => RuleInfo | undefined;
  readonly symbols?: ReadonlyMap<string, bigint>;
  readonly frameLayout?: FrameLayout;
  /** Bytes below a TSS stack top that count as that stack (default 0x4000). */
  readonly stackWindow?: bigint;
  /** Steps recorded at most (default 100,000); the timeline and transitions cover the whole run. */
  readonly maxRecords?: number;
  /** Transitions with their sequence and frame at most (default 10,000). */
  readonly maxDetailed?: number;
  /** false: transitions are handed to `onTransition` and not kept (a streaming text trace). */
  readonly retainTransitions?: boolean;
  readonly onTransition?: (t: Transition, record: TraceRecord) => void;
}

export interface StopInfo {
  readonly reason: string;
  readonly steps: number;
  readonly detail?: string;
  /** The instruction at the stop, e.g. "0x200005: jmp 0x200005". */
  readonly at: string;
}

interface TssCache {
  readonly key: string;
  readonly physical: bigint | null;
  stacks: readonly { field: string; value: bigint }[];
}

export class TraceModelBuilder {
  private readonly symbol: Symbolizer;
  private readonly window: bigint;
  private readonly maxRecords: number;
  private readonly maxDetailed: number;
  private readonly steps: ModelStep[] = [];
  private omittedSteps = 0;
  private omittedDetails = 0;
  /** Transitions seen (kept or not). */
  private count = 0;
  private readonly transitions: Transition[] = [];
  /** Boundary contexts as runs; `gs` is settled at the end (by parity). */
  private readonly runs: ({ -readonly [K in keyof Omit<TimelineSegment, "gs">]: TimelineSegment[K] } & { parity: number })[] = [];
  private parity = 0;
  /** The SWAPGS parity the first time the run was in user mode. */
  private userParity: number | null = null;
  private lastUserRsp: bigint | null = null;
  private tss: TssCache | null = null;
  private readonly initialContext: Omit<BoundaryContext, "gs">;

  constructor(
    initial: ArchState,
    private readonly options: TraceModelOptions,
  ) {
    this.symbol = options.symbols === undefined ? NO_SYMBOLS : symbolizer(options.symbols);
    this.window = options.stackWindow ?? 0x4000n;
    this.maxRecords = options.maxRecords ?? 100_000;
    this.maxDetailed = options.maxDetailed ?? 10_000;
    this.initialContext = this.context(initial, []);
    this.boundary(0, this.initialContext);
  }

  /** Adds one step; returns its trace record. */
  add(view: StepView): TraceRecord {
    const record = traceRecord(view);
    if (this.steps.length < this.maxRecords) {
      const at = this.symbol(view.event.rip);
      this.steps.push(at === undefined ? record : { ...record, at });
    } else this.omittedSteps++;
    const mnemonic = record.instruction === null ? "" : mnemonicOf(record.instruction.disassembly);
    if (mnemonic === "swapgs" && record.event.kind === "retired") this.parity ^= 1;
    const transition = this.transitionOf(view, record, mnemonic);
    if (transition !== null) {
      this.count++;
      if (this.options.retainTransitions !== false) this.transitions.push(transition);
      this.options.onTransition?.(transition, record);
    }
    this.boundary(view.step, this.context(view.after, record.changes.map((c) => c.field)));
    return record;
  }

  finish(stop: StopInfo): TraceModel {
    const label = (parity: number): BoundaryContext["gs"] =>
      this.userParity === null ? (parity === 0 ? "as-loaded" : "swapped") : parity === this.userParity ? "user" : "kernel";
    const segments: TimelineSegment[] = this.runs.map(({ parity, ...r }) => ({ ...r, gs: label(parity) }));
    const rules = new Set<string>();
    for (const t of this.transitions)
      for (const part of t.sequence) {
        for (const line of part.lines) if (line.rule !== null) rules.add(line.rule);
        for (const a of part.also) rules.add(a.rule);
      }
    for (const s of this.steps) for (const r of s.rules ?? []) rules.add(r);
    const catalogue: Record<string, RuleInfo> = {};
    for (const id of [...rules].sort()) {
      const info = this.options.catalogue(id);
      if (info !== undefined) catalogue[id] = info;
    }
    const o = this.options;
    return {
      format: TRACE_MODEL_FORMAT,
      title: o.title ?? o.file,
      source: { file: o.file, engine: o.engine, profile: o.profile, rules: o.engineReportsRules, command: o.command },
      stop: { reason: stop.reason, steps: stop.steps, ...(stop.detail === undefined ? {} : { detail: stop.detail }), at: stop.at },
      initial: { ...this.initialContext, gs: segments[0]?.gs ?? "as-loaded" },
      segments,
      transitions: this.transitions,
      groups: roundTripGroups(this.transitions),
      steps: this.steps,
      omittedSteps: this.omittedSteps,
      omittedDetails: this.omittedDetails,
      rules: catalogue,
      ...(o.frameLayout === undefined ? {} : { frameLayout: o.frameLayout.name }),
    };
  }

  // ---- the timeline ------------------------------------------------------------------------

  private boundary(n: number, c: Omit<BoundaryContext, "gs">): void {
    const last = this.runs[this.runs.length - 1];
    if (c.cpl === 3) {
      if (this.userParity === null) this.userParity = this.parity;
    }
    if (last !== undefined && last.cpl === c.cpl && last.mode === c.mode && last.if === c.if && last.stack === c.stack && last.parity === this.parity) {
      last.to = n;
      return;
    }
    this.runs.push({ from: n, to: n, ...c, parity: this.parity });
  }

  private context(s: ArchState, changed: readonly string[]): Omit<BoundaryContext, "gs"> {
    const cpl = cplOf(s);
    const rsp = s.gpr[4]!;
    let stack: string;
    if (cpl === 3) {
      stack = "user";
      this.lastUserRsp = rsp;
    } else {
      stack = this.tssStack(s, rsp, changed) ?? (this.lastUserRsp !== null && absDiff(rsp, this.lastUserRsp) <= this.window ? "user" : "kernel");
    }
    return { cpl, mode: modeOf(s), if: (s.rflags & 0x200n) !== 0n, stack };
  }

  /** The TSS field whose stack RSP is on (within the window below its value), closest first. */
  private tssStack(s: ArchState, rsp: bigint, changed: readonly string[]): string | undefined {
    const key = `${s.cr3}:${s.tr.base}:${s.tr.limit}`;
    let cache = this.tss;
    if (cache === null || cache.key !== key) {
      const physical = displayTranslate(s.cr3, s.tr.base, pageReader(s.memory));
      cache = this.tss = { key, physical, stacks: [] };
      this.readTss(s, cache);
    } else if (cache.physical !== null && changed.some((f) => touchesTss(f, cache!.physical!))) this.readTss(s, cache);
    let best: { field: string; distance: bigint } | undefined;
    for (const { field, value } of cache.stacks) {
      if (rsp > value || value - rsp > this.window) continue;
      const distance = value - rsp;
      if (best === undefined || distance < best.distance) best = { field, distance };
    }
    return best?.field;
  }

  private readTss(s: ArchState, cache: TssCache): void {
    if (cache.physical === null) return;
    const stacks: { field: string; value: bigint }[] = [];
    for (const field of TSS_STACK_FIELDS) {
      const offset = tssFieldOffset(field);
      if (offset + 7 > s.tr.limit) continue;
      // The TSS lies within one page in every layout we build; a field past the page is read
      // from the next physical page, which the identity maps of our guests make right.
      const value = readPhysical(s, cache.physical + BigInt(offset), 8);
      if (value !== 0n) stacks.push({ field, value });
    }
    cache.stacks = stacks;
  }

  // ---- transitions -------------------------------------------------------------------------

  private endPoint(s: ArchState, rip: bigint): EndPoint {
    const at = this.symbol(rip);
    return {
      cpl: cplOf(s), mode: modeOf(s), rip: hex(rip), ...(at === undefined ? {} : { at }),
      rsp: hex(s.gpr[4]!), stack: this.context(s, []).stack,
    };
  }

  private transitionOf(view: StepView, record: TraceRecord, mnemonic: string): Transition | null {
    const { before, after } = view;
    const event = record.event;
    const family = familyOf(mnemonic);
    let kind: TransitionKind;
    if (event.kind === "delivered") {
      kind = event.source === "software" ? "int" : event.source === "external" ? "irq" : event.source === "nmi" ? "nmi" : "exception";
    } else if (event.kind === "shutdown") kind = "triple-fault";
    else if (event.kind === "retired" && family !== null && family !== "int") kind = family;
    else if (event.kind === "retired" && (mnemonic.startsWith("ljmp") || mnemonic.startsWith("lcall")) && before.cs.selector !== after.cs.selector)
      kind = mnemonic.startsWith("ljmp") ? "far-jump" : "far-call";
    else return null;

    const id = this.count;
    const detailed = id < this.maxDetailed;
    if (!detailed) this.omittedDetails++;
    const ordered = record.rules === undefined ? record : { ...record, rules: placeImplied(record.rules, this.options.catalogue) };
    const input: StepInput = { record: ordered, before, after, symbol: this.symbol, describe: (rule) => this.options.catalogue(rule)?.description ?? rule };
    const reports = this.options.engineReportsRules;
    const naming = { layout: this.options.frameLayout ?? null, symbol: this.symbol };
    let sequence: SequencePart[] = [];
    const frames: Frame[] = [];
    let failed: Transition["failed"];
    const insn = record.instruction;

    if (event.kind === "delivered" || event.kind === "shutdown") {
      const { parts, entered } = detailed ? deliverySequence(input, reports) : { parts: [], entered: null };
      sequence = parts;
      const faultedFamily = insn !== null && family !== null && family !== "int" && (event.kind === "shutdown" || event.source === "exception") ? family : null;
      if (faultedFamily !== null && insn !== null) {
        const fault = record.faults?.find((f) => f.during === "instruction");
        const firstPart = parts[0];
        const failedLine = firstPart?.lines.find((l) => l.status === "failed");
        failed = {
          instruction: mnemonic.toUpperCase(),
          rule: fault?.rule ?? null,
          why: failedLine?.text ?? (fault === undefined ? "the engine does not say which check failed" : (this.options.catalogue(fault.rule)?.description ?? fault.rule)),
        };
        if (detailed && (faultedFamily === "iret" || faultedFamily === "far-ret"))
          frames.push(popFrame(before, after, faultedFamily === "iret" ? ["RIP", "CS", "RFLAGS", "RSP", "SS"] : ["RIP", "CS"], operandBytes(mnemonic), false, naming, `the frame ${mnemonic.toUpperCase()} read before it faulted`));
      }
      if (detailed && entered !== null) {
        const f = deliveryFrame(entered, naming);
        if (f !== null) frames.push(f);
      }
    } else if (detailed && (kind === "syscall" || kind === "sysret" || kind === "swapgs" || kind === "iret" || kind === "far-ret")) {
      sequence = instructionSequence(input, kind, reports);
      if (kind === "iret") frames.push(popFrame(before, after, ["RIP", "CS", "RFLAGS", "RSP", "SS"], operandBytes(mnemonic), true, naming, `${mnemonic.toUpperCase()} pops its frame`));
      else if (kind === "far-ret") {
        const outer = cplOf(after) > cplOf(before);
        frames.push(popFrame(before, after, outer ? ["RIP", "CS", "RSP", "SS"] : ["RIP", "CS"], operandBytes(mnemonic), true, naming, `${mnemonic.toUpperCase()} pops its frame`));
      } else frames.push(registerFrame(before, after, kind));
    }

    const label = transitionLabel(kind, record, mnemonic, failed);
    const from = this.endPoint(before, view.event.rip);
    const to = this.endPoint(after, after.rip);
    const code = event.kind === "delivered" ? event.error_code : null;
    const where = insn === null ? `at the boundary before ${hex(before.rip)}` : `at ${hex(view.event.rip)}${from.at === undefined ? "" : ` <${from.at}>`}: ${insn.disassembly}`;
    const title =
      event.kind === "delivered"
        ? `${event.source === "exception" ? faultName(event.vector, code) : eventName(event.vector, event.source)} from CPL ${from.cpl} ${where}${failed === undefined ? "" : ` (${failed.instruction} failed)`}`
        : event.kind === "shutdown"
          ? `triple fault ${where}: the CPU shut down`
          : `${label} from CPL ${from.cpl} to CPL ${to.cpl} ${where}`;
    return {
      id, step: view.step, kind, label, title,
      ...(event.kind === "delivered" ? { vector: event.vector, errorCode: code } : {}),
      from, to,
      ...(failed === undefined ? {} : { failed }),
      minor: kind === "swapgs",
      sequence, frames,
    };
  }
}

/**
 * The engine records a rule that has no check or update of its own (`recordedWith`) once the step
 * is over; the sequence shows it right after the first of the rules it is recorded with.
 */
export function placeImplied(rules: readonly string[], catalogue: (rule: string) => RuleInfo | undefined): string[] {
  const implied = new Map<string, readonly string[]>();
  for (const r of new Set(rules)) {
    const w = catalogue(r)?.recordedWith;
    if (w !== undefined) implied.set(r, typeof w === "string" ? [w] : w);
  }
  if (implied.size === 0) return [...rules];
  const out: string[] = [];
  const placed = new Set<string>();
  for (const r of rules) {
    if (implied.has(r)) continue;
    out.push(r);
    for (const [rule, anchors] of implied)
      if (!placed.has(rule) && anchors.includes(r)) {
        out.push(rule);
        placed.add(rule);
      }
  }
  // Implied rules whose anchors were not recorded keep their place at the end.
  for (const rule of implied.keys()) if (!placed.has(rule)) out.push(rule);
  return out;
}

function operandBytes(mnemonic: string): number {
  return mnemonic.endsWith("q") ? 8 : mnemonic.endsWith("w") ? 2 : 4;
}

function transitionLabel(kind: TransitionKind, record: TraceRecord, mnemonic: string, failed: Transition["failed"]): string {
  const event = record.event;
  if (event.kind === "delivered") {
    const name = event.source === "exception" ? vectorName(event.vector) : eventName(event.vector, event.source);
    return failed === undefined ? name : `${name} ← ${failed.instruction}`;
  }
  if (kind === "triple-fault") return "triple fault";
  return mnemonic.toUpperCase();
}

function absDiff(a: bigint, b: bigint): bigint {
  return a > b ? a - b : b - a;
}

/** Whether a changed field (`memory@0x…`) lies in the TSS's first page of stack fields. */
function touchesTss(field: string, physical: bigint): boolean {
  if (!field.startsWith("memory@")) return false;
  const address = BigInt(field.slice("memory@".length));
  return address + 8n > physical && address < physical + 0x68n;
}

/**
 * Consecutive round trips from user mode with the same shape: entry (kind, vector, handler),
 * the transitions inside, and the return. Three or more in a row make a group.
 */
export function roundTripGroups(transitions: readonly Transition[]): RoundTripGroup[] {
  const major = transitions.filter((t) => !t.minor);
  interface Trip { first: number; last: number; signature: string; label: string; from: number; to: number }
  const trips: Trip[] = [];
  for (let i = 0; i < major.length; i++) {
    const entry = major[i]!;
    if (!(entry.from.cpl === 3 && entry.to.cpl < 3)) continue;
    let j = i + 1;
    while (j < major.length && major[j]!.to.cpl !== 3) j++;
    if (j >= major.length) break;
    const exit = major[j]!;
    const inside = major.slice(i + 1, j).map((t) => t.label).join(",");
    trips.push({
      first: entry.id, last: exit.id,
      signature: `${entry.label}|${entry.to.rip}|${inside}|${exit.label}|${exit.to.rip}`,
      label: `${entry.label} → ${exit.label}`,
      from: entry.step - 1, to: exit.step,
    });
    i = j;
  }
  const position = new Map(major.map((t, i) => [t.id, i] as const));
  // Adjacent: the next trip's entry is the next major transition after this trip's return.
  const adjacent = (exitId: number, entryId: number) => position.get(entryId) === (position.get(exitId) ?? -2) + 1;
  const groups: RoundTripGroup[] = [];
  for (let i = 0; i < trips.length; ) {
    let j = i + 1;
    while (j < trips.length && trips[j]!.signature === trips[i]!.signature && adjacent(trips[j - 1]!.last, trips[j]!.first)) j++;
    const count = j - i;
    if (count >= 3) groups.push({ label: `×${count} ${trips[i]!.label}`, first: trips[i]!.first, last: trips[j - 1]!.last, count, from: trips[i]!.from, to: trips[j - 1]!.to });
    i = j;
  }
  return groups;
}
