// Running a kernel: boot state in, console out, until the kernel writes the exit port or a limit
// stops it. Each run has a step limit, a wall-clock timeout and a console cap (untrusted kernels).
// The devices (docs/devices.md) are the engine's own where it has them, else kernel/devices' model
// around it (kernel/engines.ts). With `lockstep`, spec and impl run side by side and must agree at
// every step.
import { ALL_MEMORY, peekedState, type EngineEvent, type StepView, type StopReason } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { hex } from "../contract/hex.ts";
import { boundaryInstruction } from "../spec/context/index.ts";
import { runEngine, type StepVerdict } from "../engines/runner.ts";
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
  /** Lockstep: watches the other engine's steps (its own events, and its own whole state when it
   *  asks), as `observer` watches `engine`'s; the result's `other` is then that engine's own run. */
  readonly otherObserver?: StepObserver;
  /** Lockstep: compare whole states every N steps (1, the default: every step), and always at
   *  deliveries, I/O, boundary instructions and the end; events are compared at every step. */
  readonly lockstepEvery?: number;
  /** Hands every step in [from, to] (1-based, inclusive) with its states before and after to
   *  `onStep` (the trace records of trace/ are built from these). */
  readonly trace?: { readonly from: number; readonly to: number; readonly onStep: (view: StepView) => void };
  /** Guest memory the kernel may write, in bytes (default KERNEL_MEMORY_LIMIT): checked every
   *  MEMORY_CHECK_EVERY steps, so a kernel that writes page after page (the engines model the whole
   *  physical address space, not just the loader's memory_size) stops with `memory-limit`. */
  readonly memoryLimitBytes?: number;
}

/** impl's own page budget (256 MiB), for every engine: spec has none of its own. */
export const KERNEL_MEMORY_LIMIT = 256 * 1024 * 1024;
/** How often a run counts the memory its kernel has written (a count costs a walk of its pages). */
export const MEMORY_CHECK_EVERY = 16_384;

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
  /** Wall-clock milliseconds the run took (fractional: a quick run is not rounded to 0). */
  readonly elapsedMs: number;
  /** Lockstep: the steps whose events were compared, the steps whose whole states were, and the
   *  first disagreement. */
  readonly compared?: number;
  readonly comparedStates?: number;
  readonly divergence?: KernelDivergence;
  /** Lockstep with `otherObserver`: the other engine's own run, from its own events, console and
   *  state (the stop is the lockstep's: at its end the other engine was asked whether it stops
   *  there too). */
  readonly other?: Pick<KernelRunResult, "stop" | "exitValue" | "steps" | "instructions" | "console" | "state" | "elapsedMs">;
}

/** A step that completed an instruction: what the timer counts (docs/devices.md, What counts). */
function completedInstruction(event: EngineEvent): boolean {
  return event.kind === "retired" || event.kind === "io" || (event.kind === "halted" && event.instruction !== undefined);
}

/** One line on an instruction an engine does not model. */
function unsupportedDetail(event: Extract<EngineEvent, { kind: "unsupported" }>): string {
  return `${event.reason}${/\bbytes\b/.test(event.reason) ? "" : ` (bytes ${bytesHex(event.bytes)})`} at ${hex(event.rip)}`;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Runs a kernel through the one run loop (engines/runner.ts), one step at a time with its events
 * (`onEvent`, no state per step): the console is taken after each I/O step, the observer and the
 * trace window ask for states when they need them, and with `lockstep` the other engine takes the
 * same step and must agree. The run ends at the kernel's exit write, an idle CPU, a shutdown, the
 * step limit, the timeout, an instruction an engine does not model, the console cap, or a
 * divergence.
 */
export function runKernel(initial: ArchState, options: KernelRunOptions): KernelRunResult {
  const started = performance.now();
  const otherName: KernelEngineName = options.engine === "spec" ? "impl" : "spec";
  const main = createEngine(options.engine);
  main.load(initial, options.profile);
  const other = options.lockstep === true ? createEngine(otherName) : undefined;
  other?.load(initial, options.profile);

  const chunks: Uint8Array[] = [];
  let consoleBytes = 0;
  let instructions = 0;
  const otherObserver = other !== undefined ? options.otherObserver : undefined;
  const otherChunks: Uint8Array[] = [];
  let otherInstructions = 0;
  let lastCpl = initial.cs.selector & 3;
  let comparedStates = 0;
  const every = Math.max(1, options.lockstepEvery ?? 1);
  /** Why `onEvent` stopped the run, when it did. */
  let ended: Partial<KernelRunResult> & { stop: KernelStopReason } | undefined;
  const trace = options.trace;
  /** The state before the next step, kept while the next step is in the trace window. */
  let before: ArchState | undefined = trace !== undefined && trace.from <= 1 ? initial : undefined;
  const sides = (mine: string, theirs: string) => (options.engine === "spec" ? { spec: mine, impl: theirs } : { spec: theirs, impl: mine });
  // The states compared and observed at a step are read within that step and kept by nothing (the
  // checker keeps values, not states): the engine's own pages where it can hand them out without
  // a copy (Engine.peekState, all memory). For spec this also leaves its working copy its pages:
  // after a state(), the next write to each page copies it again and the code-page memo starts
  // over, which cost more than the state itself (every 16 steps of the C kernel's lockstep). A
  // trace window keeps states past their step: there, real states.
  const stateNow = (): ArchState => (trace === undefined ? peekedState(main, ALL_MEMORY) : main.state());

  const onEvent = (step: number, event: EngineEvent): StepVerdict => {
    if (event.kind === "unsupported" || event.kind === "memory-limit") return undefined; // the runner ends the run
    if (completedInstruction(event)) instructions++;

    let after: ArchState | undefined;
    const bytes = main.takeConsole();
    if (other !== undefined) {
      const otherEvent = other.step();
      const otherBytes = other.takeConsole();
      if (otherEvent.kind === "memory-limit") {
        ended = { stop: "memory-limit", steps: step - 1, event: otherEvent, detail: `${otherName}: ${otherEvent.reason}` };
        return "stop";
      }
      if (otherEvent.kind === "unsupported") {
        // The other engine does not model this instruction: lockstep cannot go on (not a divergence).
        // The steps both engines took: the other's attempt is no step.
        ended = { stop: "unsupported", steps: step - 1, event: otherEvent, detail: `${otherName}: ${unsupportedDetail(otherEvent)}` };
        return "stop";
      }
      // Events as describeEvent's lines, compared without making them for the usual step (both
      // retired: the line is "retired at RIP", equal exactly when the RIPs are).
      const sameEvent = event.kind === "retired" && otherEvent.kind === "retired" ? event.rip === otherEvent.rip : describeEvent(event) === describeEvent(otherEvent);
      const instruction = event.instruction?.bytes;
      const checkpoint = step % every === 0 || event.kind === "delivered" || event.kind === "io" || instruction === undefined || boundaryInstruction(instruction) !== "other";
      let differences: FieldDifference[] = [];
      if (checkpoint) {
        after = stateNow();
        // Memory (all of it either engine wrote) at deliveries and privilege changes, where a
        // kernel's bugs surface; registers, segments, CPU and device state at every checkpoint.
        const cpl = after.cs.selector & 3;
        const full = event.kind === "delivered" || cpl !== lastCpl;
        lastCpl = cpl;
        const ranges = full ? unionRanges(main.touched(), other.touched()) : [];
        // The other engine hands out only the memory compared (Engine.state's ranges).
        differences = compareStates(after, peekedState(other, ranges), ranges);
        comparedStates++;
      }
      if (!sameBytes(bytes, otherBytes)) differences.push({ field: "console", a: bytesHex(bytes), b: bytesHex(otherBytes) });
      if (!sameEvent || differences.length > 0) {
        ended = { stop: "diverged", divergence: { step, rip: event.rip, ...sides(describeEvent(event), describeEvent(otherEvent)), differences }, detail: `spec and impl disagree at step ${step}` };
        return "stop";
      }
      if (otherObserver !== undefined) {
        // The other engine's run as its own: its events, its console, its whole state when its
        // checker asks for it (the checker reads page tables, so not the checkpoint's ranges).
        if (completedInstruction(otherEvent)) otherInstructions++;
        if (otherBytes.length > 0) otherChunks.push(otherBytes);
        otherObserver.observe(step, otherEvent, otherObserver.wantsState(otherEvent) ? other.state() : undefined);
      }
    }

    if (bytes.length > 0) {
      const room = options.consoleLimit - consoleBytes;
      const kept = bytes.length > room ? bytes.subarray(0, Math.max(0, room)) : bytes;
      if (kept.length > 0) {
        chunks.push(kept);
        consoleBytes += kept.length;
        options.onConsole?.(kept);
      }
      if (bytes.length > room) {
        ended = { stop: "console-limit", detail: `the kernel wrote more than ${options.consoleLimit} console bytes` };
        return "stop";
      }
    }

    if (trace !== undefined) {
      if (before !== undefined && step >= trace.from && step <= trace.to) {
        after ??= main.state();
        trace.onStep({ step, before, event, after });
      }
      before = step + 1 >= trace.from && step + 1 <= trace.to ? (after ?? main.state()) : undefined;
    }

    if (step % MEMORY_CHECK_EVERY === 0) {
      const limit = options.memoryLimitBytes ?? KERNEL_MEMORY_LIMIT;
      const written = main.touched().reduce((n, r) => n + Number(r.end - r.start), 0);
      if (written > limit) {
        ended = { stop: "memory-limit", detail: `the kernel wrote to ${written / 1024} KiB of guest memory, more than its ${limit / 1024} KiB` };
        return "stop";
      }
    }

    const observer = options.observer;
    if (observer !== undefined) {
      if (after === undefined && observer.wantsState(event)) after = stateNow();
      observer.observe(step, event, after);
    }
    return undefined;
  };

  const run = runEngine(main, { maxSteps: options.maxSteps, timeoutMs: options.timeoutMs, onEvent });
  const stop = run.stop;
  const state = run.state;
  const steps = stop.steps;
  const base = {
    steps, instructions, console: concat(chunks), state, elapsedMs: performance.now() - started,
    ...(other !== undefined ? { compared: steps, comparedStates: comparedStates + 1 } : {}),
    ...(state.devices.exitValue !== null ? { exitValue: state.devices.exitValue } : {}),
  };
  if (ended !== undefined) return { ...base, ...ended };
  const result: KernelRunResult =
    stop.reason === "unsupported" && stop.event?.kind === "unsupported"
      ? { ...base, stop: "unsupported", event: stop.event, detail: unsupportedDetail(stop.event) }
      : stop.reason === "memory-limit" && stop.event !== undefined
        ? { ...base, stop: "memory-limit", event: stop.event, detail: stop.event.reason }
        : { ...base, stop: kernelStop(stop.reason), ...(stop.reason === "timeout" && stop.detail !== undefined ? { detail: stop.detail } : {}) };
  if (other === undefined) return result;
  // The end of a lockstep run: everything, memory and devices included.
  const otherState = other.state();
  const differences = compareStates(state, otherState, unionRanges(main.touched(), other.touched()));
  // A run that ended idle (exit, hlt, shutdown): the other engine, asked as the runner asks,
  // must stop there too (run(0) steps nothing).
  if (stop.reason === "exit" || stop.reason === "hlt" || stop.reason === "shutdown") {
    const otherStop = other.run(0).reason;
    if (otherStop !== stop.reason) differences.push({ field: "run.stop", a: stop.reason, b: otherStop });
  }
  if (differences.length === 0) {
    if (otherObserver === undefined) return result;
    return { ...result, other: {
      stop: result.stop, steps, instructions: otherInstructions, console: concat(otherChunks), state: otherState, elapsedMs: result.elapsedMs,
      ...(otherState.devices.exitValue !== null ? { exitValue: otherState.devices.exitValue } : {}),
    } };
  }
  return { ...result, stop: "diverged", detail: `spec and impl disagree at the end of the run (step ${steps})`,
    divergence: { step: steps, rip: state.rip, spec: "final state", impl: "final state", differences } };
}

function kernelStop(reason: StopReason): KernelStopReason {
  switch (reason) {
    case "exit": case "hlt": case "shutdown": case "limit": case "timeout": case "unsupported": case "memory-limit":
      return reason;
    case "stopped":
      throw new Error("runKernel: the run stopped without a reason");
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
