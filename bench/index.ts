// Benchmarks of impl/ and spec/ on the same loops (npm run bench → node cli/bin.js bench → main). Speed is measured
// here, never asserted in tests. Each figure is the median of several timed runs after a warm-up.
// Time is this process's CPU time (process.cpuUsage), not wall-clock time, so that other work on a
// shared machine does not distort the figures; the guest runs on one thread.
import type { Engine } from "../contract/engine.ts";
import { createEngine } from "../engines/registry.ts";
import { runEngine } from "../engines/runner.ts";
import { PROGRAMS, type BenchProgram } from "./programs.ts";
import { measureKernels } from "./kernels.ts";

export interface BenchOptions {
  readonly json: boolean;
  /** Timed runs per benchmark (median reported); default 7. */
  readonly runs?: number;
  /** Target seconds per timed run; default 0.25. */
  readonly seconds?: number;
}

interface Measured {
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly samples: number[];
}

/** CPU seconds used by this process so far. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A timed run's limit: far beyond any run's length (CPU time is what is measured). */
const BENCH_TIMEOUT_MS = 3_600_000;

/** Runs through the runner (engines/runner.ts), as every other consumer does: without onStep it
 *  calls the engine's run(n) once per chunk of steps, so it adds no per-step cost. */
function run(engine: Engine, steps: number) {
  return runEngine(engine, { maxSteps: steps, timeoutMs: BENCH_TIMEOUT_MS }).stop;
}

/** Steps per CPU second of `engine` on `p` (median of `runs` timed runs after a warm-up). */
function measure(p: BenchProgram, engine: Engine, runs: number, seconds: number): Measured {
  engine.load(p.state, "intel");
  // Warm up (compiles the hot blocks, lets V8 optimise) and size the timed runs.
  let steps = 1_000;
  for (;;) {
    const t0 = cpuSeconds();
    const stop = run(engine, steps);
    const dt = cpuSeconds() - t0;
    if (stop.reason !== "limit") throw new Error(`${p.name}: stopped with ${stop.reason} after ${stop.steps} steps`);
    if (dt > seconds / 4 || steps > 1e9) {
      steps = Math.max(1_000, Math.round((steps / dt) * seconds));
      break;
    }
    steps *= 4;
  }
  const samples: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = cpuSeconds();
    const stop = run(engine, steps);
    const dt = cpuSeconds() - t0;
    if (stop.reason !== "limit") throw new Error(`${p.name}: stopped with ${stop.reason}`);
    samples.push(stop.steps / dt);
  }
  return { name: p.name, unit: p.unit, value: median(samples), samples };
}

/**
 * Host reference: millions of iterations per CPU second of a fixed plain-JavaScript loop (an
 * Int32Array read-modify-write with a data-dependent index), so figures from different machines
 * can be compared. Not part of the emulator.
 */
function hostReference(seconds: number): number {
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

/** "950.0 MIPS" or "2.50 M round trips/s" for a rate in steps per second. */
function show(p: BenchProgram, stepsPerSecond: number): string {
  const perRound = stepsPerSecond / p.stepsPerRound;
  return p.unit === "MIPS" ? `${(perRound / 1e6).toFixed(1)} MIPS` : `${(perRound / 1e6).toFixed(3)} M ${p.unit}`;
}

/**
 * Every benchmark loop on impl/ and on spec/, through the Engine interface. Figures (JSON keys):
 * `impl.NAME` and `spec.NAME` in the loop's unit (MIPS, or round trips per second),
 * `spec.NAME.instructions_per_s`, `ratio.NAME` (impl/spec), the kernels (bench/kernels.ts):
 * `impl.kernel.K` and `spec.kernel.K` in MIPS (spec only when it runs K to its exit),
 * `impl.kernel.K.syscalls_per_s`, `impl.kernel.K.context_switches_per_s`; and `host-reference`.
 */
export async function runBenchmarks(opts: BenchOptions): Promise<Record<string, number>> {
  const runs = opts.runs ?? 7;
  const seconds = opts.seconds ?? 0.25;
  const out: Record<string, number> = {};
  const lines: string[] = [`${"loop".padEnd(12)} ${"impl".padStart(26)} ${"spec".padStart(26)} ${"impl/spec".padStart(10)}   spec instructions/s`];
  const reference = median([hostReference(0.1), hostReference(0.1), hostReference(0.1)]);
  for (const make of PROGRAMS) {
    const p = make();
    const impl = measure(p, createEngine("impl"), runs, seconds);
    const spec = measure(p, createEngine("spec"), Math.min(runs, 5), seconds);
    const unitRate = (m: Measured) => (p.unit === "MIPS" ? m.value / p.stepsPerRound / 1e6 : m.value / p.stepsPerRound);
    out[`impl.${p.name}`] = unitRate(impl);
    out[`spec.${p.name}`] = unitRate(spec);
    out[`spec.${p.name}.instructions_per_s`] = spec.value;
    out[`ratio.${p.name}`] = impl.value / spec.value;
    lines.push(
      `${p.name.padEnd(12)} ${show(p, impl.value).padStart(26)} ${show(p, spec.value).padStart(26)} ${`${(impl.value / spec.value).toFixed(0)}x`.padStart(10)}   ${(spec.value / 1e6).toFixed(3)} M`,
    );
  }
  lines.push("");
  lines.push(`${"kernel".padEnd(12)} ${"impl".padStart(14)} ${"spec".padStart(14)} ${"impl syscalls/s".padStart(17)} ${"impl switches/s".padStart(17)}   run (impl)`);
  for (const k of measureKernels(runs, Math.min(runs, 3))) {
    out[`impl.kernel.${k.name}`] = k.impl as number;
    if (typeof k.spec === "number") out[`spec.kernel.${k.name}`] = k.spec;
    out[`impl.kernel.${k.name}.syscalls_per_s`] = k.syscallsPerSecond!;
    out[`impl.kernel.${k.name}.context_switches_per_s`] = k.contextSwitchesPerSecond!;
    const c = k.counts;
    lines.push(
      `${k.name.padEnd(12)} ${`${(k.impl as number).toFixed(1)} MIPS`.padStart(14)} ${(typeof k.spec === "number" ? `${k.spec.toFixed(2)} MIPS` : "—").padStart(14)} ` +
        `${`${(k.syscallsPerSecond! / 1e6).toFixed(3)} M`.padStart(17)} ${`${(k.contextSwitchesPerSecond! / 1e3).toFixed(1)} k`.padStart(17)}   ` +
        `${c.instructions} instructions, ${c.syscalls} syscalls, ${c.contextSwitches} context switches to the exit`,
    );
    if (typeof k.spec === "string") lines.push(`${"".padEnd(12)} spec: ${k.spec}`);
  }
  lines.push("(kernels: boot to exit, medians of whole runs in process CPU time; MIPS = completed instructions per second)");
  out["host-reference"] = reference;
  lines.push(`(medians of ${runs} timed runs on impl, ${Math.min(runs, 5)} on spec, in process CPU time; steps per round trip: ${PROGRAMS.map((m) => { const p = m(); return `${p.name} ${p.stepsPerRound}`; }).join(", ")})`);
  lines.push(`host reference: ${reference.toFixed(0)} M plain-JS loop iterations/s (for comparing machines)`);
  if (opts.json) console.log(JSON.stringify(out));
  else for (const l of lines) console.log(l);
  return out;
}

/** `ringspec bench [--json] [--runs N] [--seconds S]` (cli/bench.ts calls this). */
export async function main(argv: readonly string[]): Promise<number> {
  const value = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const n = Number(argv[i + 1]);
    if (!(n > 0)) throw new Error(`${name}: expected a positive number, got ${JSON.stringify(argv[i + 1] ?? "")}`);
    return n;
  };
  const known = new Set(["--json", "--runs", "--seconds"]);
  const unknown = argv.find((a, i) => a.startsWith("-") && !known.has(a) && !(i > 0 && (argv[i - 1] === "--runs" || argv[i - 1] === "--seconds")));
  if (unknown !== undefined) {
    console.error(`ringspec: bench: unknown option ${JSON.stringify(unknown)} (expected --json, --runs N, --seconds S)`);
    return 2;
  }
  let runs: number | undefined;
  let seconds: number | undefined;
  try {
    runs = value("--runs");
    seconds = value("--seconds");
  } catch (e) {
    console.error(`ringspec: bench: ${(e as Error).message}`);
    return 2;
  }
  await runBenchmarks({ json: argv.includes("--json"), ...(runs === undefined ? {} : { runs: Math.round(runs) }), ...(seconds === undefined ? {} : { seconds }) });
  return 0;
}
