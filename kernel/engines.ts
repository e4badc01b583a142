// Where kernel/ gets its engines and the state comparison. Interim: until engines/registry.ts and
// contract/compare.ts land (issue 7, `seams`), they come from conformance/; this file is the one
// place to switch.
import type { Engine } from "../contract/engine.ts";
import { ENGINE_FACTORIES } from "../conformance/vector-check.ts";
import { compareStates, describeEvent, unionRanges, type FieldDifference } from "../conformance/compare-state.ts";

export const KERNEL_ENGINE_NAMES = ["spec", "impl"] as const;
export type KernelEngineName = (typeof KERNEL_ENGINE_NAMES)[number];

export function createEngine(name: KernelEngineName): Engine {
  const create = ENGINE_FACTORIES[name];
  if (create === undefined) throw new Error(`no engine called ${name}`);
  return create();
}

export { compareStates, describeEvent, unionRanges, type FieldDifference };
