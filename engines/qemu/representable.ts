// Which states the QEMU engine can install exactly. A state outside this is refused for that case
// with the reason (never run approximately).
import type { ArchState } from "../../contract/state.ts";
import { DEFAULT_CPU } from "../../contract/state.ts";

/** The legacy VGA window and the BIOS area: not RAM on QEMU's pc machine (the image lives there). */
export const NOT_RAM = { start: 0xa0000, end: 0x100000 } as const;
/** Guest RAM is sized to the case, in steps of 32 MiB, up to this (below the PCI hole). */
export const MAX_RAM = 2 ** 31;
export const MIN_RAM = 32 * 2 ** 20;

/** RAM size for a state: 32 MiB, or more when its memory reaches higher. */
export function ramSizeFor(state: ArchState): number {
  let top = 0;
  for (const page of state.memory.keys()) top = Math.max(top, (page + 1) * 4096);
  const step = 32 * 2 ** 20;
  return Math.max(MIN_RAM, Math.ceil(top / step) * step);
}

/** null if QEMU can be given exactly this state, else the reason. */
export function qemuCannotInstall(state: ArchState): string | null {
  const cpu = state.cpu;
  if (cpu.shadow !== DEFAULT_CPU.shadow) return `cpu.shadow = ${cpu.shadow}: RSM cannot restore an interrupt shadow`;
  if (cpu.halted) return "cpu.halted: RSM cannot restore a halted CPU";
  if (cpu.shutdown) return "cpu.shutdown: a shut-down CPU cannot be installed";
  if (cpu.pendingDebugTrap) return "cpu.pending_debug_trap: QEMU has no pending single-step trap between instructions";
  // QEMU derives CPL from SS.DPL (and the save area carries no CPL of its own).
  const cpl = state.cs.selector & 3;
  if (state.ss.dpl !== cpl) return `sregs.ss.dpl = ${state.ss.dpl} differs from CPL ${cpl}: QEMU takes CPL from SS.DPL`;
  for (const [name, value] of [["cr0", state.cr0], ["cr4", state.cr4], ["rflags", state.rflags]] as const) {
    if (value >> 32n !== 0n) return `${name} has bits above 31: the save area holds 32 bits`;
  }
  for (const page of state.memory.keys()) {
    const address = page * 4096;
    if (address >= NOT_RAM.start && address < NOT_RAM.end && state.memory.get(page)!.some((b) => b !== 0)) {
      return `memory at 0x${address.toString(16)}: 0xa0000–0xfffff is not RAM on QEMU's pc machine`;
    }
    if (address >= MAX_RAM) return `memory at 0x${address.toString(16)}: above the ${MAX_RAM / 2 ** 30} GiB the engine gives QEMU`;
  }
  return null;
}
