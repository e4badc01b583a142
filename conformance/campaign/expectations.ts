// Known deviations a campaign expects (`--expect-deviation RULE-ID`, `--expectations FILE`): a
// divergence grouped under one of these rules is reported as expected, not as a failure, and the
// report says whether each was seen. The file is external input, validated here:
//
//   { "format": "ringspec-expectations/1",
//     "expectations": [ { "rule": "HLT-06", "reason": "..." },
//                       { "gap": "NAME", "reason": "..." } ] }  (NAME: a known gap of gaps.ts)
import { z } from "zod";
import { ruleById } from "../../spec/index.ts";
import { UNATTRIBUTED } from "./attribution.ts";
import { GAPS, gapByName } from "./gaps.ts";

export const ExpectationsJson = z.strictObject({
  format: z.literal("ringspec-expectations/1"),
  expectations: z
    .array(z.union([z.strictObject({ rule: z.string().min(1).max(100), reason: z.string().max(2000) }), z.strictObject({ gap: z.string().min(1).max(100), reason: z.string().max(2000) })]))
    .max(1000),
});

/** A rule ID or a known gap's name (gaps.ts), with why it is expected. */
export interface Expectation {
  readonly rule: string;
  readonly reason: string;
  readonly gap?: boolean;
}

/** null when `rule` is a rule the spec knows (or "unattributed"), else the problem. */
export function unknownRule(rule: string): string | null {
  if (rule === UNATTRIBUTED || ruleById(rule) !== undefined || gapByName(rule) !== undefined) return null;
  return `${JSON.stringify(rule)} is not a rule ID of the spec (see ringspec rules --list) nor a known gap (${GAPS.map((g) => g.name).join(", ")})`;
}

export function parseExpectations(text: string, file: string): Expectation[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const r = ExpectationsJson.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`)).join("");
    throw new Error(`${file}: $${path}: ${issue.code === "unrecognized_keys" ? `unknown field ${issue.keys[0]}` : issue.message}`);
  }
  return r.data.expectations.map((e, i) => {
    if ("gap" in e) {
      if (gapByName(e.gap) === undefined) throw new Error(`${file}: $.expectations[${i}].gap: no known gap ${JSON.stringify(e.gap)} (${GAPS.map((g) => g.name).join(", ")})`);
      return { rule: e.gap, reason: e.reason, gap: true };
    }
    const problem = unknownRule(e.rule);
    if (problem !== null) throw new Error(`${file}: $.expectations[${i}].rule: ${problem}`);
    return { rule: e.rule, reason: e.reason, gap: gapByName(e.rule) !== undefined };
  });
}
