// Bochs's save/restore parameter tree as its debugger prints it (`show "cpu0.MSR"`):
//
//   show param name: <cpu0.MSR>
//   MSR = {
//     apicbase = 0xfee00900
//     star = 0x0
//     ...
//   }
//
// Parsed into nested objects of strings, then read through zod schemas that say which fields the
// engine needs and what form they have (a changed Bochs output is a clear protocol error).
import { z } from "zod";
import { EngineError } from "../host/errors.ts";

export type ParamNode = string | { readonly [name: string]: ParamNode };

const OPEN = /^([A-Za-z_][A-Za-z0-9_]*) = \{$/;
const VALUE = /^([A-Za-z_][A-Za-z0-9_]*) = (.*)$/;

/** Parses one `show "..."` output. Returns the named node (an object for a group). */
export function parseParamDump(text: string): { readonly path: string; readonly value: ParamNode } {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const header = /^show param name: <([^>]+)>$/.exec(lines[0] ?? "");
  if (header === null) throw new EngineError("protocol", `bochs: unexpected show output: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`);
  const path = header[1]!;
  let i = 1;
  const parseGroup = (): Record<string, ParamNode> => {
    const out: Record<string, ParamNode> = {};
    for (; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === "}") return out;
      let m = OPEN.exec(line);
      if (m !== null) {
        i++;
        out[m[1]!] = parseGroup();
        continue;
      }
      m = VALUE.exec(line);
      if (m !== null) {
        out[m[1]!] = m[2]!;
        continue;
      }
      throw new EngineError("protocol", `bochs: unexpected line in ${path}: ${JSON.stringify(line.slice(0, 80))}`);
    }
    throw new EngineError("protocol", `bochs: ${path}: group not closed`);
  };
  const first = lines[1] ?? "";
  const open = OPEN.exec(first);
  if (open !== null) {
    i = 2;
    const value = parseGroup();
    return { path, value };
  }
  const single = VALUE.exec(first);
  if (single === null) throw new EngineError("protocol", `bochs: unexpected value line for ${path}: ${JSON.stringify(first.slice(0, 80))}`);
  return { path, value: single[2]! };
}

/** "0x1f" / "31" → bigint; "true"/"false" → 1n/0n. */
export const ParamInt = z.string().transform((s, ctx) => {
  if (s === "true") return 1n;
  if (s === "false") return 0n;
  if (/^0x[0-9a-fA-F]+$/.test(s) || /^[0-9]+$/.test(s)) return BigInt(s);
  if (/^-[0-9]+$/.test(s)) return BigInt(s);
  ctx.addIssue({ code: "custom", message: `expected a number, got ${JSON.stringify(s.slice(0, 40))}` });
  return z.NEVER;
});

export const ParamSegment = z.object({
  selector: ParamInt,
  valid: ParamInt,
  p: ParamInt,
  dpl: ParamInt,
  segment: ParamInt,
  type: ParamInt,
  base: ParamInt,
  limit_scaled: ParamInt,
  granularity: ParamInt,
  d_b: ParamInt,
  l: ParamInt.optional(),
  avl: ParamInt,
});
export type ParamSegment = z.output<typeof ParamSegment>;

export const ParamTable = z.object({ base: ParamInt, limit: ParamInt });

/** Reads a parsed node with a schema; a mismatch names the parameter path. */
export function readParam<T>(node: { path: string; value: ParamNode }, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(node.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EngineError("protocol", `bochs: ${node.path}.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "unexpected form"}`);
  }
  return parsed.data;
}
