// Building trace models in tests: a vector or a guest run on an engine through the runner, every
// step handed to the model builder (as `ringspec trace` does).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDocument } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import { createEngine } from "../../engines/registry.ts";
import { runEngine } from "../../engines/runner.ts";
import { ruleCatalogue } from "../../cli/trace.ts";
import { TraceModelBuilder, type TraceModelOptions } from "../../trace/model/build.ts";
import type { TraceModel, Transition } from "../../trace/model/types.ts";

export const VECTORS = join(import.meta.dirname, "../../conformance/vectors");

export function vectorState(name: string): ArchState {
  return parseDocument(readFileSync(join(VECTORS, `${name}.json`), "utf8")).state;
}

export function modelOf(
  state: ArchState,
  options: { engine?: "spec" | "impl"; steps: number; symbols?: ReadonlyMap<string, bigint> } & Partial<TraceModelOptions>,
): TraceModel {
  const engineName = options.engine ?? "spec";
  const engine = createEngine(engineName, { rules: true });
  engine.load(state, "intel");
  const builder = new TraceModelBuilder(state, {
    file: "test", engine: engineName, profile: "intel", command: "test",
    engineReportsRules: engineName === "spec", catalogue: ruleCatalogue,
    ...options,
  });
  const r = runEngine(engine, { maxSteps: options.steps, timeoutMs: 30_000, onStep: (v) => void builder.add(v) });
  return builder.finish({ reason: r.stop.reason, steps: r.stop.steps, at: "test" });
}

/** The sequence of a transition as `RULE status` strings, part by part. */
export function ruleLines(t: Transition): string[][] {
  return t.sequence.map((p) => p.lines.map((l) => `${l.rule ?? "-"} ${l.status}`));
}

export function lineOf(t: Transition, rule: string): string {
  const found = t.sequence.flatMap((p) => p.lines).filter((l) => l.rule === rule);
  if (found.length === 0) throw new Error(`no line for ${rule} in ${t.title}`);
  return found.map((l) => l.text).join(" | ");
}
