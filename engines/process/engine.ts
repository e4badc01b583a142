// An engine in another process, driven over the JSON-lines protocol (protocol.ts): `--engine
// process --cmd "..."` and `conform --b process --cmd "..."`. The command runs under `sh -c` in a
// process group of its own, so that ending it ends everything it started.
//
// The engine under test is not trusted. Every answer is validated; a request gets no more than
// `requestTimeoutMs`; an answer with the wrong id (out of order), a line that is not JSON, a
// child that exits (with or without half a line written) or a write that fails each end the
// engine with an EngineError saying why (`timeout`, `protocol`, `crash`). After that every call
// fails at once: the caller reports the case and opens a new engine.
//
// Every caller reads the state after a step (the runner's loop, lockstep): with an engine that says
// `step_state`, step() asks for the touched ranges and the state with the event, in one exchange,
// and the touched() and state() that follow are answered from it (until a request that may write).
// A caller that promises nothing but steps until the next load (expectSteps: a lockstep without
// raises) gets them from one `steps` exchange with an engine that says `steps_state`.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import type { z } from "zod";
import type { AsyncEngine, EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { PAGE_SIZE, type ArchState } from "../../contract/state.ts";
import { EngineError } from "../host/errors.ts";
import {
  PROTOCOL_VERSION, RESULTS, ResponseJson, STEP_STATE_RESULT, STEPS_STATE_RESULT, capabilitiesFromJson, eventFromJson, firstIssue, raiseToJson, rangeFromJson, rangeToJson,
  stateFromProtocol, stateToProtocol, stopFromJson, type Method,
} from "./protocol.ts";

export interface ProcessEngineOptions {
  /** A shell command line (run with `sh -c`). */
  readonly command: string;
  /** Start-up and the `hello` answer (default 10 s). */
  readonly startTimeoutMs?: number;
  /** Any other answer (default 10 s). */
  readonly requestTimeoutMs?: number;
  readonly cwd?: string;
}

/** Longest answer line accepted (a whole guest memory in hex fits). */
const MAX_LINE = 512 << 20;

/** Most steps asked for in one `steps` exchange ahead of the caller: a case usually ends within a
 *  few steps, and the steps the caller does not take (after a divergence) are wasted. */
const MAX_AHEAD = 16;

const live = new Set<ChildProcess>();
let hooked = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone already
    }
  }
}

function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const child of live) killGroup(child);
  });
}

/** Engine processes of this kind still alive (tests check none is left behind). */
export function liveProcessEngines(): number {
  return live.size;
}

interface Pending {
  readonly id: number;
  readonly method: Method;
  /** What the result must be. */
  readonly result: z.ZodType;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: EngineError) => void;
  readonly timer: NodeJS.Timeout;
}

export class ProcessEngine implements AsyncEngine {
  private nextId = 1;
  private pending: Pending | null = null;
  private buffer = "";
  private broken: EngineError | null = null;
  /** The last `touched` answer, kept until a request that may write (anything but `state` and
   *  `touched`): a lockstep asks for it twice a step (its comparison, and state() here). */
  private touchedAnswer: readonly PhysicalRange[] | undefined;
  /** The state a `step` with `{"state": true}` answered, kept as the `touched` answer is. */
  private stateAnswer: ArchState | undefined;
  /** Requests that may write, so far (a `touched` or state answer is kept only if none came
   *  meanwhile). */
  private writeRequests = 0;
  /** The engine answers `step` with `{"state": true}` (its hello says `step_state` and `touched`). */
  private stepState = false;
  /** It answers `steps` with `{"n": N, "state": true}` too (its hello also says `steps_state`). */
  private stepsState = false;
  /** Steps more the caller may take before the next load (expectSteps). */
  private lookahead = 0;
  /** Steps the engine ran ahead of the caller (a `steps` answer), and how many step() handed out. */
  private ahead: readonly z.output<typeof STEP_STATE_RESULT>[] = [];
  private aheadTaken = 0;
  private stderrTail: string[] = [];
  private exited = false;
  private readonly exit: Promise<void>;
  private capabilitiesValue: EngineCapabilities = { name: "process", profiles: ["intel", "amd"], singleStep: true, raise: true, touched: true, unobservable: [] };
  /** The memory of the loaded state: the base that `state()` updates with what the engine wrote. */
  private loadedPages: ReadonlyMap<number, Uint8Array> = new Map();

  private constructor(private readonly child: ChildProcess, private readonly options: ProcessEngineOptions) {
    this.exit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exited = true;
        live.delete(child);
        // "exit" can come before the child's last output has been read: let stdout (a last
        // answer) and stderr (the reason) drain first, bounded, since a grandchild may hold them.
        void drained([child.stdout, child.stderr], 250).then(() => {
          const how = signal !== null ? `was killed by ${signal}` : killedThroughShell(code) ?? `exited with status ${code}`;
          const half = this.buffer.length > 0 ? " in the middle of an answer" : "";
          this.fail(new EngineError("crash", `the engine ${how}${half}${this.stderrText()}`));
          resolve();
        });
      });
    });
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => this.received(chunk));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderrTail.push(chunk);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    child.stdin!.on("error", () => {
      // EPIPE: the exit handler reports it.
    });
  }

  /** Starts the command and exchanges `hello`. Throws EngineError("start") when it cannot. */
  static async start(options: ProcessEngineOptions): Promise<ProcessEngine> {
    installExitHook();
    const child = spawn("sh", ["-c", options.command], { cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"], detached: true });
    live.add(child);
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", (e) => {
        live.delete(child);
        reject(new EngineError("start", `sh: ${e.message}`));
      });
    });
    const engine = new ProcessEngine(child, options);
    try {
      const hello = (await engine.request("hello", { protocol: PROTOCOL_VERSION, client: "ringspec" }, options.startTimeoutMs ?? 10_000)) as z.output<typeof RESULTS.hello>;
      engine.capabilitiesValue = capabilitiesFromJson(hello);
      engine.stepState = hello.step_state && hello.touched;
      engine.stepsState = engine.stepState && hello.steps_state;
    } catch (e) {
      await engine.close();
      const why = e instanceof EngineError ? e.message : String(e);
      throw new EngineError("start", `${options.command}: no usable hello: ${why}`);
    }
    return engine;
  }

  get capabilities(): EngineCapabilities {
    return this.capabilitiesValue;
  }

  private stderrText(): string {
    const text = this.stderrTail.join("").trim().split("\n").slice(-3).join(" | ");
    return text === "" ? "" : ` (stderr: ${text.slice(0, 500)})`;
  }

  /** Ends the engine: the pending request (if any) and every later one fail with `error`. */
  private fail(error: EngineError): void {
    if (this.broken === null) this.broken = error;
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      clearTimeout(p.timer);
      p.reject(this.broken);
    }
    if (!this.exited) killGroup(this.child);
  }

  private received(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const newline = this.buffer.indexOf("\n");
      if (newline === -1) {
        if (this.buffer.length > MAX_LINE) this.fail(new EngineError("protocol", `an answer line longer than ${MAX_LINE} bytes`));
        return;
      }
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() !== "") this.line(line);
      if (this.broken !== null) return;
    }
  }

  private line(line: string): void {
    const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return this.fail(new EngineError("protocol", `not a JSON answer: ${JSON.stringify(shown)}`));
    }
    const envelope = ResponseJson.safeParse(value);
    if (!envelope.success) return this.fail(new EngineError("protocol", `not an answer (${firstIssue(envelope.error)}): ${JSON.stringify(shown)}`));
    const p = this.pending;
    if (p === null) return this.fail(new EngineError("protocol", `an answer (id ${envelope.data.id}) to no request`));
    if (envelope.data.id !== p.id) return this.fail(new EngineError("protocol", `answers out of order: expected id ${p.id} (${p.method}), got id ${envelope.data.id}`));
    this.pending = null;
    clearTimeout(p.timer);
    if ("error" in envelope.data) {
      // The engine refused the request: it is still usable, but this call fails.
      p.reject(new EngineError("protocol", `${p.method}: the engine answered an error: ${envelope.data.error.message}`));
      return;
    }
    const result = p.result.safeParse(envelope.data.result);
    if (!result.success) {
      // No longer pending: fail() cannot reach this call, so it is rejected here (it used to wait
      // for ever).
      this.fail(new EngineError("protocol", `${p.method}: bad answer: result.${firstIssue(result.error)}`));
      p.reject(this.broken!);
      return;
    }
    p.resolve(result.data);
  }

  private request(method: Method, params: unknown, timeoutMs = this.options.requestTimeoutMs ?? 10_000, result: z.ZodType = RESULTS[method]): Promise<unknown> {
    if (this.broken !== null) return Promise.reject(this.broken);
    if (this.pending !== null) return Promise.reject(new EngineError("usage", `${method} while ${this.pending.method} is pending`));
    // The engine is where the last step it ran ahead left it, not where the caller is.
    if (this.aheadTaken < this.ahead.length && method !== "load") return Promise.reject(new EngineError("usage", `${method} while ${this.ahead.length - this.aheadTaken} steps run ahead (expectSteps) are not taken`));
    if (method !== "state" && method !== "touched") {
      this.touchedAnswer = undefined;
      this.stateAnswer = undefined;
      this.writeRequests++;
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new EngineError("timeout", `${method}: no answer within ${timeoutMs / 1000} s${this.stderrText()}`)), timeoutMs);
      this.pending = { id, method, result, resolve, reject, timer };
      const message = params === undefined ? { id, method } : { id, method, params };
      this.child.stdin!.write(JSON.stringify(message) + "\n");
    });
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    this.lookahead = 0;
    this.ahead = [];
    this.aheadTaken = 0;
    this.loadedPages = state.memory;
    await this.request("load", { state: stateToProtocol(state), profile });
  }

  expectSteps(n: number): void {
    this.lookahead = n;
  }

  async step(): Promise<EngineEvent> {
    this.lookahead = Math.max(0, this.lookahead - 1);
    if (this.aheadTaken < this.ahead.length) {
      const i = this.aheadTaken++;
      return this.stepTaken(this.ahead[i]!, "steps", `result.steps[${i}]`);
    }
    if (!this.stepState) {
      const r = (await this.request("step", undefined)) as z.output<typeof RESULTS.step>;
      return eventFromJson(r.event);
    }
    if (this.stepsState && this.lookahead > 0) {
      // This step and the ones promised after it, in one exchange.
      const n = Math.min(this.lookahead + 1, MAX_AHEAD);
      const pending = this.request("steps", { n, state: true }, undefined, STEPS_STATE_RESULT);
      const sent = this.writeRequests;
      const r = (await pending) as z.output<typeof STEPS_STATE_RESULT>;
      if (r.steps.length > n) throw this.protocolError(`steps: ${r.steps.length} steps for n = ${n}`);
      if (this.writeRequests !== sent) throw new EngineError("usage", "steps: another request came in between");
      this.ahead = r.steps;
      this.aheadTaken = 1;
      return this.stepTaken(r.steps[0]!, "steps", "result.steps[0]");
    }
    const pending = this.request("step", { state: true }, undefined, STEP_STATE_RESULT);
    const sent = this.writeRequests;
    const r = (await pending) as z.output<typeof STEP_STATE_RESULT>;
    const event = this.stepTaken(r, "step", "result");
    if (this.writeRequests !== sent) {
      // Another request came in meanwhile: what this step answered may be stale.
      this.touchedAnswer = undefined;
      this.stateAnswer = undefined;
    }
    return event;
  }

  /** The event of a step answered with its state; its touched ranges and state are kept for the
   *  touched() and state() that follow. */
  private stepTaken(r: z.output<typeof STEP_STATE_RESULT>, method: Method, path: string): EngineEvent {
    const event = eventFromJson(r.event);
    const ranges = r.touched.map(rangeFromJson);
    // As state() would have it: the loaded memory with the pages the ranges reach read back.
    this.stateAnswer = this.withTouchedPages(this.decodeState(r, method, path), wholePages(ranges));
    this.touchedAnswer = ranges;
    return event;
  }

  async steps(n: number): Promise<readonly EngineEvent[]> {
    if (n <= 0) return [];
    const r = (await this.request("steps", { n })) as z.output<typeof RESULTS.steps>;
    if (r.events.length > n) throw this.protocolError(`steps: ${r.events.length} events for n = ${n}`);
    return r.events.map(eventFromJson);
  }

  async run(maxSteps: number): Promise<EngineStop> {
    const r = (await this.request("run", { max_steps: maxSteps })) as z.output<typeof RESULTS.run>;
    if (r.stop.steps > maxSteps) throw this.protocolError(`run: ${r.stop.steps} steps for max_steps = ${maxSteps}`);
    return stopFromJson(r.stop);
  }

  /** The state; memory is the loaded state's with every page the engine says it wrote read back
   *  (or, for an engine that does not report writes, all of its memory). */
  async state(): Promise<ArchState> {
    if (this.stateAnswer !== undefined && this.broken === null && this.pending === null) return this.stateAnswer;
    if (!this.capabilitiesValue.touched) return this.decodeState(await this.request("state", undefined));
    const ranges = await this.touched();
    const pages = wholePages(ranges);
    const answer = await this.request("state", { memory: pages.map((n) => rangeToJson({ start: BigInt(n) * 4096n, end: BigInt(n + 1) * 4096n })) });
    return this.withTouchedPages(this.decodeState(answer), pages);
  }

  /** `got` with the memory of the loaded state, but for `pages` (the pages written), read from `got`. */
  private withTouchedPages(got: ArchState, pages: readonly number[]): ArchState {
    const memory = new Map(this.loadedPages);
    for (const n of pages) memory.set(n, got.memory.get(n) ?? new Uint8Array(PAGE_SIZE));
    return { ...got, memory };
  }

  /** The state of an answer; `path` names where it stands in the answer, for the error. */
  private decodeState(answer: unknown, method: Method = "state", path = "result"): ArchState {
    try {
      return stateFromProtocol((answer as z.output<typeof RESULTS.state>).state);
    } catch (e) {
      throw this.protocolError(`${method}: bad answer: ${path}.${(e as Error).message}`);
    }
  }

  async raise(event: RaiseRequest): Promise<void> {
    await this.request("raise", raiseToJson(event));
  }

  async touched(): Promise<readonly PhysicalRange[]> {
    if (this.touchedAnswer !== undefined && this.broken === null && this.pending === null) return this.touchedAnswer;
    const before = this.writeRequests;
    const r = (await this.request("touched", undefined)) as z.output<typeof RESULTS.touched>;
    const ranges = r.ranges.map(rangeFromJson);
    if (this.writeRequests === before) this.touchedAnswer = ranges;
    return ranges;
  }

  private protocolError(message: string): EngineError {
    const error = new EngineError("protocol", message);
    this.fail(error);
    return error;
  }

  async close(): Promise<void> {
    if (this.broken === null) this.broken = new EngineError("usage", "engine closed");
    if (!this.exited) {
      this.child.stdin!.end();
      // A well-behaved engine exits when its input ends; give it a moment, then end it.
      const timer = setTimeout(() => killGroup(this.child), 300);
      await this.exit;
      clearTimeout(timer);
    }
    // Whatever the group still holds (a grandchild that ignored the end of its input).
    killGroup(this.child);
  }
}

/** Resolves when every stream has ended (or closed), or after `ms`. */
function drained(streams: readonly (Readable | null)[], ms: number): Promise<void> {
  const open = streams.filter((s): s is Readable => s !== null && !s.readableEnded && !s.destroyed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let left = open.length;
    const timer = setTimeout(resolve, ms);
    const one = () => {
      if (--left === 0) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const s of open) {
      let seen = false;
      const once = () => {
        if (seen) return;
        seen = true;
        one();
      };
      s.once("end", once).once("close", once);
    }
  });
}

/** `sh -c` reports a command killed by signal N as status 128 + N. */
function killedThroughShell(code: number | null): string | undefined {
  if (code === null || code <= 128 || code >= 128 + 65) return undefined;
  const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
  return name === undefined ? undefined : `was killed by ${name}`;
}

/** Page numbers the ranges cover (an engine may report byte ranges or whole pages). */
function wholePages(ranges: readonly PhysicalRange[]): number[] {
  const pages = new Set<number>();
  for (const r of ranges) {
    if (r.end <= r.start) continue;
    const last = Number((r.end - 1n) >> 12n);
    for (let n = Number(r.start >> 12n); n <= last && pages.size <= 1 << 20; n++) pages.add(n);
  }
  return [...pages].sort((a, b) => a - b);
}
