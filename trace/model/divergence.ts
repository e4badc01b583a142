// A divergence between two engines as data: the `ringspec-divergence/1` document that a lockstep
// failure produces today (`ringspec trace FILE --lockstep`) and that `ringspec conform --report`
// can write for each divergence it finds, and the model the divergence page draws from it: both
// states field by field with exactly the differing ones marked, the events, the last steps, the
// replay command. The document is external input: validated here, field by field.
import { z } from "zod";
import { stateFields, type FieldValue } from "../../contract/compare.ts";
import { jsonPath } from "../../contract/load.ts";
import { MemoryRegionJson, StateJson } from "../../contract/schema.ts";
import { stateFromJson } from "../../contract/state.ts";
import { TraceRecordJson } from "../json.ts";
import type { TraceRecord } from "../record.ts";
import type { RuleInfo } from "./types.ts";

export const DIVERGENCE_FORMAT = "ringspec-divergence/1";

const FieldValueJson = z.union([z.string().max(1 << 20), z.number(), z.boolean(), z.null()]);

/** A state as the state format writes it; memory may be left out (the differences carry the
 *  memory words that differ). */
const DivergenceStateJson = StateJson.extend({ memory: z.array(MemoryRegionJson).optional() });

export const DivergenceJson = z.strictObject({
  format: z.literal(DIVERGENCE_FORMAT),
  /** A heading for the page (default: "ENGINE-A and ENGINE-B diverge at step N"). */
  title: z.string().max(500).optional(),
  /** Where it comes from: "lockstep", "conform --report", a campaign name. */
  source: z.string().max(500).optional(),
  /** Engine names: `a` is the reference side. */
  engines: z.strictObject({ a: z.string().min(1).max(100), b: z.string().min(1).max(100) }),
  /** The 1-based step after which the engines first disagreed. */
  step: z.number().int().min(0),
  /** Each engine's event at that step, one line each. */
  events: z.strictObject({ a: z.string().max(4000), b: z.string().max(4000) }),
  /** Both states after that step. */
  states: z.strictObject({ a: DivergenceStateJson, b: DivergenceStateJson }),
  /** The fields that differ (contract/compare.ts names and values; `a` engine A's): exactly these
   *  are highlighted. Event fields (`event.vector`) and memory words (`memory@0x…`) included. */
  differences: z.array(z.strictObject({ field: z.string().min(1).max(200), a: FieldValueJson, b: FieldValueJson })).max(100_000),
  /** Engine A's trace records of the last steps up to and including the diverging one. */
  last_steps: z.array(TraceRecordJson).max(1000).default([]),
  /** The one command that replays the divergence. */
  replay: z.string().max(4000),
  /** The rules engine A exercised at the diverging step, in order (where the engines part ways). */
  rules: z.array(z.string().max(100)).max(10_000).optional(),
  /** Fields an engine cannot observe, not compared (never a pass). */
  not_compared: z.array(z.string().max(200)).max(10_000).optional(),
});

export type DivergenceDocument = z.output<typeof DivergenceJson>;
export type DivergenceDocumentIn = z.input<typeof DivergenceJson>;

export class DivergenceError extends Error {
  override name = "DivergenceError";
}

/** Validates a parsed JSON value; the first bad field is named by its JSON path. */
export function parseDivergence(value: unknown): DivergenceDocument {
  const result = DivergenceJson.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new DivergenceError("invalid divergence document");
  if (issue.code === "unrecognized_keys") throw new DivergenceError(`${jsonPath([...issue.path, issue.keys[0] ?? "?"])}: unknown field`);
  throw new DivergenceError(`${jsonPath(issue.path)}: ${issue.message}`);
}

export interface DivergenceRow {
  readonly group: string;
  readonly field: string;
  readonly a: FieldValue;
  readonly b: FieldValue;
  readonly differs: boolean;
}

export interface DivergenceModel {
  readonly format: typeof DIVERGENCE_FORMAT;
  readonly title: string;
  readonly source?: string;
  readonly engines: { readonly a: string; readonly b: string };
  readonly step: number;
  readonly events: { readonly a: string; readonly b: string };
  /** Every field of both states in the comparison's order (events and memory words that differ
   *  included), grouped; `differs` exactly for the listed differences. */
  readonly rows: readonly DivergenceRow[];
  readonly differences: readonly { readonly field: string; readonly a: FieldValue; readonly b: FieldValue }[];
  readonly lastSteps: readonly TraceRecord[];
  readonly replay: string;
  readonly rulesHit?: readonly string[];
  readonly notCompared?: readonly string[];
  readonly rules: Readonly<Record<string, RuleInfo>>;
}

function groupOf(field: string): string {
  if (field.startsWith("event.")) return "event";
  if (field.startsWith("regs.")) return "registers";
  if (/^sregs\.(cs|ds|es|fs|gs|ss|tr|ldt)\./.test(field)) return `segment ${field.split(".")[1]!.toUpperCase()}`;
  if (/^sregs\.(gdt|idt)\./.test(field)) return "descriptor tables";
  if (field.startsWith("sregs.")) return "control registers";
  if (field.startsWith("msrs.")) return "MSRs";
  if (field.startsWith("cpu.")) return "run-time state";
  if (field.startsWith("memory")) return "memory";
  return "other";
}

/** The page's model of a divergence document. */
export function divergenceModel(doc: DivergenceDocument, catalogue: (rule: string) => RuleInfo | undefined): DivergenceModel {
  const state = (s: DivergenceDocument["states"]["a"]) => stateFromJson({ ...s, memory: s.memory ?? [] });
  const a = stateFields(state(doc.states.a));
  const b = new Map(stateFields(state(doc.states.b)).map((f) => [f.field, f.value]));
  const differing = new Map(doc.differences.map((d) => [d.field, d]));
  const rows: DivergenceRow[] = [];
  for (const d of doc.differences) if (d.field.startsWith("event.")) rows.push({ group: "event", field: d.field, a: d.a, b: d.b, differs: true });
  for (const f of a) {
    const d = differing.get(f.field);
    rows.push({ group: groupOf(f.field), field: f.field, a: d?.a ?? f.value, b: d?.b ?? b.get(f.field) ?? null, differs: d !== undefined });
  }
  const listed = new Set(rows.map((r) => r.field));
  for (const d of doc.differences) if (!listed.has(d.field)) rows.push({ group: groupOf(d.field), field: d.field, a: d.a, b: d.b, differs: true });
  const rules: Record<string, RuleInfo> = {};
  for (const id of doc.rules ?? []) {
    const info = catalogue(id);
    if (info !== undefined) rules[id] = info;
  }
  const lastSteps = doc.last_steps as readonly TraceRecord[];
  for (const st of lastSteps) for (const id of st.rules ?? []) {
    const info = catalogue(id);
    if (info !== undefined) rules[id] = info;
  }
  return {
    format: DIVERGENCE_FORMAT,
    title: doc.title ?? `${doc.engines.a} and ${doc.engines.b} diverge at step ${doc.step}`,
    ...(doc.source === undefined ? {} : { source: doc.source }),
    engines: doc.engines,
    step: doc.step,
    events: doc.events,
    rows,
    differences: doc.differences,
    lastSteps,
    replay: doc.replay,
    ...(doc.rules === undefined ? {} : { rulesHit: dedupeRuns(doc.rules) }),
    ...(doc.not_compared === undefined ? {} : { notCompared: doc.not_compared }),
    rules,
  };
}

function dedupeRuns(rules: readonly string[]): string[] {
  const out: string[] = [];
  for (const r of rules) if (out[out.length - 1] !== r) out.push(r);
  return out;
}

/** The JSON Schema (draft 2020-12) of a ringspec-divergence/1 document (`ringspec schema divergence`). */
export function divergenceJsonSchemaText(): string {
  // The input side: what a producer writes (defaults not yet applied).
  const schema = z.toJSONSchema(DivergenceJson, { target: "draft-2020-12", io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return JSON.stringify({ ...schema, title: "ringspec divergence", description: "A divergence between two engines, drawn by `ringspec trace DOC --html OUT` (trace/model/divergence.ts)" }, null, 2) + "\n";
}
