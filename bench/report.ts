// What `ringspec bench` measured, as data: the CLI renders it (cli/bench.ts) as the side-by-side
// table or as JSON. Rates are steps (instructions, vector README) per second; a loop's unit says
// how its figure is shown (MIPS, or round trips per second = steps/s ÷ steps per round trip).

/** The engines a loop runs on: impl and spec always, the emulators on request (--against). */
export type BenchEngineName = "impl" | "spec" | "qemu" | "bochs";

export const EMULATOR_NAMES = ["qemu", "bochs"] as const;
export type EmulatorName = (typeof EMULATOR_NAMES)[number];

/** One engine on one loop: a sample per round, in steps per second (NaN: a round whose run was
 *  too short to time; samples stay paired by round). */
export interface EngineSamples {
  readonly samples: readonly number[];
}

export interface LoopFigures {
  readonly name: string;
  readonly unit: "MIPS" | "round trips/s";
  readonly stepsPerRound: number;
  /** Per engine: its samples, or why it has none (one line). */
  readonly engines: Partial<Record<BenchEngineName, EngineSamples | { readonly missing: string }>>;
}

export interface KernelRow {
  readonly name: string;
  /** Millions of completed instructions per CPU second, or why there is no figure. */
  readonly impl: number;
  readonly spec: number | string;
  readonly syscallsPerSecond: number;
  readonly contextSwitchesPerSecond: number;
  readonly counts: { readonly instructions: number; readonly syscalls: number; readonly contextSwitches: number };
  /** MIPS of the slowest and the fastest timed run. */
  readonly implRange?: readonly [number, number];
  readonly specRange?: readonly [number, number];
}

export interface BenchReport {
  readonly rounds: number;
  /** The emulators asked for, in order (their columns). */
  readonly against: readonly EmulatorName[];
  readonly loops: readonly LoopFigures[];
  /** Emulators that could not be measured at all: one line each. */
  readonly missing: readonly string[];
  readonly kernels: readonly KernelRow[] | undefined;
  /** Millions of plain-JS loop iterations per CPU second (to compare machines). */
  readonly hostReference: number;
  /** The machine's 1-minute load average when the run started and ended. */
  readonly load: readonly [number, number];
}
