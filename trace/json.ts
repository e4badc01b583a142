// Trace records as JSON lines (`ringspec run FILE --trace --json`): one record per line, exactly
// the TraceRecord of trace/record.ts. The zod schema below is the format's definition; its JSON
// Schema is what `ringspec schema trace` prints (committed as trace/trace-record.schema.json).
import { z } from "zod";
import type { TraceRecord } from "./record.ts";

const Hex = z.string().regex(/^0x[0-9a-f]+$/, { message: 'expected "0x" and lowercase hex digits' });
const HexBytes = z.string().regex(/^([0-9a-f]{2})*$/, { message: "expected hex bytes, two digits a byte" });
const FieldValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const TraceEventJson = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("retired") }),
  z.strictObject({
    kind: z.literal("delivered"),
    vector: z.number().int().min(0).max(255),
    error_code: z.number().int().min(0).nullable(),
    source: z.enum(["exception", "software", "external", "nmi"]),
  }),
  z.strictObject({ kind: z.literal("halted") }),
  z.strictObject({ kind: z.literal("shutdown") }),
  z.strictObject({
    kind: z.literal("io"),
    direction: z.enum(["in", "out"]),
    port: z.number().int().min(0).max(0xffff),
    size: z.union([z.literal(1), z.literal(2), z.literal(4)]),
    value: Hex,
  }),
  z.strictObject({ kind: z.literal("unsupported"), bytes: HexBytes, reason: z.string() }),
  z.strictObject({ kind: z.literal("memory-limit"), reason: z.string() }),
  z.strictObject({ kind: z.literal("exited"), value: z.number().int().min(0).max(0xffff_ffff) }),
]);

export const TraceInstructionJson = z.strictObject({
  bytes: HexBytes,
  length: z.number().int().min(0).max(15),
  disassembly: z.string(),
  source: z.enum(["engine", "memory"]),
  bitness: z.union([z.literal(16), z.literal(32), z.literal(64)]),
});

export const TraceChangeJson = z.strictObject({ field: z.string().min(1), before: FieldValue, after: FieldValue });

export const TraceRecordJson = z.strictObject({
  step: z.number().int().min(1),
  rip: Hex,
  linear: Hex,
  instruction: TraceInstructionJson.nullable(),
  event: TraceEventJson,
  changes: z.array(TraceChangeJson),
  rules: z.array(z.string()).optional(),
  faults: z
    .array(
      z.strictObject({
        rule: z.string(),
        vector: z.number().int().min(0).max(255),
        error_code: z.number().int().min(0).nullable(),
        during: z.enum(["instruction", "delivery"]),
      }),
    )
    .optional(),
});

// The schema and the record type describe the same thing: each must be assignable to the other.
type Parsed = z.output<typeof TraceRecordJson>;
const toParsed = (r: TraceRecord): Parsed => ({
  ...r,
  changes: [...r.changes],
  rules: r.rules === undefined ? undefined : [...r.rules],
  faults: r.faults === undefined ? undefined : [...r.faults],
});
const fromParsed = (p: Parsed): TraceRecord => p;
void toParsed;
void fromParsed;

/** One JSON line (no newline). */
export function traceJsonLine(record: TraceRecord): string {
  return JSON.stringify(record);
}

/** The JSON Schema (draft 2020-12) of one trace line. */
export function traceJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(TraceRecordJson, { target: "draft-2020-12", unrepresentable: "throw" }) as Record<string, unknown>;
  return {
    ...schema,
    title: "ringspec trace record",
    description: "One line of `ringspec run FILE --trace --json`: one step of a run (trace/record.ts)",
  };
}

export function traceJsonSchemaText(): string {
  return JSON.stringify(traceJsonSchema(), null, 2) + "\n";
}
