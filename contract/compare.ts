// The one state comparison of the project: a vector's `expected` section against a final state
// (vector checks, tests), two engines' states and events after a step (lockstep), and a state
// before and after a step (traces). Fields are named as the vector format spells them
// (`regs.rax`, `regs.rip`, `sregs.cs.dpl`, `sregs.gdt.base`, `msrs.FS_BASE`, `cpu.pending_irq`,
// `memory@0x1ffd8`) and valued as it spells them (hex strings, attribute numbers, booleans, hex
// bytes). Which hidden fields count is decided here and nowhere else (`ComparisonRule`), and so is
// what an engine that cannot observe a field gets: "not compared", never a pass.
import { GPR_NAMES, type ExpectedParsed } from "./schema.ts";
import { bytesToHex, hex, hexToBytes } from "./hex.ts";
import { PAGE_SIZE, type ArchState, type Segment, type SegmentName } from "./state.ts";
import type { EngineEvent, PhysicalRange } from "./engine.ts";

/** A field's value as the vector format writes it. */
export type FieldValue = string | number | boolean | null;

/** One field that differs: `a` is the reference side (the expected value, engine A, the state
 *  before a step), `b` the other (the value got, engine B, the state after). */
export interface FieldDifference {
  readonly field: string;
  readonly a: FieldValue;
  readonly b: FieldValue;
}

export interface Comparison {
  /** In field-table order (registers, segments, tables, control registers, MSRs, CPU state),
   *  memory last in address order. */
  readonly differences: readonly FieldDifference[];
  /** Fields that would have been compared but an engine cannot observe them (its
   *  EngineCapabilities.unobservable). Reports list them as not compared; they are not passes. */
  readonly notCompared: readonly string[];
}

/**
 * Which hidden fields count: the project's hidden-field rules, all of them here.
 * - `exact`: every field, hidden parts included. For two engines of this project, which share the
 *   model choices (docs/model-choices.md): lockstep between spec/ and impl/, and traces.
 * - `loaded`: what an engine must hold after `load()`: every field as given, except the
 *   attributes (base, limit, type, s, dpl, present, db, l, g, avl) of a hidden part marked
 *   unusable: they have no meaning, and emulators keep none (QEMU). The emulator engines check
 *   each installed state with it.
 * - `architectural`: what the architecture defines. As `loaded`, and the hidden part of a data
 *   segment register (DS, ES, FS, GS, SS) holding a null selector is not compared at all (only its
 *   selector is): implementations differ there and 64-bit mode does not use it (vector README,
 *   "Fields"; SS too: the NULL SS that inter-privilege delivery loads has an
 *   implementation-specific hidden part, docs/discrepancies.md). FS and GS bases still count, as
 *   `msrs.FS_BASE`/`msrs.GS_BASE`. What a vector's `expected` compares, and lockstep against an
 *   outside engine.
 * "Holding a null selector" and "marked unusable" are decided on the reference side (`a`: the
 * expected section, the reference engine, the state asked for); a vector whose expected segment
 * omits the selector has its hidden fields compared.
 */
export type ComparisonRule = "exact" | "loaded" | "architectural";

export interface StateComparisonOptions {
  readonly rule: ComparisonRule;
  /** Physical memory compared: every page either state holds, or these ranges (e.g. the union of
   *  what two engines wrote, Engine.touched()). */
  readonly memory: "all" | readonly PhysicalRange[];
  /** `byte` (default): one difference per run of differing bytes. `word`: runs widened to aligned
   *  8-byte words, so a pushed value or a paging entry shows whole (traces). */
  readonly memoryUnit?: "byte" | "word";
  /** Field patterns not compared (EngineCapabilities.unobservable of either engine). */
  readonly unobservable?: readonly string[];
}

export interface ExpectedComparisonOptions {
  /** Field patterns not compared (the engine's EngineCapabilities.unobservable). */
  readonly unobservable?: readonly string[];
}

// ------------------------------------------------------------------------------------------------
// The field table

type Raw = bigint | number | boolean | string | null;

interface FieldSpec {
  readonly field: string;
  readonly read: (s: ArchState) => Raw;
  /** The parsed `expected` value at this path, if the format's expected section can hold it. */
  readonly expected?: (e: ExpectedParsed) => Raw | undefined;
  /** Numbers written in hex (selectors, limits). */
  readonly hexNumber?: boolean;
  /** A segment register's field: which register, and which part (the hidden-field rules). */
  readonly segment?: SegmentField;
  /** `msrs.FS_BASE`/`msrs.GS_BASE`: the same value as `sregs.fs.base`/`sregs.gs.base`. Between two
   *  states it is compared only where the hidden-field rules left the segment base out. */
  readonly aliasOf?: "fs" | "gs";
}

interface SegmentField {
  readonly name: SegmentName;
  /** The format's name (`ldt` for LDTR). */
  readonly json: string;
  /** The visible selector, the unusable flag, or an attribute of the hidden part. */
  readonly part: "selector" | "unusable" | "attribute";
  /** DS, ES, FS, GS or SS. */
  readonly data: boolean;
}

/** Segment registers as the format names them, with the state's names. */
const SEGMENTS: readonly (readonly [string, SegmentName])[] = [
  ["cs", "cs"], ["ds", "ds"], ["es", "es"], ["fs", "fs"], ["gs", "gs"], ["ss", "ss"], ["tr", "tr"], ["ldt", "ldtr"],
];
/** Segment fields in the format's order; the first is the visible part. */
const SEGMENT_FIELDS = ["selector", "base", "limit", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"] as const;
const DATA_SEGMENTS: ReadonlySet<SegmentName> = new Set<SegmentName>(["ds", "es", "fs", "gs", "ss"]);
const CONTROL = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7"] as const;
const MSRS = [
  ["STAR", "star"], ["LSTAR", "lstar"], ["CSTAR", "cstar"], ["SFMASK", "fmask"], ["KERNEL_GS_BASE", "kernelGsBase"],
] as const;
/** The MSRs a state may leave out (their power-up values then), after FS_BASE and GS_BASE. */
const OPTIONAL_MSRS = [
  ["SYSENTER_CS", "sysenterCs"], ["SYSENTER_ESP", "sysenterEsp"], ["SYSENTER_EIP", "sysenterEip"], ["APIC_BASE", "apicBase"],
] as const;
const CPU_FIELDS = [
  ["pending_irq", "pendingIrq"], ["pending_nmi", "pendingNmi"], ["nmi_blocked", "nmiBlocked"], ["shadow", "shadow"],
  ["halted", "halted"], ["shutdown", "shutdown"], ["pending_debug_trap", "pendingDebugTrap"],
] as const;

const TIMER_FIELDS = [["period", "period"], ["vector", "vector"], ["countdown", "countdown"], ["waiting_eoi", "waitingEoi"]] as const;

function timerExpected(e: ExpectedParsed, json: (typeof TIMER_FIELDS)[number][0]): Raw | undefined {
  return e.devices?.timer?.[json];
}

/** `devices.exit_value` may be expected as null ("not exited"): undefined only when absent. */
function exitValueExpected(e: ExpectedParsed): Raw | undefined {
  const d = e.devices;
  return d === undefined || !("exit_value" in d) ? undefined : (d.exit_value ?? null);
}

function expectedSegment(e: ExpectedParsed, json: string): Partial<Record<string, string | number>> | undefined {
  return e.sregs?.[json as keyof NonNullable<ExpectedParsed["sregs"]>] as Partial<Record<string, string | number>> | undefined;
}

function buildFields(): FieldSpec[] {
  const fields: FieldSpec[] = [];
  GPR_NAMES.forEach((name, i) => fields.push({ field: `regs.${name}`, read: (s) => s.gpr[i]!, expected: (e) => e.regs?.[name] }));
  fields.push({ field: "regs.rip", read: (s) => s.rip, expected: (e) => e.regs?.rip });
  fields.push({ field: "regs.rflags", read: (s) => s.rflags, expected: (e) => e.regs?.rflags });
  for (const [json, name] of SEGMENTS)
    for (const f of SEGMENT_FIELDS) {
      const part = f === "selector" || f === "unusable" ? f : "attribute";
      fields.push({
        field: `sregs.${json}.${f}`,
        read: (s) => (s[name] as Segment)[f],
        expected: (e) => expectedSegment(e, json)?.[f],
        hexNumber: f === "selector" || f === "limit",
        segment: { name, json, part, data: DATA_SEGMENTS.has(name) },
      });
    }
  for (const [json, name] of [["gdt", "gdtr"], ["idt", "idtr"]] as const) {
    fields.push({ field: `sregs.${json}.base`, read: (s) => s[name].base, expected: (e) => e.sregs?.[json]?.base });
    fields.push({ field: `sregs.${json}.limit`, read: (s) => s[name].limit, expected: (e) => e.sregs?.[json]?.limit, hexNumber: true });
  }
  for (const name of CONTROL) fields.push({ field: `sregs.${name}`, read: (s) => s[name], expected: (e) => e.sregs?.[name] });
  for (const [json, name] of MSRS) fields.push({ field: `msrs.${json}`, read: (s) => s[name], expected: (e) => e.msrs?.[json] });
  fields.push({ field: "msrs.FS_BASE", read: (s) => s.fs.base, expected: (e) => e.msrs?.FS_BASE, aliasOf: "fs" });
  fields.push({ field: "msrs.GS_BASE", read: (s) => s.gs.base, expected: (e) => e.msrs?.GS_BASE, aliasOf: "gs" });
  for (const [json, name] of OPTIONAL_MSRS) fields.push({ field: `msrs.${json}`, read: (s) => s[name], expected: (e) => e.msrs?.[json] });
  for (const [json, name] of CPU_FIELDS) fields.push({ field: `cpu.${json}`, read: (s) => s.cpu[name] });
  for (const [json, name] of TIMER_FIELDS)
    fields.push({ field: `devices.timer.${json}`, read: (s) => s.devices.timer[name], expected: (e) => timerExpected(e, json) });
  fields.push({ field: "devices.exit_value", read: (s) => s.devices.exitValue, expected: (e) => exitValueExpected(e) });
  return fields;
}

const FIELDS: readonly FieldSpec[] = buildFields();

/** Every field name the comparison knows, in its order (memory is `memory@ADDRESS`, last). */
export const STATE_FIELD_NAMES: readonly string[] = FIELDS.map((f) => f.field);

function value(raw: Raw, hexNumber: boolean | undefined): FieldValue {
  if (typeof raw === "bigint") return hex(raw);
  if (typeof raw === "number" && hexNumber === true) return hex(raw);
  return raw;
}

/** Every field of a state (memory aside) as the comparison names and values them: what a report
 *  shows beside a difference (the divergence page lists both states whole). */
export function stateFields(s: ArchState): { readonly field: string; readonly value: FieldValue }[] {
  return FIELDS.map((spec) => ({ field: spec.field, value: value(spec.read(s), spec.hexNumber) }));
}

/** Whether `field` matches one of `patterns` (exact, or a prefix before a trailing `*`). */
export function fieldMatches(field: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p.endsWith("*") ? field.startsWith(p.slice(0, -1)) : field === p) return true;
  }
  return false;
}

/** What the reference side says of a segment register, for the hidden-field rules. */
interface SegmentReference {
  /** A number, or hex text (an `expected` section's). */
  readonly selector: string | number | undefined;
  readonly unusable: string | number | undefined;
}

/** The hidden-field rules (see ComparisonRule), in one place: whether a segment register's field
 *  is left out, given what the reference side holds (undefined: not known). */
function segmentFieldSkipped(rule: ComparisonRule, field: SegmentField, reference: SegmentReference): boolean {
  if (rule === "exact" || field.part === "selector") return false;
  if (field.part === "attribute" && reference.unusable !== undefined && Number(reference.unusable) === 1) return true;
  return rule === "architectural" && field.data && reference.selector !== undefined && (BigInt(reference.selector) & ~3n) === 0n;
}

const BASE_FIELD: Readonly<Record<"fs" | "gs", SegmentField>> = {
  fs: { name: "fs", json: "fs", part: "attribute", data: true },
  gs: { name: "gs", json: "gs", part: "attribute", data: true },
};

function stateReference(s: ArchState, name: SegmentName): SegmentReference {
  return { selector: s[name].selector, unusable: s[name].unusable };
}

const MEMORY = "memory";
const memoryField = (address: number | bigint): string => `memory@${hex(address)}`;

// ------------------------------------------------------------------------------------------------
// States

function sameSegment(x: Segment, y: Segment): boolean {
  return x.selector === y.selector && x.base === y.base && x.limit === y.limit && x.type === y.type && x.s === y.s && x.dpl === y.dpl &&
    x.present === y.present && x.db === y.db && x.l === y.l && x.g === y.g && x.avl === y.avl && x.unusable === y.unusable;
}

/** Whether every value the field table reads is the same in both states (=== each, read by name:
 *  the table's reads by computed key cost about 16 us a comparison, and a lockstep compares after
 *  every step). A test changes each value of a state in turn and checks that this is never true
 *  where the table finds a difference. */
function sameBesidesMemory(a: ArchState, b: ArchState): boolean {
  const ga = a.gpr;
  const gb = b.gpr;
  if (ga.length !== gb.length) return false;
  for (let i = 0; i < ga.length; i++) if (ga[i] !== gb[i]) return false;
  const ca = a.cpu;
  const cb = b.cpu;
  const ta = a.devices.timer;
  const tb = b.devices.timer;
  return a.rip === b.rip && a.rflags === b.rflags &&
    sameSegment(a.cs, b.cs) && sameSegment(a.ds, b.ds) && sameSegment(a.es, b.es) && sameSegment(a.fs, b.fs) &&
    sameSegment(a.gs, b.gs) && sameSegment(a.ss, b.ss) && sameSegment(a.tr, b.tr) && sameSegment(a.ldtr, b.ldtr) &&
    a.gdtr.base === b.gdtr.base && a.gdtr.limit === b.gdtr.limit && a.idtr.base === b.idtr.base && a.idtr.limit === b.idtr.limit &&
    a.cr0 === b.cr0 && a.cr2 === b.cr2 && a.cr3 === b.cr3 && a.cr4 === b.cr4 && a.cr8 === b.cr8 && a.efer === b.efer &&
    a.star === b.star && a.lstar === b.lstar && a.cstar === b.cstar && a.fmask === b.fmask && a.kernelGsBase === b.kernelGsBase &&
    a.sysenterCs === b.sysenterCs && a.sysenterEsp === b.sysenterEsp && a.sysenterEip === b.sysenterEip && a.apicBase === b.apicBase &&
    a.dr0 === b.dr0 && a.dr1 === b.dr1 && a.dr2 === b.dr2 && a.dr3 === b.dr3 && a.dr6 === b.dr6 && a.dr7 === b.dr7 &&
    ca.pendingIrq === cb.pendingIrq && ca.pendingNmi === cb.pendingNmi && ca.nmiBlocked === cb.nmiBlocked && ca.shadow === cb.shadow &&
    ca.halted === cb.halted && ca.shutdown === cb.shutdown && ca.pendingDebugTrap === cb.pendingDebugTrap &&
    ta.period === tb.period && ta.vector === tb.vector && ta.countdown === tb.countdown && ta.waitingEoi === tb.waitingEoi &&
    a.devices.exitValue === b.devices.exitValue;
}

/** Two states field by field; memory as `options.memory` says. */
export function compareStates(a: ArchState, b: ArchState, options: StateComparisonOptions): Comparison {
  const unobservable = options.unobservable ?? [];
  const differences: FieldDifference[] = [];
  const notCompared: string[] = [];
  // The exact rule skips no segment field (segmentFieldSkipped): no reference to look up (a
  // lockstep compares whole states after every step).
  const exact = options.rule === "exact";
  // Under the exact rule the table compares every value with !==: where all are the same, it
  // would find nothing.
  const fields = exact && unobservable.length === 0 && sameBesidesMemory(a, b) ? [] : FIELDS;
  for (const spec of fields) {
    if (spec.segment !== undefined && !exact && segmentFieldSkipped(options.rule, spec.segment, stateReference(a, spec.segment.name))) continue;
    // The FS/GS base once: as a segment field, or as its MSR where the rules left the base out.
    if (spec.aliasOf !== undefined && (exact || !segmentFieldSkipped(options.rule, BASE_FIELD[spec.aliasOf], stateReference(a, spec.aliasOf)))) continue;
    if (unobservable.length > 0 && fieldMatches(spec.field, unobservable)) {
      notCompared.push(spec.field);
      continue;
    }
    const x = spec.read(a);
    const y = spec.read(b);
    if (x !== y) differences.push({ field: spec.field, a: value(x, spec.hexNumber), b: value(y, spec.hexNumber) });
  }
  if (unobservable.length > 0 && fieldMatches(memoryField(0), unobservable)) notCompared.push(MEMORY);
  else differences.push(...memoryDifferences(a.memory, b.memory, options.memory, options.memoryUnit ?? "byte"));
  return { differences, notCompared };
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/** Page numbers and the offsets within each to compare, in address order. */
function pageSpans(a: ReadonlyMap<number, Uint8Array>, b: ReadonlyMap<number, Uint8Array>, memory: StateComparisonOptions["memory"]): [number, number, number][] {
  const spans: [number, number, number][] = [];
  if (memory === "all") {
    const numbers = new Set<number>(a.keys());
    for (const n of b.keys()) numbers.add(n);
    for (const n of [...numbers].sort((x, y) => x - y)) if (a.get(n) !== b.get(n)) spans.push([n, 0, PAGE_SIZE]);
    return spans;
  }
  // Merged first, so that no byte is compared twice.
  for (const range of unionRanges(memory, [])) {
    if (range.end <= range.start) continue;
    const first = Number(range.start >> 12n);
    const last = Number((range.end - 1n) >> 12n);
    for (let n = first; n <= last; n++) {
      const from = n === first ? Number(range.start & 0xfffn) : 0;
      const to = n === last ? Number(((range.end - 1n) & 0xfffn) + 1n) : PAGE_SIZE;
      spans.push([n, from, to]);
    }
  }
  return spans;
}

/** Node's Buffer.compare where there is one (a memcmp: lockstep compares every page either engine
 *  wrote after every step, and a 4 KiB page is about 5x faster natively than in the loop below). */
const NATIVE_COMPARE = (globalThis as { Buffer?: { compare(a: Uint8Array, b: Uint8Array): number } }).Buffer?.compare;

/** Whether bytes [from, to) of two pages are equal (most are): natively, else 32 bits at a time
 *  where the views allow it. */
function spanEqual(x: Uint8Array, y: Uint8Array, from: number, to: number): boolean {
  if (NATIVE_COMPARE !== undefined) {
    const whole = from === 0 && to === x.length && to === y.length;
    return NATIVE_COMPARE(whole ? x : x.subarray(from, to), whole ? y : y.subarray(from, to)) === 0;
  }
  let i = from;
  if (((x.byteOffset | y.byteOffset | from) & 3) === 0) {
    const words = (to - from) >> 2;
    const wx = new Int32Array(x.buffer, x.byteOffset + from, words);
    const wy = new Int32Array(y.buffer, y.byteOffset + from, words);
    for (let k = 0; k < words; k++) if (wx[k] !== wy[k]) return false;
    i = from + (words << 2);
  }
  for (; i < to; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Runs of differing bytes (or aligned 8-byte words) over the spans, merged across pages. */
function memoryDifferences(
  a: ReadonlyMap<number, Uint8Array>,
  b: ReadonlyMap<number, Uint8Array>,
  memory: StateComparisonOptions["memory"],
  unit: "byte" | "word",
): FieldDifference[] {
  const out: FieldDifference[] = [];
  let runStart = -1;
  let runA: number[] = [];
  let runB: number[] = [];
  const flush = () => {
    if (runA.length === 0) return;
    out.push({ field: memoryField(runStart), a: bytesToHex(Uint8Array.from(runA)), b: bytesToHex(Uint8Array.from(runB)) });
    runA = [];
    runB = [];
  };
  const add = (address: number, pa: Uint8Array, pb: Uint8Array, from: number, to: number) => {
    if (runA.length > 0 && address !== runStart + runA.length) flush();
    if (runA.length === 0) runStart = address;
    for (let i = from; i < to; i++) {
      runA.push(pa[i]!);
      runB.push(pb[i]!);
    }
  };
  const step = unit === "word" ? 8 : 1;
  for (const [n, from, to] of pageSpans(a, b, memory)) {
    const pa = a.get(n) ?? ZERO_PAGE;
    const pb = b.get(n) ?? ZERO_PAGE;
    if (pa === pb || spanEqual(pa, pb, from, to)) continue;
    const base = n * PAGE_SIZE;
    const start = unit === "word" ? from & ~7 : from;
    for (let i = start; i < to; i += step) {
      const end = Math.min(i + step, PAGE_SIZE);
      let differs = false;
      for (let k = Math.max(i, from); k < Math.min(end, to); k++) {
        if (pa[k] !== pb[k]) {
          differs = true;
          break;
        }
      }
      if (differs) add(base + i, pa, pb, i, end);
    }
  }
  flush();
  return out;
}

// ------------------------------------------------------------------------------------------------
// A vector's expected section

/** Every field present in `expected` (vector README, "Running a vector" 5) against `state`, under
 *  the architectural rule; `a` is the expected value. The exit is the runner's (conformance/). */
export function compareExpected(expected: ExpectedParsed, state: ArchState, options: ExpectedComparisonOptions = {}): Comparison {
  const unobservable = options.unobservable ?? [];
  const differences: FieldDifference[] = [];
  const notCompared: string[] = [];
  for (const spec of FIELDS) {
    const want = spec.expected?.(expected);
    if (want === undefined) continue;
    if (spec.segment !== undefined) {
      const segment = expectedSegment(expected, spec.segment.json);
      if (segmentFieldSkipped("architectural", spec.segment, { selector: segment?.selector, unusable: segment?.unusable })) continue;
    }
    if (unobservable.length > 0 && fieldMatches(spec.field, unobservable)) {
      notCompared.push(spec.field);
      continue;
    }
    // `expected` holds hex fields as their validated text (contract/schema.ts Hex64Text): by value.
    const x = value(typeof want === "string" ? BigInt(want) : want, spec.hexNumber);
    const y = value(spec.read(state), spec.hexNumber);
    if (x !== y) differences.push({ field: spec.field, a: x, b: y });
  }
  const regions = expected.memory ?? [];
  if (regions.length > 0 && unobservable.length > 0 && fieldMatches(memoryField(0), unobservable)) notCompared.push(MEMORY);
  else for (const region of regions) differences.push(...regionDifferences(BigInt(region.gpa), hexToBytes(region.bytes), state.memory));
  return { differences, notCompared };
}

/** Runs of bytes of one expected region that differ from the state's memory. */
function regionDifferences(gpa: bigint, want: Uint8Array, pages: ReadonlyMap<number, Uint8Array>): FieldDifference[] {
  const got = new Uint8Array(want.length);
  for (let i = 0; i < want.length; i++) {
    const address = gpa + BigInt(i);
    got[i] = pages.get(Number(address >> 12n))?.[Number(address & 0xfffn)] ?? 0;
  }
  const out: FieldDifference[] = [];
  let i = 0;
  while (i < want.length) {
    if (want[i] === got[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < want.length && want[j] !== got[j]) j++;
    out.push({ field: memoryField(gpa + BigInt(i)), a: bytesToHex(want.subarray(i, j)), b: bytesToHex(got.subarray(i, j)) });
    i = j;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Events

/** An event's observable fields as the comparison names them (`event.kind`, `event.vector`, ...).
 *  Whether the step was an instruction's counts (a boundary disagreement); the instruction's bytes
 *  do not (an engine may decode none for an instruction whose decoding faults, and RIP shows a
 *  length disagreement anyway), nor the `unsupported` reason text or the rule IDs (each engine
 *  words its own). */
export function eventFields(e: EngineEvent): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = { "event.kind": e.kind, "event.rip": hex(e.rip) };
  switch (e.kind) {
    case "delivered":
      out["event.vector"] = e.vector;
      out["event.error_code"] = e.errorCode ?? null;
      out["event.source"] = e.source;
      break;
    case "io":
      out["event.direction"] = e.direction;
      out["event.port"] = hex(e.port);
      out["event.size"] = e.size;
      out["event.value"] = hex(e.value);
      break;
    case "unsupported":
      out["event.bytes"] = bytesToHex(e.bytes);
      break;
    case "exited":
      out["event.value"] = hex(e.value);
      break;
    default:
      break;
  }
  if (e.kind !== "unsupported") out["event.instruction"] = e.instruction !== undefined;
  return out;
}

/** Differences between two steps' events. */
export function compareEvents(a: EngineEvent, b: EngineEvent): FieldDifference[] {
  const x = eventFields(a);
  const y = eventFields(b);
  const out: FieldDifference[] = [];
  for (const field of new Set([...Object.keys(x), ...Object.keys(y)])) {
    const p = x[field] ?? null;
    const q = y[field] ?? null;
    if (p !== q || !(field in x) !== !(field in y)) out.push({ field, a: field in x ? p : null, b: field in y ? q : null });
  }
  return out;
}

/** Union of two range lists, sorted and merged (e.g. what two engines wrote). */
export function unionRanges(x: readonly PhysicalRange[], y: readonly PhysicalRange[]): PhysicalRange[] {
  const all = [...x, ...y].sort((p, q) => (p.start < q.start ? -1 : p.start > q.start ? 1 : 0));
  const out: PhysicalRange[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) out[out.length - 1] = { start: last.start, end: r.end > last.end ? r.end : last.end };
    else out.push(r);
  }
  return out;
}
