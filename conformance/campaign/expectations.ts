// Known deviations a campaign expects (`--expect-deviation RULE-ID`, `--expectations FILE`): a
// divergence grouped under one of these rules is reported as expected, not as a failure, and the
// report says whether each was seen. The file is external input, validated here:
//
//   { "format": "ringspec-expectations/1",
//     "expectations": [ { "rule": "SEG-LIMIT-COMPAT", "reason": "spec/ does not model ..." } ] }
import { z } from "zod";
import { ruleById } from "../../spec/index.ts";
import { UNATTRIBUTED } from "./attribution.ts";

export const ExpectationsJson = z.strictObject({
  format: z.literal("ringspec-expectations/1"),
  expectations: z.array(z.strictObject({ rule: z.string().min(1).max(100), reason: z.string().max(2000) })).max(1000),
});

export interface Expectation {
  readonly rule: string;
  readonly reason: string;
}

/** null when `rule` is a rule the spec knows (or "unattributed"), else the problem. */
export function unknownRule(rule: string): string | null {
  return rule === UNATTRIBUTED || ruleById(rule) !== undefined ? null : `${JSON.stringify(rule)} is not a rule ID of the spec (see ringspec rules --list)`;
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
  r.data.expectations.forEach((e, i) => {
    const problem = unknownRule(e.rule);
    if (problem !== null) throw new Error(`${file}: $.expectations[${i}].rule: ${problem}`);
  });
  return r.data.expectations;
}
