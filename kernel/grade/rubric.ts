// The grading rubric (`ringspec-rubric/1`): points per context-switch invariant, per expected
// console line and for the run's result, each test visible to students or not (Gradescope's
// visibility values). Validated with zod; the first bad field is reported with its JSON path.
import { z } from "zod";
import { jsonPath } from "../../contract/load.ts";
import { LoaderError } from "../loader/errors.ts";

const Visibility = z.enum(["visible", "hidden", "after_due_date", "after_published"]);
const Points = z.number().min(0).max(10_000);

const Common = { name: z.string().min(1).max(200).optional(), points: Points, visibility: Visibility.default("visible") };

export const RubricTestJson = z.union([
  /** An invariant of spec/context, (a)–(f): passes when it was checked and never violated. */
  z.strictObject({ invariant: z.enum(["a", "b", "c", "d", "e", "f"]), ...Common }),
  /** A console line: the whole line (match "line", the default) or part of one ("contains"). */
  z.strictObject({ console: z.string().min(1).max(1000), match: z.enum(["line", "contains"]).default("line"), ...Common }),
  /** The run's result: the kernel wrote this value to the exit port. */
  z.strictObject({ exit: z.number().int().min(0).max(0xffffffff), ...Common }),
]);

export const RubricJson = z.strictObject({
  format: z.literal("ringspec-rubric/1"),
  tests: z.array(RubricTestJson).min(1).max(500),
});

export type Rubric = z.output<typeof RubricJson>;
export type RubricTest = Rubric["tests"][number];

/** Without --rubric: one point per invariant and one for exiting with 0, all visible. */
export const DEFAULT_RUBRIC: Rubric = RubricJson.parse({
  format: "ringspec-rubric/1",
  tests: [
    ...["a", "b", "c", "d", "e", "f"].map((invariant) => ({ invariant, points: 1 })),
    { exit: 0, points: 1 },
  ],
});

export function parseRubric(value: unknown): Rubric {
  const result = RubricJson.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new LoaderError("rubric: invalid");
  if (issue.code === "unrecognized_keys") throw new LoaderError(`${jsonPath([...issue.path, issue.keys[0] ?? "?"])}: unknown field`);
  if (issue.code === "invalid_union") throw new LoaderError(`${jsonPath(issue.path)}: a test needs exactly one of "invariant", "console" or "exit", with "points"`);
  throw new LoaderError(`${jsonPath(issue.path)}: ${issue.message}`);
}

export function parseRubricText(text: string): Rubric {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new LoaderError(`not valid JSON (${(e as Error).message})`);
  }
  return parseRubric(value);
}
