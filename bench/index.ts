// Benchmarks of impl/, spec/ and (on request) the installed QEMU and Bochs on the same four loops
// (npm run bench → node cli/bin.js bench → cli/bench.ts → runBenchmarks). Speed is measured here,
// never asserted in tests.
//
// Method, so that figures taken on a shared, noisy machine compare like with like:
// - rounds are interleaved: each round runs every loop once on every engine, so a burst of load
//   from elsewhere hits all engines alike; each figure is the median over rounds, with its range;
// - time is CPU time: this process's (process.cpuUsage) for impl and spec, which run on this
//   thread; the emulator process's (all its threads, /proc/PID/stat) for QEMU and Bochs;
// - impl and spec run through the runner (engines/runner.ts) after a warm-up that compiles the
//   hot blocks and sizes a run to about `seconds`;
// - QEMU and Bochs boot the same generated state through their engines (engines/qemu,
//   engines/bochs, without their per-event logs), then run free to the loop's end
//   (`runFreeTo`); a one-iteration run of the same loop is subtracted, so start-up, translation
//   and the debugger's round trip are not counted.
import { loadavg } from "node:os";
import type { Engine } from "../contract/engine.ts";
import { createEngine } from "../engines/registry.ts";
import { runEngine } from "../engines/runner.ts";
import { QemuEngine } from "../engines/qemu/engine.ts";
import { BochsEngine } from "../engines/bochs/engine.ts";
import type { FreeRunCost } from "../engines/host/process.ts";
import { PROGRAMS, type BenchProgram } from "./programs.ts";
import { measureKernels } from "./kernels.ts";
import type { BenchEngineName, BenchReport, EmulatorName, EngineSamples, KernelRow, LoopFigures } from "./report.ts";

export type { BenchReport } from "./report.ts";

export interface BenchOptions {
  /** Interleaved rounds (one sample per engine and loop each); default 7. */
  readonly rounds?: number;
  /** Target CPU seconds of one timed run of impl or spec; default 0.25 (emulators: at least 0.5). */
  readonly seconds?: number;
  /** Emulators to run the loops on as well. */
  readonly against?: readonly EmulatorName[];
  /** Emulator programs (default qemu-system-x86_64 and bochs on PATH). */
  readonly programs?: { readonly qemu?: string; readonly bochs?: string };
  /** Only these loops (names as in bench/programs.ts); default all four. */
  readonly loops?: readonly string[];
  /** The kernel benchmarks (bench/kernels.ts); default true. */
  readonly kernels?: boolean;
  /** Where progress lines go (stderr in the CLI). */
  readonly progress?: (line: string) => void;
}

/** The loops' names, in table order. */
export const LOOP_NAMES: readonly string[] = PROGRAMS.map((make) => make().name);

/** CPU seconds used by this process so far. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A timed run's limit: far beyond any run's length (CPU time is what is measured). */
const BENCH_TIMEOUT_MS = 3_600_000;
/** An emulator's free run, wall clock (a loaded machine can stretch a 0.5 s run many times). */
const FREE_RUN_TIMEOUT_MS = 300_000;

/** Runs through the runner, as every other consumer does: without onStep it calls the engine's
 *  run(n) once per chunk of steps, so it adds no per-step cost. */
function run(engine: Engine, steps: number) {
  return runEngine(engine, { maxSteps: steps, timeoutMs: BENCH_TIMEOUT_MS }).stop;
}

/** CPU seconds of warm-up before a loop's timed runs on impl or spec, in timed runs (1 s at the
 *  default 0.25 s a run). */
const WARM_UP_RUNS = 4;

/** impl or spec loaded on a loop, warmed up, with the steps of one timed run. */
interface Prepared {
  readonly engine: Engine;
  readonly steps: number;
}

function prepare(p: BenchProgram, name: "impl" | "spec", seconds: number): Prepared {
  const engine = createEngine(name);
  engine.load(p.state, "intel");
  // Warm up (compiles the hot blocks, lets V8 optimise) and size the timed runs. The warm-up lasts
  // at least WARM_UP_RUNS timed runs' CPU: V8 optimises a large generated function (impl's traces) on a
  // background thread, which on a loaded machine takes up to about a second — the figures are
  // steady-state ones, as the emulators' exclude their translation.
  let steps = 1_000;
  const start = cpuSeconds();
  for (;;) {
    const t0 = cpuSeconds();
    const stop = run(engine, steps);
    const dt = cpuSeconds() - t0;
    if (stop.reason !== "limit") throw new Error(`${p.name} on ${name}: stopped with ${stop.reason} after ${stop.steps} steps`);
    if ((dt > seconds / 4 && t0 + dt - start >= WARM_UP_RUNS * seconds) || steps > 1e9) {
      return { engine, steps: Math.max(1_000, Math.round((steps / dt) * seconds)) };
    }
    if (dt <= seconds / 4) steps *= 4;
  }
}

/** One timed run: steps per CPU second. */
function timedRun(p: BenchProgram, name: string, prepared: Prepared): number {
  const t0 = cpuSeconds();
  const stop = run(prepared.engine, prepared.steps);
  const dt = cpuSeconds() - t0;
  if (stop.reason !== "limit") throw new Error(`${p.name} on ${name}: stopped with ${stop.reason}`);
  return stop.steps / dt;
}

interface FreeRunner {
  load(state: BenchProgram["state"], profile: "intel"): Promise<void>;
  runFreeTo(address: bigint, timeoutMs: number): Promise<FreeRunCost>;
  close(): Promise<void>;
}

function openEmulator(name: EmulatorName, programs: BenchOptions["programs"]): FreeRunner {
  const program = programs?.[name];
  return name === "qemu"
    ? new QemuEngine({ interruptLog: false, ...(program === undefined ? {} : { program }) })
    : new BochsEngine({ cpuDebugLog: false, ...(program === undefined ? {} : { program }) });
}

/** Boots `p` on the emulator and runs it free to its end: the CPU seconds (wall without /proc). */
async function freeRun(name: EmulatorName, p: BenchProgram, programs: BenchOptions["programs"]): Promise<number> {
  const engine = openEmulator(name, programs);
  try {
    await engine.load(p.state, "intel");
    const cost = await engine.runFreeTo(p.end, FREE_RUN_TIMEOUT_MS);
    return cost.cpuSeconds ?? cost.wallSeconds;
  } finally {
    await engine.close();
  }
}

/** One emulator sample: steps per second over `iterations` − 1 iterations (a run of `iterations`
 *  minus a run of one). NaN when the difference is not positive (clock resolution). */
async function emulatorSample(name: EmulatorName, make: (n: bigint) => BenchProgram, iterations: bigint, programs: BenchOptions["programs"]): Promise<number> {
  const full = await freeRun(name, make(iterations), programs);
  const one = await freeRun(name, make(1n), programs);
  const p = make(1n);
  const dt = full - one;
  return dt > 0 ? (Number(iterations - 1n) * p.stepsPerIteration) / dt : Number.NaN;
}

/** Iterations for an emulator run of about `seconds` CPU seconds (grows from a short run). */
async function calibrate(name: EmulatorName, make: (n: bigint) => BenchProgram, seconds: number, programs: BenchOptions["programs"]): Promise<bigint> {
  let iterations = 20_000n;
  for (;;) {
    const dt = await freeRun(name, make(iterations), programs);
    if (dt >= seconds / 2 || iterations >= 1n << 40n) {
      return dt <= 0 ? iterations : BigInt(Math.max(2, Math.round((Number(iterations) * seconds) / dt)));
    }
    // Grow at most 16× per try: the clock's 10 ms ticks make a short run's time coarse.
    const factor = dt <= 0 ? 16 : Math.min(16, Math.max(2, Math.ceil(seconds / dt)));
    iterations *= BigInt(factor);
  }
}

/** One line for an emulator that could not be measured ("qemu: not measured — ..."). */
function missingLine(name: EmulatorName, e: unknown): string {
  const message = e instanceof Error ? e.message.split("\n")[0]! : String(e);
  const install = name === "qemu" ? "apt-get install -y qemu-system-x86" : "apt-get install -y bochs bochsbios vgabios";
  return `${name}: not measured — ${message} (${install})`;
}

function hostReference(seconds: number): number {
  // Millions of iterations per CPU second of a fixed plain-JavaScript loop (an Int32Array
  // read-modify-write with a data-dependent index), so figures from different machines compare.
  const a = new Int32Array(4096);
  let x = 1;
  let iterations = 0;
  const t0 = cpuSeconds();
  while (cpuSeconds() - t0 < seconds) {
    for (let k = 0; k < 1_000_000; k++) {
      x = (x * 1103515245 + 12345) | 0;
      a[x & 4095] = (a[x & 4095]! + k) | 0;
    }
    iterations += 1_000_000;
  }
  return iterations / (cpuSeconds() - t0) / 1e6 + (a[0]! & 0) + (x & 0);
}

/** Every loop on every engine asked for, in interleaved rounds; then the kernels. */
export async function runBenchmarks(opts: BenchOptions = {}): Promise<BenchReport> {
  const rounds = opts.rounds ?? 7;
  const seconds = opts.seconds ?? 0.25;
  const emulatorSeconds = Math.max(0.5, seconds);
  const against = opts.against ?? [];
  const progress = opts.progress ?? (() => undefined);
  const loadStart = loadavg()[0]!;
  const referenceSeconds = Math.min(0.1, seconds);
  const reference = median([hostReference(referenceSeconds), hostReference(referenceSeconds), hostReference(referenceSeconds)]);
  const makers = PROGRAMS.filter((make) => opts.loops === undefined || opts.loops.includes(make().name));

  const missing: string[] = [];
  interface LoopRun {
    readonly make: (n?: bigint) => BenchProgram;
    readonly program: BenchProgram;
    readonly prepared: Partial<Record<"impl" | "spec", Prepared>>;
    readonly iterations: Partial<Record<EmulatorName, bigint>>;
    readonly samples: Partial<Record<BenchEngineName, number[]>>;
    readonly missing: Partial<Record<BenchEngineName, string>>;
  }
  const loops: LoopRun[] = [];
  const available = new Set<EmulatorName>(against);
  for (const make of makers) {
    const program = make();
    progress(`preparing ${program.name}`);
    const loop: LoopRun = { make, program, prepared: {}, iterations: {}, samples: { impl: [], spec: [] }, missing: {} };
    loop.prepared.impl = prepare(program, "impl", seconds);
    loop.prepared.spec = prepare(program, "spec", seconds);
    for (const name of against) {
      if (!available.has(name)) continue;
      try {
        loop.iterations[name] = await calibrate(name, (n) => make(n), emulatorSeconds, opts.programs);
        loop.samples[name] = [];
      } catch (e) {
        // A missing program stops the emulator for every loop; anything else only for this loop.
        const line = missingLine(name, e);
        if (/not found|no VGA BIOS/.test(line)) {
          available.delete(name);
          missing.push(line);
        } else loop.missing[name] = line.replace(/^\w+: not measured — /, "");
      }
    }
    loops.push(loop);
  }

  for (let r = 0; r < rounds; r++) {
    progress(`round ${r + 1}/${rounds}`);
    for (const loop of loops) {
      for (const name of ["impl", "spec"] as const) loop.samples[name]!.push(timedRun(loop.program, name, loop.prepared[name]!));
      for (const name of against) {
        const iterations = loop.iterations[name];
        if (iterations === undefined || loop.missing[name] !== undefined) continue;
        try {
          const sample = await emulatorSample(name, (n) => loop.make(n), iterations, opts.programs);
          // NaN (no measurable difference) is kept, so that samples stay paired by round.
          loop.samples[name]!.push(sample);
        } catch (e) {
          loop.missing[name] = missingLine(name, e).replace(/^\w+: not measured — /, "");
        }
      }
    }
  }

  const figures: LoopFigures[] = loops.map((loop) => {
    const engines: Record<string, EngineSamples | { readonly missing: string }> = {};
    for (const name of ["impl", "spec", ...against] as const) {
      const why = loop.missing[name];
      const samples = loop.samples[name];
      if (why !== undefined) engines[name] = { missing: why };
      else if (samples !== undefined && samples.length > 0) engines[name] = { samples };
    }
    const p = loop.program;
    return { name: p.name, unit: p.unit === "MIPS" ? "MIPS" : "round trips/s", stepsPerRound: p.stepsPerRound, engines };
  });

  let kernels: KernelRow[] | undefined;
  if (opts.kernels !== false) {
    progress("kernels");
    kernels = measureKernels(rounds, Math.min(rounds, 3)).map((k) => ({
      name: k.name,
      impl: k.impl as number,
      spec: k.spec,
      syscallsPerSecond: k.syscallsPerSecond!,
      contextSwitchesPerSecond: k.contextSwitchesPerSecond!,
      counts: k.counts,
      ...(k.implRange !== undefined ? { implRange: k.implRange } : {}),
      ...(k.specRange !== undefined ? { specRange: k.specRange } : {}),
    }));
  }
  return { rounds, against, loops: figures, missing, kernels, hostReference: reference, load: [loadStart, loadavg()[0]!] };
}
