// Benchmarks of impl/ (npm run bench → node cli/bin.js bench → runBenchmarks). Speed is measured
// here, never asserted in tests. Each figure is the median of several timed runs after a warm-up.
// Time is this process's CPU time (process.cpuUsage), not wall-clock time, so that other work on a
// shared machine does not distort the figures; the guest runs on one thread.
import { ImplEngine } from "../impl/engine.ts";
import { PROGRAMS, type BenchProgram } from "./programs.ts";

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

function measure(p: BenchProgram, runs: number, seconds: number): Measured {
  const engine = new ImplEngine();
  engine.load(p.state, "intel");
  // Warm up (compiles the hot blocks, lets V8 optimise) and size the timed runs.
  let steps = 100_000;
  for (;;) {
    const t0 = cpuSeconds();
    const stop = engine.run(steps);
    const dt = cpuSeconds() - t0;
    if (stop.reason !== "limit") throw new Error(`${p.name}: stopped with ${stop.reason} after ${stop.steps} steps`);
    if (dt > seconds / 4 || steps > 1e9) {
      steps = Math.max(10_000, Math.round((steps / dt) * seconds));
      break;
    }
    steps *= 4;
  }
  const samples: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = cpuSeconds();
    const stop = engine.run(steps);
    const dt = cpuSeconds() - t0;
    if (stop.reason !== "limit") throw new Error(`${p.name}: stopped with ${stop.reason}`);
    const rate = stop.steps / dt / p.stepsPerRound;
    samples.push(p.unit === "MIPS" ? rate / 1e6 : rate);
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

export async function runBenchmarks(opts: BenchOptions): Promise<Record<string, number>> {
  const runs = opts.runs ?? 7;
  const seconds = opts.seconds ?? 0.25;
  const out: Record<string, number> = {};
  const lines: string[] = [];
  const reference = median([hostReference(0.1), hostReference(0.1), hostReference(0.1)]);
  for (const make of PROGRAMS) {
    const p = make();
    const m = measure(p, runs, seconds);
    out[p.name] = m.value;
    const shown = m.unit === "MIPS" ? `${m.value.toFixed(1)} MIPS` : `${(m.value / 1e6).toFixed(2)} M ${m.unit}`;
    lines.push(`${p.name.padEnd(12)} ${shown.padStart(24)}   (median of ${runs}, ${p.stepsPerRound} steps per round)`);
  }
  out["host-reference"] = reference;
  lines.push(`${"host-ref".padEnd(12)} ${`${reference.toFixed(0)} M loop iterations/s`.padStart(24)}   (plain JS, for comparing machines)`);
  if (opts.json) console.log(JSON.stringify(out));
  else for (const l of lines) console.log(l);
  return out;
}

// `npx tsx bench/index.ts [--json]`
if (import.meta.url === `file://${process.argv[1]}`) {
  await runBenchmarks({ json: process.argv.includes("--json") });
}
