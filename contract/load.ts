// Reading external files: JSON text → validated vector or state, or a one-line error that names
// the JSON path of the first bad field. This is the one input domain of the engines: every cap
// (contract/limits.ts) and every refusal of a state outside the model (contract/scope.ts) is
// decided here, so spec/ and impl/ are handed exactly the same states.
import { z } from "zod";
import { compileFn } from "zod/v4/core";
import { StateFileJson, VectorJson, type VectorParsed } from "./schema.ts";
import { PAGE_SIZE, stateFromJson, type ArchState } from "./state.ts";
import { modelScopeViolation } from "./scope.ts";
import type { ProfileName } from "./profile.ts";
import { FormatError } from "./errors.ts";
import { parseJsonBytes } from "./json-bytes.ts";
import { PAGE_BUDGET } from "./limits.ts";

export { FormatError } from "./errors.ts";

/** `initial.regs.rax`, `initial.memory[3].gpa`; the document root is `$`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  return out === "" ? "$" : out;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  // Unknown keys are reported on the parent object; name the key itself.
  if (issue.code === "unrecognized_keys") return `${jsonPath([...issue.path, issue.keys[0] ?? "?"])}: unknown field`;
  return `${jsonPath(issue.path)}: ${issue.message}`;
}

const ENCODER = new TextEncoder();

/**
 * How zod runs, by how many documents this process has validated. Each way is zod's own, from the
 * same schemas, and a document the fast ways reject is parsed again by zod's runtime for its
 * error, so outputs and errors are the same (test/contract/zod-modes.test.ts). CPU figures from
 * loading the project's 70 vectors in a fresh process:
 * - the first document (`ringspec run FILE` loads one): zod's one shared parse loop (`jitless`),
 *   ~6 ms, against ~20 ms when zod first compiles its per-object parsers (21 for a vector, 130 kB
 *   of source) and ~30 ms to compile the vector schema ahead;
 * - vectors up to MANY_DOCUMENTS: the vector schema compiled ahead by zod into one function
 *   (compileFn, ~30 ms once), about 0.2 ms a vector from the start where the parse loop takes
 *   ~1 ms until warm: the 70 load in ~76 ms instead of ~90 (medians of 8; compiling after 8
 *   documents instead of 1 lost the gain: the parse loop's first vectors are its dearest);
 * - beyond: zod's per-object parsers, the fastest once warm. (The one-function parser is too large
 *   for V8 to optimise: over 1,265 vectors, compiled throughout, the first pass cost a third more.)
 * `compileFn` is the code generator behind zod's `z.compile` without the assert-only twin that
 * `z.compile` also builds (~15 ms more), which nothing here uses; zod is pinned (4.6.7).
 */
export const FEW_DOCUMENTS = 1;
export const MANY_DOCUMENTS = 256;
let documentsValidated = 0;
export type ZodMode = { readonly jitless: true } | { readonly jitless?: undefined };
export const JITLESS: ZodMode = { jitless: true };
export const GENERATED: ZodMode = {};

let compiledVector: typeof VectorJson | undefined;
/** VectorJson with zod's compiled parser in front of it. */
export function compiledVectorJson(): typeof VectorJson {
  return (compiledVector ??= z.withParser(VectorJson, compileFn(VectorJson)));
}

/** `schema`'s output for `value`, or a FormatError naming the first bad field. */
export function validated<S extends z.ZodType>(schema: S, value: unknown, mode: ZodMode): z.output<S> {
  const result = schema.safeParse(value, mode);
  if (!result.success) throw new FormatError(firstIssue(result.error));
  return result.data;
}

/** The next document as a vector, validated the way its place in the process calls for. */
function validatedVector(value: unknown): VectorParsed {
  const n = ++documentsValidated;
  if (n <= FEW_DOCUMENTS) return validated(VectorJson, value, JITLESS);
  if (n > MANY_DOCUMENTS) return validated(VectorJson, value, GENERATED);
  return validated(compiledVectorJson(), value, JITLESS);
}

/** The next document as a state file (one a process, as a rule: no compiled parser). */
function validatedStateFile(value: unknown): z.output<typeof StateFileJson> {
  return validated(StateFileJson, value, ++documentsValidated <= MANY_DOCUMENTS ? JITLESS : GENERATED);
}

/** JSON text or its UTF-8 bytes → a value (contract/json-bytes.ts: capped, no whole-text string). */
export function parseJsonDocument(text: string | Uint8Array): unknown {
  return parseJsonBytes(typeof text === "string" ? ENCODER.encode(text) : text);
}

/** Refuses memory entries that together span more pages than the page budget, before a page is
 *  allocated for them. */
function checkPageBudget(regions: readonly { gpa: string; bytes: string }[], where: string): void {
  const pages = new Set<number>();
  for (const r of regions) {
    const length = r.bytes.length >> 1;
    if (length === 0) continue;
    const gpa = BigInt(r.gpa);
    const first = Number(gpa / BigInt(PAGE_SIZE));
    const last = Number((gpa + BigInt(length - 1)) / BigInt(PAGE_SIZE));
    for (let p = first; p <= last; p++) {
      pages.add(p);
      if (pages.size > PAGE_BUDGET) {
        throw new FormatError(`${where}.memory: more than ${PAGE_BUDGET.toLocaleString("en-US")} pages (the page budget, ${PAGE_BUDGET / 256} MiB)`);
      }
    }
  }
}

/** A vector document without its `initial` section: the loaded state is that section, converted
 *  (so a `vectors check` of many vectors holds their pages, not their hex digits as well). */
export type VectorDocument = Omit<VectorParsed, "initial">;

export interface LoadedVector {
  readonly vector: VectorDocument;
  readonly state: ArchState;
  readonly profile: ProfileName;
}

export interface LoadedStateFile {
  readonly state: ArchState;
  readonly profile: ProfileName | undefined;
}

/** The MSR and the segment base are one register: their values must agree (the text may differ,
 *  "0x10" and "0x0010"). */
function checkBases(j: { sregs: { fs: { base: string }; gs: { base: string } }; msrs: { FS_BASE: string; GS_BASE: string } }, where: string) {
  if (BigInt(j.msrs.FS_BASE) !== BigInt(j.sregs.fs.base)) throw new FormatError(`${where}.msrs.FS_BASE: differs from ${where}.sregs.fs.base`);
  if (BigInt(j.msrs.GS_BASE) !== BigInt(j.sregs.gs.base)) throw new FormatError(`${where}.msrs.GS_BASE: differs from ${where}.sregs.gs.base`);
}

function checkScope(state: ArchState, where: string) {
  const violation = modelScopeViolation(state);
  if (violation !== null) throw new FormatError(`${where}: not covered by the model: ${violation}`);
}

/** Parses a `ringspec-vector/1` document. Throws FormatError with a one-line message. */
export function parseVector(value: unknown): LoadedVector {
  const { initial, ...vector } = validatedVector(value);
  checkBases(initial, "initial");
  checkPageBudget(initial.memory, "initial");
  const base = stateFromJson(initial);
  const inject = vector.inject;
  // vector README, "Running a vector" 2: injected events are pending from the start.
  const state: ArchState =
    inject === undefined
      ? base
      : {
          ...base,
          cpu: {
            ...base.cpu,
            pendingIrq: inject.irq ?? base.cpu.pendingIrq,
            pendingNmi: inject.nmi === true || base.cpu.pendingNmi,
          },
        };
  checkScope(state, "initial");
  return { vector, state, profile: vector.profile ?? "intel" };
}

/** Parses a `ringspec-state/1` document (a saved state). */
export function parseStateFile(value: unknown): LoadedStateFile {
  const file = validatedStateFile(value);
  checkBases(file, "$");
  checkPageBudget(file.memory, "$");
  const state = stateFromJson(file);
  checkScope(state, "$");
  return { state, profile: file.profile };
}

export type LoadedFile = ({ kind: "vector" } & LoadedVector) | ({ kind: "state" } & LoadedStateFile);

/** A vector or a state file (JSON text or its UTF-8 bytes), told apart by its `format` field. */
export function parseDocument(text: string | Uint8Array): LoadedFile {
  const value = parseJsonDocument(text);
  const format = typeof value === "object" && value !== null ? (value as { format?: unknown }).format : undefined;
  if (format === "ringspec-vector/1") return { kind: "vector", ...parseVector(value) };
  if (format === "ringspec-state/1") return { kind: "state", ...parseStateFile(value) };
  throw new FormatError(`format: expected "ringspec-vector/1" or "ringspec-state/1"`);
}
