// The engines of a campaign, by name, as sources that open a fresh engine (after a crash the
// campaign opens another). `spec` records the rules its steps exercise into the campaign's rule
// coverage; `process` starts a command that speaks the JSON-lines protocol; the emulators come
// from the registry.
import { asAsync } from "../../contract/async.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { engineEntry, ALL_ENGINE_NAMES, ENGINE_NAMES } from "../../engines/registry.ts";
import type { EmulatorOptions } from "../../engines/emulators.ts";
import { ProcessEngine } from "../../engines/process/engine.ts";
import { servedCapabilities } from "../../engines/process/server.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { PLANTED_BUG_NAMES, PlantedEngine, plantedBug, plantedEngineName } from "../planted.ts";
import type { EngineSource } from "./run.ts";

// The registry names every engine, `process` included.
export const CAMPAIGN_ENGINE_NAMES: readonly string[] = ALL_ENGINE_NAMES;

/** How to reach an engine (plain data: it crosses to worker threads). */
export interface EngineChoice {
  readonly name: string;
  /** For `process`: the command line. */
  readonly command?: string;
  /** For `process`: seconds one request may take before the engine counts as hung. */
  readonly requestTimeoutMs?: number;
  readonly emulator?: EmulatorOptions;
  /** For `spec` and `impl`: the name of a bug planted on top (conformance/planted.ts, `--plant`),
   *  the same broken engine `ringspec serve --plant` serves, in this process. */
  readonly plant?: string;
}

/** Whether an engine is one of this project's two (lockstep compares them exactly). */
export function inProcess(choice: EngineChoice): boolean {
  return ENGINE_NAMES.includes(choice.name);
}

/** A source for `choice`; `coverage` collects the rules a spec engine exercises. */
export function engineSource(choice: EngineChoice, coverage?: Set<string>): EngineSource {
  if (choice.name === "process") {
    if (choice.plant !== undefined) throw new Error(cannotPlant(choice.name));
    const command = choice.command;
    if (command === undefined || command.trim() === "") throw new Error("the process engine needs a command (--cmd)");
    return {
      name: `process (${command})`,
      open: () => ProcessEngine.start({ command, ...(choice.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: choice.requestTimeoutMs }) }),
    };
  }
  const entry = engineEntry(choice.name);
  if (entry === undefined) throw new Error(`no engine called ${JSON.stringify(choice.name)}`);
  const specWithCoverage = choice.name === "spec" && coverage !== undefined ? () => new SpecEngine({ coverage }) : undefined;
  if (choice.plant !== undefined) {
    const create = specWithCoverage ?? entry.create;
    if (create === undefined) throw new Error(cannotPlant(choice.name));
    const bug = plantedBug(choice.plant);
    if (bug === undefined) throw new Error(`plant: expected one of ${PLANTED_BUG_NAMES.join(", ")}, got ${JSON.stringify(choice.plant)}`);
    // What `serve --engine NAME --plant BUG` says of itself in its hello.
    const capabilities = servedCapabilities(plantedEngineName(entry.name, bug), false);
    return { name: capabilities.name, open: async (): Promise<AsyncEngine> => asAsync(new PlantedEngine(create(), bug), capabilities) };
  }
  if (specWithCoverage !== undefined) return { name: "spec", open: async (): Promise<AsyncEngine> => asAsync(specWithCoverage(), entry.capabilities) };
  return { name: entry.name, open: () => entry.open(choice.emulator === undefined ? {} : { emulator: choice.emulator }) };
}

/** Bugs are planted on an engine made in this process (`create`); others plant their own. */
function cannotPlant(name: string): string {
  return `plant: a bug is planted on ${ENGINE_NAMES.join(" or ")} (a process engine plants with \`serve --plant\`), not on ${name}`;
}
