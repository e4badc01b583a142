// The one run loop of the project: `ringspec run` (with or without a trace), `vectors check`,
// lockstep, the kernels and the benchmarks all run an engine through it. It stops at the first of:
// the kernel wrote the exit port (docs/devices.md), the machine halted with nothing to wake it or
// shut down, a step the engine cannot take
// (unsupported, memory-limit), the step limit, the wall-clock timeout, or `onStep` asking to stop.
//
// The loop is written once, as a generator that asks for engine calls (`EngineCall`), and driven
// two ways: `runEngine` answers the calls synchronously (an in-process Engine), `runAsyncEngine`
// awaits them (an AsyncEngine, e.g. an emulator in a child process), racing each against the
// timeout. Without a hook the loop makes one `run(n)` call per chunk of steps, the chunk growing
// while calls return quickly, so a fast engine runs in long calls (no per-step cost) and a slow one
// still sees its timeout within a fraction of a second. With `onStep` it steps one at a time and
// hands every step (state before, event, state after) to the hook: traces and lockstep are built
// on that. With `onEvent` it steps one at a time too but hands over only the event, never asking
// the engine for its state (which costs a copy of the machine on some engines): for consumers
// that look at a state now and then (kernel runs: console, checkers, lockstep checkpoints).
import { bytesToHex } from "../contract/hex.ts";
import type { ArchState } from "../contract/state.ts";
import type { AsyncEngine, Engine, EngineEvent, EngineStop, StepView } from "../contract/engine.ts";

export type { StepView } from "../contract/engine.ts";

/** What `onStep` returns: nothing to go on, "stop" to end the run (reason `stopped`). */
export type StepVerdict = void | "stop";

export interface RunLimits {
  /** Steps at most (0 or more). */
  readonly maxSteps: number;
  /** Wall-clock limit in milliseconds for the whole run. */
  readonly timeoutMs: number;
}

export interface RunOptions extends RunLimits {
  readonly onStep?: (step: StepView) => StepVerdict;
  /** Per step, the step's number (1-based) and event only; not together with `onStep`. An
   *  unsupported or memory-limit attempt is handed over too, numbered as the step it would have
   *  been. */
  readonly onEvent?: (step: number, event: EngineEvent) => StepVerdict;
}

export interface AsyncRunOptions extends RunLimits {
  readonly onStep?: (step: StepView) => StepVerdict | Promise<StepVerdict>;
  readonly onEvent?: (step: number, event: EngineEvent) => StepVerdict | Promise<StepVerdict>;
}

export interface RunResult {
  /** Why it stopped, after how many steps, and for a run that could not finish, one line why. */
  readonly stop: EngineStop;
  /** The machine at the stop (for a timeout on an engine that no longer answers: the last state
   *  read from it). */
  readonly state: ArchState;
}

/** Steps the first `run(n)` call may take; later calls double while they take under
 *  CHUNK_FAST_MS, and halve above CHUNK_SLOW_MS. */
const FIRST_CHUNK = 1024;
const MAX_CHUNK = 1 << 26;
const CHUNK_FAST_MS = 10;
const CHUNK_SLOW_MS = 50;

/** The size of the next `run(n)` call after one of `chunk` steps took `tookMs`: the timeout is
 *  checked between calls, so a call should take a few milliseconds whatever the engine's speed. */
export function nextChunk(chunk: number, tookMs: number): number {
  if (tookMs < CHUNK_FAST_MS && chunk < MAX_CHUNK) return chunk * 2;
  if (tookMs > CHUNK_SLOW_MS && chunk > 1) return Math.max(1, chunk >> 1);
  return chunk;
}

/** The engine calls the loop makes; the drivers answer them. */
type EngineCall =
  | { readonly call: "run"; readonly steps: number }
  | { readonly call: "step" }
  | { readonly call: "state" }
  | { readonly call: "onStep"; readonly view: StepView }
  | { readonly call: "onEvent"; readonly step: number; readonly event: EngineEvent };

type Loop = Generator<EngineCall, RunResult, unknown>;

const STEP_CALL: EngineCall = { call: "step" };

/** Typed request helpers (each answer is what the call returns). */
function* runCall(steps: number): Generator<EngineCall, EngineStop, unknown> {
  return (yield { call: "run", steps }) as EngineStop;
}
function* stepCall(): Generator<EngineCall, EngineEvent, unknown> {
  return (yield STEP_CALL) as EngineEvent;
}
function* stateCall(): Generator<EngineCall, ArchState, unknown> {
  return (yield { call: "state" }) as ArchState;
}
function* onStepCall(view: StepView): Generator<EngineCall, StepVerdict, unknown> {
  return (yield { call: "onStep", view }) as StepVerdict;
}

/** One line on why a run could not finish. */
export function stopDetail(stop: EngineStop, timeoutMs: number): string | undefined {
  switch (stop.reason) {
    case "unsupported":
      return stop.event?.kind === "unsupported" ? `${stop.event.reason} (bytes ${bytesToHex(stop.event.bytes) || "none"})` : "unsupported";
    case "memory-limit":
      return stop.event?.reason ?? "memory limit";
    case "timeout":
      return `no stop within ${timeoutMs / 1000} s`;
    case "exit":
      return stop.exitValue === undefined ? undefined : `exit value ${stop.exitValue}`;
    default:
      return undefined;
  }
}

function withDetail(stop: EngineStop, timeoutMs: number): EngineStop {
  const detail = stopDetail(stop, timeoutMs);
  return detail === undefined ? stop : { ...stop, detail };
}

function checkLimits(limits: RunLimits & { readonly onStep?: unknown; readonly onEvent?: unknown }): void {
  if (limits.onStep !== undefined && limits.onEvent !== undefined) throw new RangeError("onStep and onEvent: give one of them");
  if (!Number.isSafeInteger(limits.maxSteps) || limits.maxSteps < 0) throw new RangeError(`maxSteps: expected a whole number >= 0, got ${limits.maxSteps}`);
  if (!(limits.timeoutMs > 0)) throw new RangeError(`timeoutMs: expected a number above 0, got ${limits.timeoutMs}`);
}

/** How far the loop got: the async driver reports it when an engine stops answering. */
interface Progress {
  steps: number;
  state: ArchState | undefined;
}

/** The loop. `deadline` is shared with the async driver, which enforces it on each call too. */
function* loop(options: RunLimits & { readonly hook: "none" | "step" | "event" }, deadline: number, progress: Progress): Loop {
  const { maxSteps, timeoutMs } = options;
  let steps = 0;
  if (options.hook === "event") {
    // The calls of every step, yielded directly and made once (no helper generator and no call
    // object per step: this loop runs once per step of a kernel lockstep run); the onEvent call is
    // rewritten for each step, after its driver has answered the last one.
    const idleCall: EngineCall = { call: "run", steps: 0 };
    const eventCall: { call: "onEvent"; step: number; event: EngineEvent | undefined } = { call: "onEvent", step: 0, event: undefined };
    for (;;) {
      // run(0) steps nothing: it says whether the machine can step (exit, hlt and shutdown come
      // before the limit), without a state.
      const idle = (yield idleCall) as EngineStop;
      if (idle.reason !== "limit") return { stop: withDetail({ ...idle, steps }, timeoutMs), state: yield* stateCall() };
      if (steps >= maxSteps) return { stop: { reason: "limit", steps }, state: yield* stateCall() };
      if ((steps & 255) === 0 && Date.now() > deadline) return { stop: withDetail({ reason: "timeout", steps }, timeoutMs), state: yield* stateCall() };
      const event = (yield STEP_CALL) as EngineEvent;
      eventCall.step = steps + 1;
      eventCall.event = event;
      const verdict = (yield eventCall as EngineCall) as StepVerdict;
      eventCall.event = undefined;
      if (event.kind === "unsupported" || event.kind === "memory-limit")
        return { stop: withDetail({ reason: event.kind, steps, event }, timeoutMs), state: yield* stateCall() };
      progress.steps = ++steps;
      if (verdict === "stop") return { stop: { reason: "stopped", steps }, state: yield* stateCall() };
    }
  }
  if (options.hook === "none") {
    let chunk = FIRST_CHUNK;
    for (;;) {
      const started = Date.now();
      const stop = yield* runCall(Math.min(maxSteps - steps, chunk));
      progress.steps = steps += stop.steps;
      if (stop.reason !== "limit") return { stop: withDetail({ ...stop, steps }, timeoutMs), state: yield* stateCall() };
      // An engine that stops at its limit without stepping cannot make progress: the limit.
      if (steps >= maxSteps || stop.steps === 0) return { stop: { reason: "limit", steps }, state: yield* stateCall() };
      const now = Date.now();
      if (now > deadline) return { stop: withDetail({ reason: "timeout", steps }, timeoutMs), state: yield* stateCall() };
      chunk = nextChunk(chunk, now - started);
    }
  }
  let before = (progress.state = yield* stateCall());
  for (;;) {
    // exit, hlt and shutdown come before the limit (EngineStop). run(0) steps nothing; it is asked
    // only of a halted CPU, the one case the state alone cannot settle (can something wake it?).
    const exitValue = before.devices.exitValue;
    if (exitValue !== null) return { stop: { reason: "exit", steps, exitValue }, state: before };
    if (before.cpu.shutdown) return { stop: { reason: "shutdown", steps }, state: before };
    if (before.cpu.halted) {
      const idle = yield* runCall(0);
      if (idle.reason !== "limit") return { stop: { reason: idle.reason, steps }, state: before };
    }
    if (steps >= maxSteps) return { stop: { reason: "limit", steps }, state: before };
    if (Date.now() > deadline) return { stop: withDetail({ reason: "timeout", steps }, timeoutMs), state: before };
    const event = yield* stepCall();
    const after = (progress.state = yield* stateCall());
    const verdict = yield* onStepCall({ step: steps + 1, before, event, after });
    if (event.kind === "unsupported" || event.kind === "memory-limit")
      return { stop: withDetail({ reason: event.kind, steps, event }, timeoutMs), state: after };
    progress.steps = ++steps;
    if (verdict === "stop") return { stop: { reason: "stopped", steps }, state: after };
    before = after;
  }
}

/** Runs a loaded in-process engine. */
export function runEngine(engine: Engine, options: RunOptions): RunResult {
  checkLimits(options);
  const { onStep, onEvent } = options;
  const hook = onStep !== undefined ? "step" : onEvent !== undefined ? "event" : "none";
  const it = loop({ ...options, hook }, Date.now() + options.timeoutMs, { steps: 0, state: undefined });
  let answer: unknown;
  for (;;) {
    const next = it.next(answer);
    if (next.done === true) return next.value;
    const request = next.value;
    switch (request.call) {
      case "run":
        answer = engine.run(request.steps);
        break;
      case "step":
        answer = engine.step();
        break;
      case "state":
        answer = engine.state();
        break;
      case "onStep":
        answer = onStep!(request.view);
        break;
      case "onEvent":
        answer = onEvent!(request.step, request.event);
        break;
    }
  }
}

class Timeout {}

/** Runs a loaded AsyncEngine. An engine that does not answer before the deadline ends the run
 *  with `timeout` (the caller should then close it). */
export async function runAsyncEngine(engine: AsyncEngine, options: AsyncRunOptions): Promise<RunResult> {
  checkLimits(options);
  const { onStep, onEvent } = options;
  const hook = onStep !== undefined ? "step" : onEvent !== undefined ? "event" : "none";
  const deadline = Date.now() + options.timeoutMs;
  const call = async <T>(pending: Promise<T>): Promise<T | Timeout> => beforeDeadline(pending, deadline);
  // The state at the start: what a timeout reports if the engine never answers again.
  const initial = await call(engine.state());
  if (initial instanceof Timeout) throw new Error(`${engine.capabilities.name}: no answer within ${options.timeoutMs / 1000} s`);
  const progress: Progress = { steps: 0, state: initial };
  const it = loop({ ...options, hook }, deadline, progress);
  let answer: unknown;
  for (;;) {
    const next = it.next(answer);
    if (next.done === true) return next.value;
    const request = next.value;
    switch (request.call) {
      case "run":
        answer = await call(engine.run(request.steps));
        break;
      case "step":
        answer = await call(engine.step());
        break;
      case "state":
        answer = await call(engine.state());
        break;
      case "onStep":
        answer = await onStep!(request.view);
        break;
      case "onEvent":
        answer = await onEvent!(request.step, request.event);
        break;
    }
    if (answer instanceof Timeout) {
      it.return(undefined as never);
      const detail = `${engine.capabilities.name} did not answer within ${options.timeoutMs / 1000} s`;
      return { stop: { reason: "timeout", steps: progress.steps, detail }, state: progress.state ?? initial };
    }
  }
}

/** `pending`, or a Timeout once the deadline has passed (the timer never outlives the race). */
async function beforeDeadline<T>(pending: Promise<T>, deadline: number): Promise<T | Timeout> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<Timeout>((resolve) => {
    // A Node timer waits at most 2^31 - 1 ms (24.8 days); a longer wait would fire at once.
    timer = setTimeout(() => resolve(new Timeout()), Math.min(0x7fffffff, Math.max(0, deadline - Date.now())));
  });
  try {
    return await Promise.race([pending, expired]);
  } finally {
    clearTimeout(timer);
  }
}
