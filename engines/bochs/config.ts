// The Bochs configuration file for one run (emulator-harnesses.md): the generated ROM at the top
// of the 4 GiB space, no BIOS, no disks, the VGA BIOS Debian's vgabios package provides (Bochs
// loads one even with no display), the rfb display (Debian's build has no "nogui"; `timeout=0`
// makes it not wait for a viewer), simulated time not tied to the host clock, a per-run log with
// the CPU's debug messages (the engine reads delivered events from them).

export interface BochsConfig {
  readonly rom: string;
  readonly romAddress: bigint;
  readonly megs: number;
  readonly cpuModel: string;
  readonly log: string;
  readonly vgaRom: string;
  /** The CPU's debug messages in the log (default true; the engine's steps read events from them). */
  readonly cpuDebugLog?: boolean;
}

/** Bochs CPU model per vendor profile. */
export const BOCHS_CPU_MODELS = { intel: "corei7_icelake_u", amd: "ryzen" } as const;

export const DEFAULT_VGA_ROM = "/usr/share/vgabios/vgabios.bin";

function quoted(path: string): string {
  if (/[",\n]/.test(path)) throw new Error(`bochs: a path with a quote, comma or newline cannot go in a configuration file: ${path}`);
  return path;
}

export function bochsConfig(c: BochsConfig): string {
  return [
    `romimage: file=${quoted(c.rom)}, address=0x${c.romAddress.toString(16)}`,
    `vgaromimage: file=${quoted(c.vgaRom)}`,
    `megs: ${c.megs}`,
    // reset_on_triple_fault=1: Bochs 2.7 has no shutdown state (with 0 it panics and exits); it
    // logs the registers and resets the CPU, memory kept, and the engine stops at the reset vector.
    `cpu: model=${c.cpuModel}, count=1, ips=50000000, reset_on_triple_fault=1, ignore_bad_msrs=0`,
    `display_library: rfb, options="timeout=0"`,
    `clock: sync=none, time0=1`,
    `log: ${quoted(c.log)}`,
    c.cpuDebugLog === false ? `debug: action=ignore` : `debug: action=ignore, cpu0=report`,
    `info: action=report`,
    `error: action=report`,
    `panic: action=report`,
    `sound: driver=dummy`,
    `speaker: enabled=0`,
    `boot: floppy`,
    `floppy_bootsig_check: disabled=1`,
    "",
  ].join("\n");
}
