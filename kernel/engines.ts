// Where kernel/ gets its engines and the state comparison: the engine registry
// (engines/registry.ts) and the project's one comparison (contract/compare.ts), with the exact rule
// (spec and impl share the model choices). The one place to switch. A kernel engine has the devices
// of docs/devices.md: its own where its capabilities say so, else the outside model around it.
import type { Engine, EngineEvent, PhysicalRange } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import { bytesToHex, hex } from "../contract/hex.ts";
import { compareStates as compare, unionRanges, type FieldDifference } from "../contract/compare.ts";
import { createEngine as create, engineEntry, type EngineOptions } from "../engines/registry.ts";
import { ExternalDevices } from "./devices/external.ts";
import { traceEvent } from "../trace/record.ts";
import { describeEvent as describe } from "../trace/text.ts";

export const KERNEL_ENGINE_NAMES = ["spec", "impl"] as const;
export type KernelEngineName = (typeof KERNEL_ENGINE_NAMES)[number];

/** An engine with the devices: `takeConsole` is always there. */
export type KernelEngine = Engine & { takeConsole(): Uint8Array };

/** Whether the engine implements the devices itself (EngineCapabilities.devices). */
export function hasOwnDevices(name: KernelEngineName): boolean {
  return engineEntry(name)?.capabilities.devices === true;
}

/** The engine, with its own devices or with kernel/devices' outside model around it. */
export function createEngine(name: KernelEngineName, options: EngineOptions = {}): KernelEngine {
  const engine = create(name, options);
  if (hasOwnDevices(name) && engine.takeConsole !== undefined) return engine as KernelEngine;
  return new ExternalDevices(engine);
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
