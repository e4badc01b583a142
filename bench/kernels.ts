// Kernel benchmarks (issue 11 item 7): the demo kernel and the C kernel from boot to their exit,
// on impl and spec — kernel MIPS (completed instructions per CPU second of a whole run), and on
// impl the syscalls and context switches per second those runs make.
//
// Method: one counting run, step by step, finds the run's length and what it does (completed
// instructions; SYSCALLs from CPL 3; context switches = MOV CR3 that changes CR3, a task being
// its address space); then timed runs go through the runner without onStep (engine.run(n) in
// chunks), so the figures carry no per-step cost. A rate is a count of that deterministic run over
// the median CPU time of the timed runs. An engine that cannot run a kernel to its exit (an
// instruction outside its model) gets no figure, and the line says why.
import { readFileSync } from "node:fs";
import type { Engine, EngineEvent } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import { runEngine } from "../engines/runner.ts";
import { createEngine } from "../kernel/engines.ts";
import { buildDemoKernel } from "../kernel/demo/index.ts";
import { loadKernel, parseLoaderDescriptionText } from "../kernel/loader/index.ts";

export interface KernelBench {
  readonly name: string;
  readonly state: ArchState;
}

/** The demo kernel (full workload) and the committed C kernel build. */
export function benchKernels(): KernelBench[] {
  const elf = new Uint8Array(readFileSync(new URL("../kernel/c/build/kernel.elf", import.meta.url)));
  const description = parseLoaderDescriptionText(readFileSync(new URL("../kernel/c/loader.json", import.meta.url), "utf8"));
  return [
    { name: "demo", state: buildDemoKernel({ short: false }).state },
    { name: "c", state: loadKernel(elf, description).state },
  ];
}

export interface KernelCounts {
  readonly steps: number;
  readonly instructions: number;
  readonly syscalls: number;
  readonly contextSwitches: number;
}

/** The engine with its devices (its own, or kernel/devices' model around it). */
function kernelEngine(name: "spec" | "impl"): Engine {
  return createEngine(name);
}

const MAX_STEPS = 20_000_000;
const TIMEOUT_MS = 600_000;

/** MOV CR3, r64 (0F 22 /3, any prefixes) */
function isMovToCr3(bytes: Uint8Array): boolean {
  for (let k = 0; k + 2 < bytes.length; k++) if (bytes[k] === 0x0f && bytes[k + 1] === 0x22) return ((bytes[k + 2]! >> 3) & 7) === 3;
  return false;
}

function isSyscall(e: EngineEvent): boolean {
  const b = e.instruction?.bytes;
  return e.kind === "retired" && b !== undefined && b.length >= 2 && b[b.length - 2] === 0x0f && b[b.length - 1] === 0x05;
}

/** The counting run: step by step to the exit. Returns the counts, or why the kernel cannot run. */
export function countKernel(k: KernelBench, engineName: "spec" | "impl"): KernelCounts | string {
  const engine = kernelEngine(engineName);
  engine.load(k.state, "intel");
  let steps = 0, instructions = 0, syscalls = 0, contextSwitches = 0;
  let cr3 = k.state.cr3;
  for (;;) {
    const idle = engine.run(0);
    if (idle.reason === "exit") break;
    if (idle.reason !== "limit") return `stops with ${idle.reason} after ${steps} steps`;
    if (steps >= MAX_STEPS) return `no exit within ${MAX_STEPS} steps`;
    const e = engine.step();
    if (e.kind === "unsupported") return `stops unsupported at ${e.rip.toString(16)} (${e.reason})`;
    if (e.kind === "memory-limit") return `stops at the memory limit`;
    steps++;
    if (e.kind === "retired" || e.kind === "io" || e.kind === "halted") instructions++;
    if (isSyscall(e)) syscalls++;
    const bytes = e.instruction?.bytes;
    if (e.kind === "retired" && bytes !== undefined && isMovToCr3(bytes)) {
      const now = engine.state().cr3;
      if (now !== cr3) contextSwitches++;
      cr3 = now;
    }
  }
  return { steps, instructions, syscalls, contextSwitches };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of whole runs to the exit (each on a fresh load), through the runner; or why the
 *  engine did not run the kernel as the counting run did. */
export function timeKernel(k: KernelBench, engineName: "spec" | "impl", counts: KernelCounts, runs: number): number[] | string {
  const engine = kernelEngine(engineName);
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    engine.load(k.state, "intel");
    const t0 = cpuSeconds();
    const result = runEngine(engine, { maxSteps: counts.steps + 1, timeoutMs: TIMEOUT_MS });
    const dt = cpuSeconds() - t0;
    if (result.stop.reason !== "exit")
      return `stops with ${result.stop.reason} after ${result.stop.steps} steps${result.stop.detail === undefined ? "" : ` (${result.stop.detail})`}`;
    if (result.stop.steps !== counts.steps) return `exits after ${result.stop.steps} steps, impl after ${counts.steps}`;
    samples.push(dt);
  }
  return samples;
}

export interface KernelFigures {
  readonly name: string;
  readonly counts: KernelCounts;
  /** Completed instructions per CPU second (millions), or why there is no figure. */
  readonly impl: number | string;
  readonly spec: number | string;
  readonly syscallsPerSecond?: number;
  readonly contextSwitchesPerSecond?: number;
  /** The MIPS of the slowest and the fastest timed run (the spread around the median). */
  readonly implRange?: readonly [number, number];
  readonly specRange?: readonly [number, number];
}

/** Millions of instructions per second of the slowest and fastest run. */
function mipsRange(instructions: number, seconds: readonly number[]): readonly [number, number] {
  return [instructions / Math.max(...seconds) / 1e6, instructions / Math.min(...seconds) / 1e6];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The kernel figures: counts from impl's counting run, impl timed `runs` times, spec fewer. */
export function measureKernels(runs: number, specRuns: number): KernelFigures[] {
  return benchKernels().map((k) => {
    const counts = countKernel(k, "impl");
    if (typeof counts === "string") throw new Error(`kernel ${k.name}: impl ${counts}`);
    const implTimes = timeKernel(k, "impl", counts, runs);
    if (typeof implTimes === "string") throw new Error(`kernel ${k.name}: impl ${implTimes}`);
    const specTimes = timeKernel(k, "spec", counts, specRuns);
    const seconds = median(implTimes);
    return {
      name: k.name, counts,
      impl: counts.instructions / seconds / 1e6,
      spec: typeof specTimes === "string" ? specTimes : counts.instructions / median(specTimes) / 1e6,
      syscallsPerSecond: counts.syscalls / seconds,
      contextSwitchesPerSecond: counts.contextSwitches / seconds,
      implRange: mipsRange(counts.instructions, implTimes),
      ...(typeof specTimes === "string" ? {} : { specRange: mipsRange(counts.instructions, specTimes) }),
    };
  });
}
