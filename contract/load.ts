// Reading external files: JSON text → validated vector or state, or a one-line error that names
// the JSON path of the first bad field. This is the one input domain of the engines: every cap
// (contract/limits.ts) and every refusal of a state outside the model (contract/scope.ts) is
// decided here, so spec/ and impl/ are handed exactly the same states.
import { z } from "zod";
import { StateFileJson, VectorJson, type VectorParsed } from "./schema.ts";
import { generatedFor, withCompiledSections } from "./load-sections.ts";
import { GENERATED_SECTIONS } from "./load-sections.generated.ts";
import { PAGE_SIZE, pageSlab, stateFromJson, type ArchState } from "./state.ts";
import { modelScopeViolation } from "./scope.ts";
import type { ProfileName } from "./profile.ts";
import { FormatError } from "./errors.ts";
import { nestingWithin, parseJsonBytes, parseJsonBytesDeferringDepth } from "./json-bytes.ts";
import { MAX_JSON_DEPTH, PAGE_BUDGET } from "./limits.ts";

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
 * same schemas, and a document a compiled parser rejects is parsed again by zod's runtime for its
 * error, so outputs and errors are the same (test/contract/zod-modes.test.ts):
 * - the first document (`ringspec run FILE` loads one): zod's one shared parse loop (`jitless`),
 *   nothing compiled (compiling costs more than it saves on one document);
 * - later documents: the same schema with zod's compiled parser (compileFn's, installed with
 *   withParser as zod's `z.compile` does) at its bulky sections: each object of many plain fields
 *   (a segment, the registers, the MSRs, and their partial forms in `expected`) and each array
 *   (memory); zod's parse loop runs the rest (contract/load-sections.ts). A segment's parser is
 *   called sixteen times a vector, so V8 optimises it within the first vectors. The parsers are
 *   generated ahead (contract/load-sections.generated.ts, checked against compileFn by a test):
 *   generating them in the process took ~6 ms, installing them takes ~3.
 *   Validating the project's 70 vectors in a fresh process (CPU ms, medians of 6):
 *   the parse loop throughout 56, the whole vector compiled into one function 38 (20 of them
 *   generating it), every plain-field object compiled 39, the bulky ones only 33; over the 1,265
 *   bench vectors 361, 258 and 246 (V8 never optimises the one large function).
 * zod is pinned (4.6.7): compileFn is the code generator behind its `z.compile`.
 */
export const FEW_DOCUMENTS = 1;
let documentsValidated = 0;
export type ZodMode = { readonly jitless: true } | { readonly jitless?: undefined };
export const JITLESS: ZodMode = { jitless: true };

/** Each document format and its schema: the one table the loader's per-format choices read. */
export const DOCUMENT_SCHEMAS = {
  "ringspec-vector/1": VectorJson,
  "ringspec-state/1": StateFileJson,
} as const;

const sectionsCompiled = new Map<z.ZodType, z.ZodType>();
/** `schema` (a document schema: VectorJson, StateFileJson) with zod's compiled parsers at its
 *  sections (contract/load-sections.ts: generated ahead, contract/load-sections.generated.ts),
 *  built on first use. */
export function withSectionsCompiled<S extends z.ZodType>(schema: S): S {
  let out = sectionsCompiled.get(schema);
  if (out === undefined) {
    const format = Object.entries(DOCUMENT_SCHEMAS).find(([, document]) => (document as z.ZodType) === schema)?.[0] ?? "";
    sectionsCompiled.set(schema, (out = withCompiledSections(schema, generatedFor(GENERATED_SECTIONS, format))));
  }
  return out as S;
}

/** `schema`'s output for `value`, or a FormatError naming the first bad field. */
export function validated<S extends z.ZodType>(schema: S, value: unknown, mode: ZodMode): z.output<S> {
  const result = schema.safeParse(value, mode);
  if (!result.success) throw new FormatError(firstIssue(result.error));
  return result.data;
}

/** The next document (a vector or a state file), validated the way its place in the process
 *  calls for. */
function validatedDocument<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return validated(++documentsValidated <= FEW_DOCUMENTS ? schema : withSectionsCompiled(schema), value, JITLESS);
}

/** JSON text or its UTF-8 bytes → a value (contract/json-bytes.ts: capped, no whole-text string). */
export function parseJsonDocument(text: string | Uint8Array): unknown {
  return parseJsonBytes(typeof text === "string" ? ENCODER.encode(text) : text);
}

/** Refuses memory entries that together span more pages than the page budget, before a page is
 *  allocated for them. Addresses as Numbers: the schema has held every entry below 2^MAXPHYADDR
 *  (46 bits), well within a Number's exact integers (BigInt arithmetic here was ~2% of loading
 *  the 1,265 bench vectors). */
function checkPageBudget(regions: readonly { gpa: string; bytes: string }[], where: string): void {
  // The pages each entry spans, added up, bound the distinct pages from above: within the budget
  // (every vector), no set of pages is needed.
  let spanned = 0;
  for (const r of regions) {
    const length = r.bytes.length >> 1;
    if (length === 0) continue;
    const gpa = Number(r.gpa);
    spanned += Math.floor((gpa + length - 1) / PAGE_SIZE) - Math.floor(gpa / PAGE_SIZE) + 1;
  }
  if (spanned <= PAGE_BUDGET) return;
  const pages = new Set<number>();
  for (const r of regions) {
    const length = r.bytes.length >> 1;
    if (length === 0) continue;
    const gpa = Number(r.gpa);
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + length - 1) / PAGE_SIZE);
    for (let p = first; p <= last; p++) {
      pages.add(p);
      if (pages.size > PAGE_BUDGET) {
        throw new FormatError(`${where}.memory: more than ${PAGE_BUDGET.toLocaleString("en-US")} pages (the page budget, ${PAGE_BUDGET / 256} MiB)`);
      }
    }
  }
}

/** The pages of every state this process loads, carved one after another out of 1 MiB buffers
 *  (contract/state.ts pageSlab): a `vectors check` holds every vector's state until it has run
 *  them, so their pages are allocated together. */
const loadedPages = pageSlab(1024 * 1024);

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
  if (!sameHex(j.msrs.FS_BASE, j.sregs.fs.base)) throw new FormatError(`${where}.msrs.FS_BASE: differs from ${where}.sregs.fs.base`);
  if (!sameHex(j.msrs.GS_BASE, j.sregs.gs.base)) throw new FormatError(`${where}.msrs.GS_BASE: differs from ${where}.sregs.gs.base`);
}

/** Two validated hex fields hold the same value: the same text (as writers write them), or else
 *  the same number. */
const sameHex = (a: string, b: string): boolean => a === b || BigInt(a) === BigInt(b);

function checkScope(state: ArchState, where: string) {
  const violation = modelScopeViolation(state);
  if (violation !== null) throw new FormatError(`${where}: not covered by the model: ${violation}`);
}

/** Parses a `ringspec-vector/1` document. Throws FormatError with a one-line message. */
export function parseVector(value: unknown): LoadedVector {
  const { initial, ...vector } = validatedDocument(VectorJson, value);
  checkBases(initial, "initial");
  checkPageBudget(initial.memory, "initial");
  const base = stateFromJson(initial, loadedPages);
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
  const file = validatedDocument(StateFileJson, value);
  checkBases(file, "$");
  checkPageBudget(file.memory, "$");
  const state = stateFromJson(file, loadedPages);
  checkScope(state, "$");
  return { state, profile: file.profile };
}

export type LoadedFile = ({ kind: "vector" } & LoadedVector) | ({ kind: "state" } & LoadedStateFile);

/** A step of an UnwalkedPath: an object's key, or every item of an array. */
const EVERY_ITEM = Symbol("every item");
type UnwalkedPath = readonly (string | typeof EVERY_ITEM)[];
/** A part of a document zod may not look at: the value at `path`, or, where `known` is given (an
 *  object whose unknown keys zod passes over), the values of that object's other keys. */
interface Unwalked {
  readonly path: UnwalkedPath;
  readonly known?: ReadonlySet<string>;
}
type SchemaDef = { type: string; shape?: Record<string, z.ZodType>; catchall?: z.ZodType; innerType?: z.ZodType; element?: z.ZodType };

/**
 * Where in a document `schema` accepts there may be values zod did not look at: the values of
 * unknown keys of an object that passes over them (a non-strict z.object, such as a vector's
 * `provenance`), and any part of a kind not known here to be walked whole. Everything else of an accepted document has
 * the schema's shape, so it is no deeper than the schema (checked below the depth cap). A path
 * to such a part names keys, and EVERY_ITEM for an array's items.
 */
function unwalkedParts(schema: z.ZodType): Unwalked[] {
  const out: Unwalked[] = [];
  const visit = (s: z.ZodType, path: UnwalkedPath): void => {
    if (path.length >= MAX_JSON_DEPTH) throw new Error("a document schema as deep as the JSON depth cap");
    const def = s._zod.def as SchemaDef;
    switch (def.type) {
      case "object": {
        const catchall = def.catchall === undefined ? "strip" : (def.catchall._zod.def as SchemaDef).type;
        if (catchall === "strip" || catchall === "unknown" || catchall === "any") out.push({ path, known: new Set(Object.keys(def.shape ?? {})) });
        else if (catchall !== "never") return void out.push({ path });
        for (const [key, child] of Object.entries(def.shape ?? {})) visit(child, [...path, key]);
        return;
      }
      case "array":
        return visit(def.element!, [...path, EVERY_ITEM]);
      case "optional": case "nullable": case "default": case "prefault":
        return visit(def.innerType!, path);
      case "string": case "number": case "boolean": case "literal": case "enum": case "null":
        return; // a leaf: accepts no container
      default:
        out.push({ path });
    }
  };
  visit(schema, []);
  return out;
}

/** Whether the part `at` (from `path` on) below `value` (a value at nesting level `level`) is
 *  within the depth cap. */
function unwalkedWithin(value: unknown, at: Unwalked, path: UnwalkedPath, level: number): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (path.length === 0) {
    if (at.known === undefined) return nestingWithin(value, level);
    for (const key in value) if (!at.known.has(key) && !nestingWithin((value as Record<string, unknown>)[key], level + 1)) return false;
    return true;
  }
  const [step, ...rest] = path;
  if (step === EVERY_ITEM) return !Array.isArray(value) || value.every((item) => unwalkedWithin(item, at, rest, level + 1));
  return !Object.hasOwn(value, step!) || unwalkedWithin((value as Record<string, unknown>)[step!], at, rest, level + 1);
}

const unwalkedByFormat = new Map<string, Unwalked[]>();
/** The unwalked parts of a document of `format` (a known format), computed on first use. */
function unwalkedOf(format: string): Unwalked[] {
  let parts = unwalkedByFormat.get(format);
  if (parts === undefined) unwalkedByFormat.set(format, (parts = unwalkedParts(DOCUMENT_SCHEMAS[format as keyof typeof DOCUMENT_SCHEMAS])));
  return parts;
}

const FORMATS: readonly unknown[] = Object.keys(DOCUMENT_SCHEMAS);

/** A vector or a state file, from its parsed JSON value. */
function documentFrom(value: unknown): LoadedFile {
  const format = typeof value === "object" && value !== null ? (value as { format?: unknown }).format : undefined;
  if (format === "ringspec-vector/1") return { kind: "vector", ...parseVector(value) };
  if (format === "ringspec-state/1") return { kind: "state", ...parseStateFile(value) };
  throw new FormatError(`format: expected "ringspec-vector/1" or "ringspec-state/1"`);
}

/**
 * A vector or a state file (JSON text or its UTF-8 bytes), told apart by its `format` field. The
 * JSON depth cap is decided after validation (contract/json-bytes.ts parseJsonBytesDeferringDepth)
 * with the same outcome as before it: the parts zod does not look at are walked before the
 * document is used, and a refused document is walked whole, so one nested too deep is refused
 * for that first, with the JSON reader's line.
 */
export function parseDocument(text: string | Uint8Array): LoadedFile {
  const bytes = typeof text === "string" ? ENCODER.encode(text) : text;
  const { value, depthChecked } = parseJsonBytesDeferringDepth(bytes);
  if (depthChecked) return documentFrom(value);
  const format = (value as { format?: unknown }).format;
  if (FORMATS.includes(format) && !unwalkedOf(format as string).every((part) => unwalkedWithin(value, part, part.path, 1))) refuseTooDeep(bytes);
  try {
    return documentFrom(value);
  } catch (e) {
    if (!nestingWithin(value)) refuseTooDeep(bytes);
    throw e;
  }
}

/** Throws the JSON reader's error for a document nested more than the depth cap allows. */
function refuseTooDeep(bytes: Uint8Array): never {
  parseJsonBytes(bytes);
  throw new Error("internal: a document the depth walk refused was read within the caps");
}
