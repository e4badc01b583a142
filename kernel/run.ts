// Running a kernel: boot state in, console out, until the kernel writes the exit port or a limit
// stops it. Each run has a step limit, a wall-clock timeout and a console cap (untrusted kernels).
// The devices come from kernel/devices (docs/devices.md) around the engine. With `lockstep`,
// spec and impl run side by side and must agree at every step.
import type { EngineEvent, StepView } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { hex } from "../contract/hex.ts";
import { ExternalDevices } from "./devices/external.ts";
import { boundaryInstruction } from "../spec/context/index.ts";
import { compareStates, createEngine, describeEvent, unionRanges, type FieldDifference, type KernelEngineName } from "./engines.ts";

export type KernelStopReason =
  | "exit" // the kernel wrote the exit port: the run's result is `exitValue`
  | "hlt" // halted with nothing that can wake it
  | "shutdown" // triple fault
  | "limit" // the step limit
  | "timeout"
  | "unsupported" // an instruction outside the model (its bytes are in `detail`)
  | "memory-limit"
  | "console-limit" // the kernel wrote more than its console cap
  | "diverged"; // lockstep: spec and impl disagreed

/** Watches a run step by step (the context-switch checker is one). */
export interface StepObserver {
  /** Whether `observe` needs the state after this step (states cost time on some engines). */
  wantsState(event: EngineEvent): boolean;
  observe(step: number, event: EngineEvent, after: ArchState | undefined): void;
}

export interface KernelRunOptions {
  readonly engine: KernelEngineName;
  readonly profile: ProfileName;
  readonly maxSteps: number;
  readonly timeoutMs: number;
  /** Console bytes at most; more stops the run with `console-limit`. */
  readonly consoleLimit: number;
  /** Console bytes as they are written (streaming). */
  readonly onConsole?: (bytes: Uint8Array) => void;
  readonly observer?: StepObserver;
  /** Run spec and impl side by side (`engine` is then the one whose state is reported). */
  readonly lockstep?: boolean;
  /** Lockstep: compare whole states every N steps (1, the default: every step), and always at
   *  deliveries, I/O, boundary instructions and the end; events are compared at every step. */
  readonly lockstepEvery?: number;
  /** Hands every step in [from, to] (1-based, inclusive) with its states before and after to
   *  `onStep` (the trace records of trace/ are built from these). */
  readonly trace?: { readonly from: number; readonly to: number; readonly onStep: (view: StepView) => void };
}

export interface KernelDivergence {
  readonly step: number;
  readonly rip: bigint;
  readonly spec: string;
  readonly impl: string;
  readonly differences: readonly FieldDifference[];
}

export interface KernelRunResult {
  readonly stop: KernelStopReason;
  readonly exitValue?: number;
  /** Steps taken (instructions and events delivered at boundaries). */
  readonly steps: number;
  /** Instructions that completed (the timer's count, docs/devices.md). */
  readonly instructions: number;
  readonly console: Uint8Array;
  readonly state: ArchState;
  /** The event that stopped the run (unsupported, memory-limit). */
  readonly event?: EngineEvent;
  /** One line on why the run could not finish. */
  readonly detail?: string;
  readonly elapsedMs: number;
  /** Lockstep: the steps whose events were compared, the steps whose whole states were, and the
   *  first disagreement. */
  readonly compared?: number;
  readonly comparedStates?: number;
  readonly divergence?: KernelDivergence;
}

function stopOf(engine: ExternalDevices): "hlt" | "shutdown" | undefined {
  const idle = engine.run(0);
  return idle.reason === "hlt" || idle.reason === "shutdown" ? idle.reason : undefined;
}

export function runKernel(initial: ArchState, options: KernelRunOptions): KernelRunResult {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const main = new ExternalDevices(createEngine(options.engine));
  main.load(initial, options.profile);
  const other = options.lockstep === true ? new ExternalDevices(createEngine(options.engine === "spec" ? "impl" : "spec")) : undefined;
  other?.load(initial, options.profile);

  const chunks: Uint8Array[] = [];
  let consoleBytes = 0;
  let steps = 0;
  let instructions = 0;
  let mayIdle = initial.cpu.halted || initial.cpu.shutdown;
  let lastCpl = initial.cs.selector & 3;
  let comparedStates = 0;
  const every = Math.max(1, options.lockstepEvery ?? 1);
  const finish = (stop: KernelStopReason, extra: Partial<KernelRunResult> = {}): KernelRunResult => {
    const state = main.state();
    const result: KernelRunResult = {
      stop, steps, instructions, console: concat(chunks), state, elapsedMs: Date.now() - started,
      ...(other !== undefined ? { compared: steps, comparedStates: comparedStates + 1 } : {}),
      ...(main.devices.exitValue !== null ? { exitValue: main.devices.exitValue } : {}),
      ...extra,
    };
    if (other === undefined || stop === "diverged") return result;
    // The end of a lockstep run: everything, memory included, and the devices.
    const differences = compareStates(state, other.state(), unionRanges(main.touched(), other.touched()));
    if (main.devices.exitValue !== other.devices.exitValue)
      differences.push({ field: "devices.exit_value", a: String(main.devices.exitValue), b: String(other.devices.exitValue) });
    if (differences.length === 0) return result;
    return { ...result, stop: "diverged", detail: `spec and impl disagree at the end of the run (step ${steps})`,
      divergence: { step: steps, rip: state.rip, spec: "final state", impl: "final state", differences } };
  };

  for (;;) {
    if (main.exited) return finish("exit");
    if (mayIdle) {
      const idle = stopOf(main);
      if (idle !== undefined) return finish(idle);
    }
    if (steps >= options.maxSteps) return finish("limit");
    if ((steps & 1023) === 0 && Date.now() > deadline) return finish("timeout", { detail: `no stop within ${options.timeoutMs / 1000} s` });

    const traced = options.trace !== undefined && steps + 1 >= options.trace.from && steps + 1 <= options.trace.to;
    const before = traced ? main.state() : undefined;
    const event = main.step();
    if (event.kind === "unsupported")
      return finish("unsupported", { event, detail: `${event.reason}${/\bbytes\b/.test(event.reason) ? "" : ` (bytes ${bytesHex(event.bytes)})`} at ${hex(event.rip)}` });
    if (event.kind === "memory-limit") return finish("memory-limit", { event, detail: event.reason });
    steps++;
    if (event.kind === "retired" || event.kind === "io" || event.kind === "halted") instructions++;
    mayIdle = event.kind === "halted" || event.kind === "shutdown";

    let after: ArchState | undefined;
    if (other !== undefined) {
      const otherEvent = other.step();
      const mine = describeEvent(event);
      const theirs = describeEvent(otherEvent);
      const bytes = event.instruction?.bytes;
      const checkpoint = steps % every === 0 || event.kind === "delivered" || event.kind === "io" || bytes === undefined || boundaryInstruction(bytes) !== "other";
      let differences: FieldDifference[] = [];
      if (checkpoint) {
        after = main.state();
        const otherState = other.state();
        // Memory (all of it either engine wrote) at deliveries and privilege changes, where a
        // kernel's bugs surface; registers, segments and CPU state at every checkpoint.
        const cpl = after.cs.selector & 3;
        const full = event.kind === "delivered" || cpl !== lastCpl;
        lastCpl = cpl;
        differences = compareStates(after, otherState, full ? unionRanges(main.touched(), other.touched()) : []);
        comparedStates++;
      }
      if (mine !== theirs || differences.length > 0) {
        const [spec, impl] = options.engine === "spec" ? [mine, theirs] : [theirs, mine];
        return finish("diverged", { divergence: { step: steps, rip: event.rip, spec, impl, differences }, detail: `spec and impl disagree at step ${steps}` });
      }
    }

    if (event.kind === "io") {
      const bytes = main.takeConsole();
      if (other !== undefined) other.takeConsole();
      if (bytes.length > 0) {
        const room = options.consoleLimit - consoleBytes;
        const kept = bytes.length > room ? bytes.subarray(0, Math.max(0, room)) : bytes;
        if (kept.length > 0) {
          chunks.push(kept);
          consoleBytes += kept.length;
          options.onConsole?.(kept);
        }
        if (bytes.length > room) return finish("console-limit", { detail: `the kernel wrote more than ${options.consoleLimit} console bytes` });
      }
    }

    if (before !== undefined) {
      after ??= main.state();
      options.trace!.onStep({ step: steps, before, event, after });
    }

    const observer = options.observer;
    if (observer !== undefined) {
      if (after === undefined && observer.wantsState(event)) after = main.state();
      observer.observe(steps, event, after);
    }
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function bytesHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}
