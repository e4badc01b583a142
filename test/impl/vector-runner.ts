// Runs a conformance vector on ImplEngine (a given configuration) and lists what differs from
// `expected`, through the project's one runner and one comparison (conformance/vector-check.ts).
import { readFileSync } from "node:fs";
import { parseDocument, type LoadedFile } from "../../contract/load.ts";
import { ImplEngine, type ImplEngineOptions } from "../../impl/engine.ts";
import { checkVectorSync } from "../../conformance/vector-check.ts";

export interface VectorResult {
  readonly name: string;
  readonly exit: string;
  readonly steps: number;
  readonly mismatches: string[];
}

/** Runs one vector file; `opts` selects engine options (e.g. interpretation only). */
export function runVectorFile(path: string, opts: ImplEngineOptions = {}): VectorResult {
  return runVector(parseDocument(readFileSync(path, "utf8")), path, opts);
}

/** Runs one loaded vector (`path` names it in errors): a test running every vector in several
 *  configurations loads each file once. */
export function runVector(doc: LoadedFile, path: string, opts: ImplEngineOptions = {}): VectorResult {
  if (doc.kind !== "vector") throw new Error(`${path}: not a vector`);
  const r = checkVectorSync(doc, new ImplEngine(opts), { timeoutMs: 60_000 });
  const mismatches = r.mismatches.map((m) => `${m.field}: expected ${String(m.expected)}, got ${String(m.got)}`);
  if (r.detail !== undefined) mismatches.unshift(`stopped: ${r.exit}: ${r.detail}`);
  if (r.notCompared.length > 0) mismatches.push(`not compared: ${r.notCompared.join(" ")}`);
  return { name: r.name, exit: r.exit, steps: r.steps ?? 0, mismatches };
}
