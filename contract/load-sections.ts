// zod's compiled parsers at the sections of the document schemas (contract/load.ts): which parts
// of a schema are compiled, and the parsers themselves, generated ahead by zod's own code generator
// (compileFn) into contract/load-sections.generated.ts, so a process does not run the generator
// (~6 of the ~8 ms a fresh process spent compiling the sections, a tenth of its first pass over
// the project's 70 vectors). A section whose generated parser is missing, or whose constants are
// not where the generated file says, is compiled by compileFn as before; the file is checked
// against what compileFn generates now by test/contract/load-sections.test.ts, which also writes
// it again (`npx vitest run test/contract/load-sections.test.ts -u`).
import { z } from "zod";
import { $ZodAsyncError, compileFn, util as zodUtil, version as zodVersion } from "zod/v4/core";

/** The fields of a zod definition that hold child schemas, by the definition's type. */
type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  checks?: readonly { _zod: { def: { pattern?: unknown; fn?: unknown } } }[];
};
const CHILD_FIELDS: Readonly<Record<string, readonly ("innerType" | "element")[]>> = {
  optional: ["innerType"], nullable: ["innerType"], default: ["innerType"], prefault: ["innerType"], array: ["element"],
};

/** A child of a schema: an object's key, or a wrapper's or array's field. */
type Step = string;

/** The children of `schema` with the step to each. */
function childrenOf(schema: z.ZodType): [Step, z.ZodType][] {
  const def = schema._zod.def as Def;
  if (def.type === "object") return Object.entries(def.shape ?? {});
  return (CHILD_FIELDS[def.type] ?? []).map((field): [Step, z.ZodType] => [field, def[field]!]);
}

function childAt(schema: z.ZodType, step: Step): z.ZodType | undefined {
  const def = schema._zod.def as Def;
  if (def.type === "object") return Object.hasOwn(def.shape ?? {}, step) ? def.shape![step] : undefined;
  return (CHILD_FIELDS[def.type] ?? []).includes(step as "innerType") ? def[step as "innerType"] : undefined;
}

/** Objects of at least this many plain fields are compiled; smaller ones (a table register, `cpu`,
 *  the timer) cost more to generate than they save. */
const SECTION_FIELDS = 8;

/** An array, or an object of at least SECTION_FIELDS fields none of which holds an object
 *  (through optional, default and nullable wrappers). */
function isSection(schema: z.ZodType): boolean {
  const def = schema._zod.def as Def;
  if (def.type === "array") return true;
  if (def.type !== "object" || Object.keys(def.shape ?? {}).length < SECTION_FIELDS) return false;
  const holdsObject = (s: z.ZodType): boolean => childrenOf(s).some(([, c]) => (c._zod.def as Def).type === "object" || holdsObject(c));
  return !holdsObject(schema);
}

/** Where a generated parser's constant comes from, below its section's schema (`at`: steps). */
export type ConstantSource =
  | { readonly kind: "invalid" }
  | { readonly kind: "pattern" | "refinement"; readonly at: readonly Step[]; readonly check: number }
  | { readonly kind: "default"; readonly at: readonly Step[] }
  | { readonly kind: "shallowClone" | "codePointLength" | "throwAsync" };

/** One section's parser as compileFn generated it. */
export interface GeneratedSection {
  /** The section's place in its document schema (the first place, for a schema used at several). */
  readonly at: readonly Step[];
  /** The parser's constants: their names in its code, and where each comes from. */
  readonly names: readonly string[];
  readonly constants: readonly ConstantSource[];
  readonly definite: boolean;
  /** The body of `(input) => { ... }`, the constants named INVALID, c0, c1, ... */
  readonly code: string;
}

export interface GeneratedSections {
  /** zod's version the parsers were generated with; another version compiles them afresh. */
  readonly zod: string;
  readonly documents: Readonly<Record<string, readonly GeneratedSection[]>>;
}

const INVALID = Symbol.for("zod.compile.invalid");
const ZOD_VERSION = `${zodVersion.major}.${zodVersion.minor}.${zodVersion.patch}`;
const throwAsync = (): never => {
  throw new $ZodAsyncError();
};

function nodeAt(section: z.ZodType, at: readonly Step[]): z.ZodType | undefined {
  let node: z.ZodType | undefined = section;
  for (const step of at) node = node === undefined ? undefined : childAt(node, step);
  return node;
}

/** The value of a constant, from the schema in this process; undefined when it is not there. */
function constantValue(section: z.ZodType, source: ConstantSource): unknown {
  switch (source.kind) {
    case "invalid":
      return INVALID;
    case "shallowClone":
      return zodUtil.shallowClone;
    case "codePointLength":
      return zodUtil.codePointLength;
    case "throwAsync":
      return throwAsync;
    case "default": {
      const node = nodeAt(section, source.at);
      if (node === undefined || !Object.hasOwn(node._zod.def, "defaultValue")) return undefined;
      return () => (node._zod.def as unknown as { defaultValue: unknown }).defaultValue;
    }
    default: {
      const check = (nodeAt(section, source.at)?._zod.def as Def | undefined)?.checks?.[source.check]?._zod.def;
      const value = source.kind === "pattern" ? check?.pattern : check?.fn;
      return source.kind === "pattern" ? (value instanceof RegExp ? value : undefined) : typeof value === "function" ? value : undefined;
    }
  }
}

type Parser = ((input: unknown) => unknown) & { definite?: boolean };

/** A generated parser made a function again, with its constants from `section`; undefined when a
 *  constant is not where it was. */
function parserFrom(section: z.ZodType, generated: GeneratedSection): Parser | undefined {
  const values = generated.constants.map((c) => constantValue(section, c));
  if (values.some((v) => v === undefined) || generated.names.length !== values.length) return undefined;
  // As compileFn makes it (zod/v4/core compile.js): a factory of the constants.
  const factory = new Function(...generated.names, `return (input) => {\n${generated.code}\n}`) as (...constants: unknown[]) => Parser;
  const parser = factory(...values);
  parser.definite = generated.definite;
  return parser;
}

const key = (at: readonly Step[]): string => JSON.stringify(at);

/**
 * `schema` with each of its sections (isSection) replaced by a copy that runs zod's compiled
 * parser first (installed with withParser, as z.compile installs it): the generated one for that
 * place when `generated` has it, else compileFn's; a partial section with a whole form
 * (wholeFormOf) runs the whole form's parser on an object that has every field (everyFieldFirst).
 * The objects and wrappers above the sections are copies with the new children (zod's clone:
 * same class, same checks, the definition's getters kept); the rest is shared.
 */
export function withCompiledSections<S extends z.ZodType>(
  schema: S,
  generated: readonly GeneratedSection[] = [],
  report?: (at: readonly Step[], source: "generated" | "compileFn" | "whole form first") => void,
): S {
  const byPlace = new Map(generated.map((g) => [key(g.at), g]));
  const sections = sectionsOf(schema);
  const parsers = new Map<z.ZodType, Parser>();
  for (const { at, node } of sections) {
    const ahead = byPlace.get(key(at));
    const parser = ahead === undefined ? undefined : parserFrom(node, ahead);
    report?.(at, parser === undefined ? "compileFn" : "generated");
    parsers.set(node, parser ?? (compileFn(node) as Parser));
  }
  for (const { at, node } of sections) {
    const whole = wholeFormOf(node, parsers.keys());
    if (whole === undefined) continue;
    report?.(at, "whole form first");
    parsers.set(node, everyFieldFirst(node, parsers.get(whole)!, parsers.get(node)!));
  }
  const done = new Map<z.ZodType, z.ZodType>();
  const visit = (node: z.ZodType, at: readonly Step[]): z.ZodType => {
    const known = done.get(node);
    if (known !== undefined) return known;
    let out: z.ZodType = node;
    const parser = parsers.get(node);
    if (parser !== undefined) out = z.withParser(node, parser);
    else {
      const def = node._zod.def as Def;
      const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(def)) as Def;
      let changed = false;
      const swap = (step: Step, child: z.ZodType): z.ZodType => {
        const next = visit(child, [...at, step]);
        if (next !== child) changed = true;
        return next;
      };
      if (def.type === "object") {
        const shape: Record<string, z.ZodType> = {};
        for (const [step, child] of Object.entries(def.shape ?? {})) shape[step] = swap(step, child);
        Object.defineProperty(copy, "shape", { value: shape, enumerable: true });
      } else for (const field of CHILD_FIELDS[def.type] ?? []) Object.defineProperty(copy, field, { value: swap(field, def[field]!), enumerable: true });
      if (changed) out = zodUtil.clone(node, copy as typeof node._zod.def);
    }
    done.set(node, out);
    return out;
  };
  return visit(schema, []) as S;
}

type ObjectDef = Def & { catchall?: z.ZodType };

/** A strict object without checks of its own: what it accepts and makes is its fields'. */
function plainStrictObject(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const def = schema._zod.def as ObjectDef;
  if (def.type !== "object" || (def.checks?.length ?? 0) > 0 || (def.catchall?._zod.def as Def | undefined)?.type !== "never") return undefined;
  return def.shape;
}

/**
 * The whole form of a partial section among `candidates`: for a strict object every field of which
 * is optional (`expected`'s registers, segments, MSRs: `.partial()`), a strict object with the same
 * keys whose field for each is that optional's inner schema itself, or a default or prefault of it
 * (the initial state's forms). On an object that has every field, defined, each field runs the same
 * schema in both (optional, default and prefault only act on an absent value), neither has an
 * unknown key, and neither object checks anything more: the whole form's output and acceptance
 * are the partial's. A partial's parser is called once a vector and its optional fields make it
 * long (compileFn runs each in a closure of its own); the whole form is already called, and V8
 * optimises one parser instead of two.
 */
function wholeFormOf(partial: z.ZodType, candidates: Iterable<z.ZodType>): z.ZodType | undefined {
  const fields = plainStrictObject(partial);
  if (fields === undefined) return undefined;
  const keys = Object.keys(fields);
  const inner = (s: z.ZodType | undefined): z.ZodType | undefined => (s?._zod.def as Def | undefined)?.innerType;
  if (keys.length === 0 || !keys.every((k) => (fields[k]!._zod.def as Def).type === "optional")) return undefined;
  for (const whole of candidates) {
    const wholeFields = whole === partial ? undefined : plainStrictObject(whole);
    if (wholeFields === undefined || Object.keys(wholeFields).length !== keys.length) continue;
    const same = keys.every((k) => {
      const w = wholeFields[k];
      if (w === undefined) return false;
      const type = (w._zod.def as Def).type;
      return w === inner(fields[k]) || ((type === "default" || type === "prefault") && inner(w) === inner(fields[k]));
    });
    if (same) return whole;
  }
  return undefined;
}

/** `partial`'s parser, running `whole`'s instead on an object with every one of `partial`'s fields
 *  defined (one with another key as well is refused by either, being strict, and the runtime
 *  behind the parser words the refusal). */
function everyFieldFirst(partial: z.ZodType, whole: Parser, own: Parser): Parser {
  const keys = Object.keys(plainStrictObject(partial)!);
  return (input) => {
    if (typeof input !== "object" || input === null) return own(input);
    const fields = input as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) if (fields[keys[i]!] === undefined) return own(input);
    return whole(input);
  };
}

/** The generated parsers of the document `format` in `sections`; none when they were generated
 *  with another zod than this process's. */
export function generatedFor(sections: GeneratedSections, format: string): readonly GeneratedSection[] {
  return sections.zod === ZOD_VERSION ? (sections.documents[format] ?? []) : [];
}

/** The sections of `schema`, each once (at its first place), in the order withCompiledSections
 *  reaches them. */
function sectionsOf(schema: z.ZodType): { at: Step[]; node: z.ZodType }[] {
  const out: { at: Step[]; node: z.ZodType }[] = [];
  const seen = new Set<z.ZodType>();
  const visit = (node: z.ZodType, at: Step[]): void => {
    if (seen.has(node)) return;
    seen.add(node);
    if (isSection(node)) out.push({ at, node });
    else for (const [step, child] of childrenOf(node)) visit(child, [...at, step]);
  };
  visit(schema, []);
  return out;
}

/** Every node below `section` (itself included), depth first in field order, with its steps. */
function nodesOf(section: z.ZodType, at: Step[] = []): { at: Step[]; node: z.ZodType }[] {
  return [{ at, node: section }, ...childrenOf(section).flatMap(([step, child]) => nodesOf(child, [...at, step]))];
}

/** Where each of a parser's constants (compileFn's, in order) comes from below `section`. */
function constantSources(section: z.ZodType, values: readonly unknown[]): ConstantSource[] {
  const nodes = nodesOf(section);
  const defaults = nodes.filter(({ node }) => Object.hasOwn(node._zod.def, "defaultValue"));
  let nextDefault = 0;
  return values.map((value): ConstantSource => {
    if (value === INVALID) return { kind: "invalid" };
    if (value === zodUtil.shallowClone) return { kind: "shallowClone" };
    if (value === zodUtil.codePointLength) return { kind: "codePointLength" };
    if (typeof value === "function" && value.name === "throwAsync") return { kind: "throwAsync" };
    for (const { at, node } of nodes) {
      const checks = (node._zod.def as Def).checks ?? [];
      for (let check = 0; check < checks.length; check++) {
        const def = checks[check]!._zod.def;
        if (def.pattern === value) return { kind: "pattern", at, check };
        if (def.fn === value) return { kind: "refinement", at, check };
      }
    }
    // compileFn's getter of a default's value, made as it reaches each default (field order).
    const place = defaults[nextDefault++];
    if (typeof value === "function" && place !== undefined) {
      const expected = JSON.stringify((place.node._zod.def as unknown as { defaultValue: unknown }).defaultValue);
      if (JSON.stringify((value as () => unknown)()) === expected) return { kind: "default", at: place.at };
    }
    throw new Error(`load-sections: a constant of a generated parser not found in its section's schema: ${String(value)}`);
  });
}

/** compileFn's parser for `section`: its code, and the constants it was made with (caught from the
 *  factory compileFn builds with the Function constructor). */
function generate(section: z.ZodType): { code: string; names: string[]; values: unknown[]; definite: boolean } {
  const RealFunction = globalThis.Function;
  let values: unknown[] | undefined;
  let code = "";
  let names: string[] = [];
  const catching = function (...args: string[]) {
    const factory = RealFunction(...args) as (...constants: unknown[]) => unknown;
    code = args.at(-1)!;
    names = args.slice(0, -1);
    return (...constants: unknown[]) => {
      values = constants;
      return factory(...constants);
    };
  } as unknown as FunctionConstructor;
  globalThis.Function = catching;
  let fn: { definite?: boolean };
  try {
    fn = compileFn(section) as { definite?: boolean };
  } finally {
    globalThis.Function = RealFunction;
  }
  const body = /^return \(input\) => \{\n([\s\S]*)\n\}$/.exec(code);
  if (values === undefined || body === null) throw new Error("load-sections: compileFn no longer builds its parser as a factory of its constants");
  return { code: body[1]!, names, values, definite: fn.definite === true };
}

/** The text of contract/load-sections.generated.ts for the document schemas (format → schema). */
export function generatedSectionsText(documents: Readonly<Record<string, z.ZodType>>): string {
  const out: Record<string, GeneratedSection[]> = {};
  for (const [format, schema] of Object.entries(documents)) {
    out[format] = sectionsOf(schema).map(({ at, node }) => {
      const { code, names, values, definite } = generate(node);
      return { at, names, constants: constantSources(node, values), definite, code };
    });
  }
  const data: GeneratedSections = { zod: ZOD_VERSION, documents: out };
  return [
    "// Generated by test/contract/load-sections.test.ts (`npx vitest run test/contract/load-sections.test.ts -u`)",
    "// from contract/schema.ts with zod's compileFn: the compiled parsers of the document schemas'",
    "// sections (contract/load-sections.ts). Do not edit; that test fails while this differs.",
    'import type { GeneratedSections } from "./load-sections.ts";',
    "",
    `export const GENERATED_SECTIONS: GeneratedSections = ${JSON.stringify(data, null, 1)};`,
    "",
  ].join("\n");
}
