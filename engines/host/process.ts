// Child processes of the emulator engines: spawned, tracked, and always ended — on close, on a
// watchdog, and when this process exits or is interrupted, so that no emulator outlives a run.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { BroadcastChannel, isMainThread } from "node:worker_threads";
import { EngineError } from "./errors.ts";

const live = new Set<ChildProcess>();
const cleanups = new Set<() => void>();
let hooksInstalled = false;

// Emulators started in worker threads (`conform --workers N`) are told to the main thread, which
// ends them and removes their scratch directories when the process exits or is interrupted: a
// worker thread runs no exit hook of its own when the process ends under it.
type Remote = { readonly add?: number; readonly remove?: number; readonly addDir?: string; readonly removeDir?: string };
const CHANNEL = "ringspec-emulator-processes";
const remotePids = new Set<number>();
const remoteDirs = new Set<string>();
let toMain: BroadcastChannel | undefined;
if (isMainThread) {
  const fromWorkers = new BroadcastChannel(CHANNEL);
  fromWorkers.unref();
  fromWorkers.onmessage = (event: unknown) => {
    const m = (event as { readonly data: Remote }).data;
    if (m.add !== undefined) remotePids.add(m.add);
    if (m.remove !== undefined) remotePids.delete(m.remove);
    if (m.addDir !== undefined) {
      remoteDirs.add(m.addDir);
      installHooks();
    }
    if (m.removeDir !== undefined) remoteDirs.delete(m.removeDir);
  };
}
function tellMain(m: Remote): void {
  if (isMainThread) return;
  if (toMain === undefined) {
    toMain = new BroadcastChannel(CHANNEL);
    toMain.unref();
  }
  toMain.postMessage(m);
}

function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const pid of remotePids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  remotePids.clear();
  for (const dir of remoteDirs) rmSync(dir, { recursive: true, force: true });
  remoteDirs.clear();
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // best effort on the way out
    }
  }
  cleanups.clear();
}

/** Runs `cleanup` if this process exits or is interrupted before `release()` is called (scratch
 *  directories of running cases). */
export function onExitCleanup(cleanup: () => void): { readonly release: () => void } {
  installHooks();
  cleanups.add(cleanup);
  return { release: () => cleanups.delete(cleanup) };
}

/** Removes directory `path` if this process exits or is interrupted before `release()` is called
 *  (from a worker thread too). */
export function onExitRemove(path: string): { readonly release: () => void } {
  const guard = onExitCleanup(() => rmSync(path, { recursive: true, force: true }));
  tellMain({ addDir: path });
  return {
    release: () => {
      guard.release();
      tellMain({ removeDir: path });
    },
  };
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // Only when nobody else handles the signal: end the children, then die of the same signal.
    // A program with its own handler (conform's Ctrl-C: finish the cases in flight, write what
    // was found) keeps its children; they are killed when it exits.
    const hook = () => {
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, hook);
      killAllNow();
      process.kill(process.pid, signal);
    };
    process.on(signal, hook);
  }
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running emulator process. */
export class Child {
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  private readonly stderrTail: string[] = [];
  private readonly stdoutChunks: Buffer[] = [];
  private stdoutBytes = 0;

  private constructor(
    readonly program: string,
    private readonly process: ChildProcess,
    /** Keep at most this many bytes of stdout (a guest can print without end). */
    private readonly stdoutLimit: number,
    interactive: boolean,
  ) {
    const pid = process.pid;
    this.exited = new Promise((resolve) => {
      process.once("exit", (code, signal) => {
        live.delete(process);
        if (pid !== undefined) tellMain({ remove: pid });
        const status = { code, signal };
        // "exit" can come before the last of stderr has been read: wait for the pipe to end
        // (bounded, since a grandchild may hold it open) so describeExit() has the message.
        const done = () => {
          clearTimeout(timer);
          if (this.status !== undefined) return;
          this.status = status;
          resolve(status);
        };
        const timer = setTimeout(done, 250);
        if (process.stderr === null || process.stderr.readableEnded) done();
        else process.stderr.once("end", done).once("close", done);
      });
    });
    process.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail.push(chunk.toString("utf8"));
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    if (!interactive) {
      process.stdout?.on("data", (chunk: Buffer) => {
        if (this.stdoutBytes >= this.stdoutLimit) return;
        this.stdoutChunks.push(chunk);
        this.stdoutBytes += chunk.length;
      });
    }
  }

  /** The stdout of an interactive child. */
  get stdoutStream(): Readable {
    const { stdout } = this.process;
    if (stdout === null) throw new EngineError("usage", `${this.program}: no stdout pipe`);
    return stdout;
  }

  /** stdout and stdin of an interactive child started with a stdin pipe. */
  streams(): { readonly input: Readable; readonly output: Writable } {
    const { stdout, stdin } = this.process;
    if (stdout === null || stdin === null) throw new EngineError("usage", `${this.program}: not started interactive`);
    return { input: stdout, output: stdin };
  }

  /** Starts `program`; a missing program is an EngineError("start"). */
  static async start(
    program: string,
    args: readonly string[],
    options: { cwd?: string; stdoutLimit?: number; interactive?: boolean; stdin?: number } = {},
  ): Promise<Child> {
    installHooks();
    // interactive: the caller reads stdout itself (see `streams`); `stdin`: an open file
    // descriptor for the child's stdin (a FIFO, for programs that misbehave on a socket).
    const stdin = options.stdin ?? (options.interactive === true ? "pipe" : "ignore");
    const proc = spawn(program, [...args], { cwd: options.cwd, stdio: [stdin, "pipe", "pipe"] });
    live.add(proc);
    if (proc.pid !== undefined) tellMain({ add: proc.pid });
    const child = new Child(program, proc, options.stdoutLimit ?? 1 << 20, options.interactive === true);
    await new Promise<void>((resolve, reject) => {
      proc.once("spawn", () => resolve());
      proc.once("error", (e: NodeJS.ErrnoException) => {
        live.delete(proc);
        reject(new EngineError("start", e.code === "ENOENT" ? `${program}: not found (install it, or name it with its option)` : `${program}: ${e.message}`));
      });
    });
    return child;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** The last lines the program wrote to stderr, on one line. */
  stderr(): string {
    return this.stderrTail.join("").trim().split("\n").slice(-3).join(" | ");
  }

  /** Everything written to stdout so far (up to the limit). */
  stdout(): string {
    return Buffer.concat(this.stdoutChunks).toString("utf8");
  }

  /** How it ended, for messages: "exited with status 1: <stderr>". */
  describeExit(): string {
    const s = this.status;
    if (s === undefined) return "still running";
    const how = s.signal !== null ? `was killed by ${s.signal}` : `exited with status ${s.code}`;
    const err = this.stderr();
    return err === "" ? how : `${how}: ${err}`;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.status === undefined) this.process.kill(signal);
  }

  /** Ends the process (SIGKILL) and waits for it. Idempotent. */
  async kill(): Promise<void> {
    if (this.status === undefined) this.process.kill("SIGKILL");
    await this.exited;
  }
}

/** Number of emulator processes alive (tests check that none is left behind). */
export function liveChildren(): number {
  return live.size;
}

/**
 * CPU seconds (user + system, all threads) a live process has used, from /proc/PID/stat; undefined
 * where /proc is not available. Resolution: the kernel's clock tick (10 ms).
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces) start at the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS_PER_SECOND : undefined;
}

/** Linux's USER_HZ, the unit of /proc/PID/stat times (100 on every architecture Linux ships). */
const CLOCK_TICKS_PER_SECOND = 100;

/** What a free run (an emulator running unobserved to a breakpoint) cost. */
export interface FreeRunCost {
  readonly wallSeconds: number;
  /** The emulator process's CPU seconds over the run; undefined without /proc. */
  readonly cpuSeconds: number | undefined;
}

/** Runs `work` and measures the wall time and `pid`'s CPU time it took. */
export async function measureFreeRun(pid: number | undefined, work: () => Promise<void>): Promise<FreeRunCost> {
  const cpu0 = processCpuSeconds(pid);
  const t0 = performance.now();
  await work();
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpu1 = processCpuSeconds(pid);
  return { wallSeconds, cpuSeconds: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 };
}
