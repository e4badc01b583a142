// The spec's machine: the format's ArchState with persistent physical memory. Immutable: every
// transition returns a new Machine and leaves its input untouched.
import type { ArchState } from "../format/state.ts";
import { PhysicalMemory } from "./physical-memory.ts";

export interface Machine extends Omit<ArchState, "memory"> {
  readonly memory: PhysicalMemory;
}

export function machineFromState(s: ArchState): Machine {
  return { ...s, memory: PhysicalMemory.fromPages(s.memory) };
}

export function stateFromMachine(m: Machine): ArchState {
  return { ...m, memory: m.memory.pages() };
}
