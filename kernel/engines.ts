// Where kernel/ gets its engines and the state comparison: the engine registry
// (engines/registry.ts) and the project's one comparison (contract/compare.ts), with the exact rule
// (spec and impl share the model choices). The one place to switch.
import type { Engine, EngineEvent, PhysicalRange } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import { bytesToHex, hex } from "../contract/hex.ts";
import { compareStates as compare, unionRanges, type FieldDifference } from "../contract/compare.ts";
import { createEngine as create } from "../engines/registry.ts";
import { traceEvent } from "../trace/record.ts";
import { describeEvent as describe } from "../trace/text.ts";

export const KERNEL_ENGINE_NAMES = ["spec", "impl"] as const;
export type KernelEngineName = (typeof KERNEL_ENGINE_NAMES)[number];

export function createEngine(name: KernelEngineName): Engine {
  return create(name);
}

/** Every field that differs (exact rule); memory only within `ranges`. */
export function compareStates(a: ArchState, b: ArchState, ranges: readonly PhysicalRange[]): FieldDifference[] {
  return [...compare(a, b, { rule: "exact", memory: ranges }).differences];
}

/** The observable parts of a step's event, as one comparable line (an unsupported encoding by its
 *  bytes: each engine words its own reason). */
export function describeEvent(e: EngineEvent): string {
  const text = e.kind === "unsupported" ? `unsupported bytes ${bytesToHex(e.bytes)}` : describe(traceEvent(e));
  return `${text} at ${hex(e.rip)}`;
}

export { unionRanges, type FieldDifference };
