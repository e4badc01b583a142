// `ringspec bench`: parses the options, runs the benchmarks of bench/index.ts (loaded when the
// command runs, so that the rest of the CLI does not load the benchmark guests) and prints their
// report as the side-by-side table or as JSON.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Io } from "./io.ts";
import type { BenchEngineName, BenchReport, EmulatorName, LoopFigures } from "../bench/report.ts";
import type { runBenchmarks } from "../bench/index.ts";

export const BENCH_HELP = `Usage: ringspec bench [options]

Runs the four benchmark loops (integer loop, syscall, INT→IRETQ, #PF round trips) on impl and
spec, and on the installed emulators with --against, in interleaved rounds; prints each figure as
the median over rounds with its range, and the ratios impl/QEMU, impl/Bochs and impl/spec. Then
the kernels (boot to exit) on impl and spec.

Options:
  --against LIST    also run the loops on these emulators: qemu, bochs (comma-separated)
  --qemu PATH       the QEMU program (default qemu-system-x86_64)
  --bochs PATH      the Bochs program (default bochs)
  --rounds N        interleaved rounds (default 7; --runs is the same)
  --seconds S       target CPU seconds of one timed run on impl/spec (default 0.25)
  --loops LIST      only these loops: int-loop, syscall, interrupt, page-fault
  --no-kernels      skip the kernel benchmarks
  --json            one JSON object of named figures instead of the table

An emulator that is not installed gets one line saying so; the other figures are still printed.
Exit status: 0; 2 for bad options.`;

export const LOOP_NAMES = ["int-loop", "syscall", "interrupt", "page-fault"] as const;
const EMULATORS: readonly EmulatorName[] = ["qemu", "bochs"];

export interface BenchArguments {
  readonly json: boolean;
  readonly rounds?: number;
  readonly seconds?: number;
  readonly against: readonly EmulatorName[];
  readonly programs: { readonly qemu?: string; readonly bochs?: string };
  readonly loops?: readonly string[];
  readonly kernels: boolean;
}

/** The options of `ringspec bench`, or the one-line reason they are wrong. */
export function parseBenchArguments(argv: readonly string[]): BenchArguments | { readonly error: string } {
  let json = false;
  let kernels = true;
  let rounds: number | undefined;
  let seconds: number | undefined;
  let against: EmulatorName[] = [];
  let loops: string[] | undefined;
  const programs: { qemu?: string; bochs?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i]!;
    const takesValue = ["--against", "--qemu", "--bochs", "--rounds", "--runs", "--seconds", "--loops"].includes(option);
    const value = argv[i + 1];
    if (takesValue && (value === undefined || value.startsWith("--"))) return { error: `${option}: expected a value` };
    if (takesValue) i++;
    switch (option) {
      case "--json":
        json = true;
        break;
      case "--no-kernels":
        kernels = false;
        break;
      case "--rounds":
      case "--runs": {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1 || n > 1000) return { error: `${option}: expected a whole number from 1 to 1000, got ${JSON.stringify(value)}` };
        rounds = n;
        break;
      }
      case "--seconds": {
        const s = Number(value);
        if (!(s > 0 && s <= 600)) return { error: `--seconds: expected a number of seconds above 0 and at most 600, got ${JSON.stringify(value)}` };
        seconds = s;
        break;
      }
      case "--against": {
        const names = value!.split(",").map((n) => n.trim());
        const unknown = names.find((n) => !(EMULATORS as readonly string[]).includes(n));
        if (unknown !== undefined) return { error: `--against: unknown emulator ${JSON.stringify(unknown)} (expected ${EMULATORS.join(", ")})` };
        against = [...new Set(names as EmulatorName[])];
        break;
      }
      case "--loops": {
        const names = value!.split(",").map((n) => n.trim());
        const unknown = names.find((n) => !(LOOP_NAMES as readonly string[]).includes(n));
        if (unknown !== undefined) return { error: `--loops: unknown loop ${JSON.stringify(unknown)} (expected ${LOOP_NAMES.join(", ")})` };
        loops = [...new Set(names)];
        break;
      }
      case "--qemu":
      case "--bochs":
        if (value === "") return { error: `${option}: expected a program path` };
        programs[option === "--qemu" ? "qemu" : "bochs"] = value!;
        break;
      default:
        return { error: option.startsWith("-") ? `unknown option ${JSON.stringify(option)} (see ringspec bench --help)` : `unexpected argument ${JSON.stringify(option)}` };
    }
  }
  for (const name of EMULATORS) {
    if (programs[name] !== undefined && !against.includes(name)) return { error: `--${name} is only used with --against ${name}` };
  }
  return {
    json, against, programs, kernels,
    ...(rounds === undefined ? {} : { rounds }),
    ...(seconds === undefined ? {} : { seconds }),
    ...(loops === undefined ? {} : { loops }),
  };
}

// ---------------------------------------------------------------- rendering

export interface Spread {
  readonly median: number;
  readonly low: number;
  readonly high: number;
  readonly count: number;
}

/** Median and range of the finite values; undefined when there are none. */
export function spread(values: readonly number[]): Spread | undefined {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, low: s[0]!, high: s[s.length - 1]!, count: s.length };
}

/** Three significant digits, thousands separated: 2,137 · 77.0 · 6.70 · 0.530. */
export function figure(x: number): string {
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function withRange(s: Spread | undefined, scale: number, unit: string): string {
  if (s === undefined) return "—";
  const range = s.count > 1 ? ` (${figure(s.low * scale)}–${figure(s.high * scale)})` : "";
  return `${figure(s.median * scale)}${unit}${range}`;
}

function samplesOf(loop: LoopFigures, engine: BenchEngineName): readonly number[] | undefined {
  const e = loop.engines[engine];
  return e !== undefined && "samples" in e ? e.samples : undefined;
}

/** The loop's figure in its unit from steps per second: MIPS, or millions of round trips/s. */
function unitScale(loop: LoopFigures): number {
  return loop.unit === "MIPS" ? 1e-6 : 1e-6 / loop.stepsPerRound;
}

/** impl ÷ other, round by round (the rounds are interleaved, so each pair shares its moment). */
export function pairedRatio(impl: readonly number[] | undefined, other: readonly number[] | undefined): Spread | undefined {
  if (impl === undefined || other === undefined) return undefined;
  const ratios: number[] = [];
  for (let r = 0; r < Math.min(impl.length, other.length); r++) ratios.push(impl[r]! / other[r]!);
  return spread(ratios);
}

const EMULATOR_TITLES: Record<EmulatorName, string> = { qemu: "QEMU TCG", bochs: "Bochs" };

/** The side-by-side table (Markdown, so that README can carry it as printed) and its notes. */
export function renderBenchReport(report: BenchReport, command: string): string[] {
  const header = ["loop", "impl", ...report.against.map((e) => EMULATOR_TITLES[e]), ...report.against.map((e) => `impl/${EMULATOR_TITLES[e].split(" ")[0]}`), "spec (M instr/s)", "impl/spec"];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const loop of report.loops) {
    const scale = unitScale(loop);
    const unit = loop.unit === "MIPS" ? " MIPS" : " M/s";
    const impl = samplesOf(loop, "impl");
    const spec = samplesOf(loop, "spec");
    const cells = [loop.name, withRange(spread(impl ?? []), scale, unit)];
    for (const e of report.against) cells.push(withRange(spread(samplesOf(loop, e) ?? []), scale, unit));
    for (const e of report.against) cells.push(withRange(pairedRatio(impl, samplesOf(loop, e)), 1, ""));
    cells.push(withRange(spread(spec ?? []), 1e-6, ""));
    const ratio = pairedRatio(impl, spec);
    cells.push(ratio === undefined ? "—" : `${figure(ratio.median)}×`);
    rows.push(cells);
    for (const [engine, e] of Object.entries(loop.engines)) if (e !== undefined && "missing" in e) notes.push(`${engine} on ${loop.name}: not measured — ${e.missing}`);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)];
  out.push("");
  for (const m of report.missing) out.push(m);
  out.push(...notes);
  out.push(
    `Medians of ${report.rounds} interleaved rounds, range in parentheses; M/s = millions of round trips per second; ` +
      `ratios are taken round by round. CPU time: this process's for impl and spec, the emulator process's for ` +
      `${report.against.length === 0 ? "the emulators (none asked for: --against qemu,bochs)" : report.against.map((e) => EMULATOR_TITLES[e]).join(" and ")}` +
      `${report.against.length === 0 ? "" : ", whose figures exclude boot, translation and the debugger (a one-iteration run is subtracted)"}.`,
  );
  out.push(`Steps per round trip: ${report.loops.map((l) => `${l.name} ${l.stepsPerRound}`).join(", ")}. Load average ${report.load[0].toFixed(1)} → ${report.load[1].toFixed(1)}; host reference ${report.hostReference.toFixed(0)} M plain-JS loop iterations/s.`);
  out.push(`Command: ${command}`);
  if (report.kernels !== undefined) {
    out.push("");
    const mips = (median: number, range: readonly [number, number] | undefined) =>
      `${figure(median)} MIPS${range !== undefined && range[0] !== range[1] ? ` (${figure(range[0])}–${figure(range[1])})` : ""}`;
    out.push(`${"kernel".padEnd(8)}  ${"impl".padStart(24)}  ${"spec".padStart(24)}  ${"impl syscalls/s".padStart(16)}  ${"impl switches/s".padStart(16)}   run (impl)`);
    for (const k of report.kernels) {
      const c = k.counts;
      out.push(
        `${k.name.padEnd(8)}  ${mips(k.impl, k.implRange).padStart(24)}  ${(typeof k.spec === "number" ? mips(k.spec, k.specRange) : "—").padStart(24)}  ` +
          `${figure(k.syscallsPerSecond).padStart(16)}  ${figure(k.contextSwitchesPerSecond).padStart(16)}   ` +
          `${c.instructions} instructions, ${c.syscalls} syscalls, ${c.contextSwitches} context switches to the exit`,
      );
      if (typeof k.spec === "string") out.push(`${"".padEnd(8)} spec: ${k.spec}`);
    }
    out.push("(kernels: boot to exit, medians of whole runs in process CPU time, range in parentheses; MIPS = millions of completed instructions per second; syscalls/s and switches/s: per second of impl's median run)");
  }
  return out;
}

/**
 * The figures as one JSON object: `ENGINE.LOOP` in the loop's unit (MIPS, or round trips per
 * second) with `ENGINE.LOOP.low`/`.high`, `spec.LOOP.instructions_per_s`, `ratio.LOOP` (impl/spec),
 * `ratio.EMULATOR.LOOP` (impl/emulator), the kernels and `host-reference`. A figure that could not
 * be measured is absent.
 */
export function benchJson(report: BenchReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const loop of report.loops) {
    const scale = loop.unit === "MIPS" ? 1e-6 : 1 / loop.stepsPerRound;
    const impl = samplesOf(loop, "impl");
    for (const engine of ["impl", "spec", ...report.against] as const) {
      const s = spread(samplesOf(loop, engine) ?? []);
      if (s === undefined) continue;
      out[`${engine}.${loop.name}`] = s.median * scale;
      out[`${engine}.${loop.name}.low`] = s.low * scale;
      out[`${engine}.${loop.name}.high`] = s.high * scale;
      if (engine === "spec") {
        out[`spec.${loop.name}.instructions_per_s`] = s.median;
        const r = pairedRatio(impl, samplesOf(loop, "spec"));
        if (r !== undefined) out[`ratio.${loop.name}`] = r.median;
      } else if (engine !== "impl") {
        const r = pairedRatio(impl, samplesOf(loop, engine));
        if (r !== undefined) out[`ratio.${engine}.${loop.name}`] = r.median;
      }
    }
  }
  for (const k of report.kernels ?? []) {
    out[`impl.kernel.${k.name}`] = k.impl;
    if (typeof k.spec === "number") out[`spec.kernel.${k.name}`] = k.spec;
    for (const [engine, range] of [["impl", k.implRange], ["spec", k.specRange]] as const)
      if (range !== undefined) [out[`${engine}.kernel.${k.name}.low`], out[`${engine}.kernel.${k.name}.high`]] = range;
    out[`impl.kernel.${k.name}.syscalls_per_s`] = k.syscallsPerSecond;
    out[`impl.kernel.${k.name}.context_switches_per_s`] = k.contextSwitchesPerSecond;
  }
  out["host-reference"] = report.hostReference;
  return out;
}

// ---------------------------------------------------------------- the command

const BENCH_ENTRY = new URL("../bench/index.ts", import.meta.url);

interface BenchModule {
  readonly runBenchmarks?: unknown;
}

// The type only: bench/index.ts itself is loaded when the command runs.
type RunBenchmarks = typeof runBenchmarks;

export async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h") {
    io.out(BENCH_HELP + "\n");
    return 0;
  }
  const parsed = parseBenchArguments(argv);
  if ("error" in parsed) {
    io.err(`ringspec: bench: ${parsed.error}`);
    return 2;
  }
  if (!existsSync(BENCH_ENTRY)) {
    io.err(`ringspec: bench: no benchmarks (${fileURLToPath(BENCH_ENTRY)} is missing)`);
    return 2;
  }
  // A literal specifier, so that cli/launch.js compiles bench/ too.
  const module = (await import("../bench/index.ts")) as BenchModule;
  if (typeof module.runBenchmarks !== "function") {
    io.err(`ringspec: bench: bench/index.ts does not export runBenchmarks(options)`);
    return 2;
  }
  const report = await (module.runBenchmarks as RunBenchmarks)({
    ...parsed,
    progress: parsed.json ? undefined : (line: string) => io.err(`bench: ${line}`),
  });
  if (parsed.json) io.out(JSON.stringify(benchJson(report)) + "\n");
  else io.out(renderBenchReport(report, ["ringspec bench", ...argv].join(" ")).join("\n") + "\n");
  return 0;
}
