// Bochs 2.7 as an AsyncEngine. One Bochs process per loaded state:
//   load:  the generated boot image (firmware/smm-image.ts, with the case's memory carried in the
//          ROM) installs the state through SMM and RSM; a command file (`-rc`) stops at the loop
//          that waits for the final SMI and steps through the SMM handler, so that the CPU stands
//          at the case's first instruction boundary; the engine then checks every CPU field
//          against the state it asked for.
//   step:  the internal debugger's `s` over stdin; the log (CPU debug messages) says what was
//          delivered, a HLT with IF = 0, or a triple fault.
//   state: `r` and `show "cpu0.<group>"` dumps; memory through the page tables (memory.ts).
//
// The install method is the QEMU engine's (SMM/RSM) rather than an IRETQ trampoline: RSM loads
// every hidden segment part verbatim (Bochs's save-area layout is the AMD64 one, with bit 8 of
// each attribute word as its "valid" flag), needs no spare page in the case's address space and
// leaves no trace in its memory.
//
// What a step is here (not exactly the vector README's step, so `singleStep` is false): one
// debugger `s`, which executes one instruction — delivering first any event pending at its
// boundary (an NMI or IRQ and the handler's first instruction are one step), and delivering the
// fault when the instruction faults.
//
// Watchdog: a step that does not come back (a HLT with IF = 1, a hang) is interrupted with SIGINT
// after `haltWaitMs`/`stepTimeoutMs`; Bochs's debugger then prompts again.
import { readFileSync, statSync, openSync, readSync, closeSync, writeFileSync, existsSync } from "node:fs";
import type { AsyncEngine, EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { DEFAULT_CPU, PAGE_SIZE, type ArchState } from "../../contract/state.ts";
import { Child, measureFreeRun, type FreeRunCost } from "../host/process.ts";
import { EngineError, oneLineMessage } from "../host/errors.ts";
import { WorkDir, fastTempBase, createFifo } from "../host/workdir.ts";
import { ByteStream } from "../host/stream.ts";
import { buildFirmware, MAX_IMAGE_SIZE } from "../firmware/smm-image.ts";
import { bochsConfig, BOCHS_CPU_MODELS, DEFAULT_VGA_ROM } from "./config.ts";
import { BochsDebugger, parseNext, type ExplainClose, type NextInstruction } from "./debugger.ts";
import { firstPanic, parseBochsLog, parseShutdownDump, summarizeBochsStep } from "./log.ts";
import { cpuFromDumps, STATE_PARAMS, type BochsCpu } from "./cpu-state.ts";
import { parseXpGiant, ramRuns, walkPageTables } from "./memory.ts";
import { compareInstalled, UNINSTALLED_REGISTERS } from "../host/verify.ts";
import { bochsRsmRefusal, bochsStackSegmentProblem, isStackSegmentAssertion } from "./segment-limits.ts";

export interface BochsEngineOptions {
  /** The Bochs program (default `bochs` on PATH, Debian's wrapper around bochs-bin). */
  readonly program?: string;
  /** The VGA BIOS image Bochs loads (default Debian's vgabios package). */
  readonly vgaRom?: string;
  readonly startTimeoutMs?: number;
  readonly stepTimeoutMs?: number;
  readonly haltWaitMs?: number;
  readonly runTimeoutMs?: number;
  /**
   * Report the CPU's debug messages to the log (default true). step() reads delivered events from
   * them; without them the engine only runs free (`runFreeTo`), as benchmarks do: a log line per
   * interrupt or fault would otherwise dominate what is measured.
   */
  readonly cpuDebugLog?: boolean;
}

/** Fields the Bochs engine can neither set nor read. */
export const BOCHS_UNOBSERVABLE: readonly string[] = [
  // ringspec's devices (docs/devices.md) are not Bochs's: the state reports the reset devices.
  "devices.*",
  // Not installed by the firmware image nor read back yet (engines/host/verify.ts).
  ...UNINSTALLED_REGISTERS,
];

const NOT_RAM = { start: 0xa0000n, end: 0x100000n };
const RESET_VECTOR = 0xfffffff0n;

interface Session {
  readonly dir: WorkDir;
  readonly child: Child;
  readonly debuggerClient: BochsDebugger;
  readonly closeInput: () => void;
  readonly logFile: string;
  readonly initial: ArchState;
  readonly profile: ProfileName;
  readonly megs: number;
  logOffset: number;
  next: NextInstruction;
  steps: number;
  halted: boolean;
  shutdown: { readonly log: string; readonly atStep: number } | undefined;
  /** A step the HLT probe already ran (the CPU woke): returned by the next step(). */
  buffered: EngineEvent | undefined;
  cached: ArchState | undefined;
}

export class BochsEngine implements AsyncEngine {
  private session: Session | null = null;
  private readonly options: Required<BochsEngineOptions>;

  constructor(options: BochsEngineOptions = {}) {
    this.options = {
      program: options.program ?? "bochs",
      vgaRom: options.vgaRom ?? DEFAULT_VGA_ROM,
      startTimeoutMs: options.startTimeoutMs ?? 20_000,
      stepTimeoutMs: options.stepTimeoutMs ?? 5_000,
      haltWaitMs: options.haltWaitMs ?? 40,
      runTimeoutMs: options.runTimeoutMs ?? 60_000,
      cpuDebugLog: options.cpuDebugLog ?? true,
    };
  }

  readonly capabilities: EngineCapabilities = {
    name: "bochs 2.7",
    profiles: ["intel", "amd"],
    singleStep: false,
    raise: false,
    touched: false,
    unobservable: BOCHS_UNOBSERVABLE,
  };

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    await this.close();
    this.session = await this.start(state, profile, 0);
  }

  /** Starts Bochs on `state` and runs `replaySteps` steps at once (used to rebuild a state). */
  private async start(state: ArchState, profile: ProfileName, replaySteps: number): Promise<Session> {
    const refusal = bochsCannotInstall(state);
    if (refusal !== null) throw new EngineError("unsupported-state", `bochs: ${refusal}`);
    if (!existsSync(this.options.vgaRom)) throw new EngineError("start", `bochs: no VGA BIOS at ${this.options.vgaRom} (apt-get install -y vgabios)`);
    const dir = WorkDir.create("bochs", fastTempBase());
    let child: Child | undefined;
    let fifo: ReturnType<typeof createFifo> | undefined;
    try {
      let firmware;
      try {
        firmware = buildFirmware(state, {
          pendingIrq: state.cpu.pendingIrq,
          pendingNmi: state.cpu.pendingNmi,
          nmiBlocked: false,
          memory: "rom",
        });
      } catch (e) {
        throw new EngineError("unsupported-state", `bochs: ${oneLineMessage(e)}`);
      }
      const megs = ramMegs(state);
      writeFileSync(dir.file("rom.bin"), firmware.image);
      writeFileSync(
        dir.file("bochsrc"),
        bochsConfig({
          rom: dir.file("rom.bin"),
          romAddress: firmware.imageBase,
          megs,
          cpuModel: BOCHS_CPU_MODELS[profile],
          log: dir.file("bochs.log"),
          vgaRom: this.options.vgaRom,
          cpuDebugLog: this.options.cpuDebugLog,
        }),
      );
      // Stop where the final SMI is pending, step through the SMM handler (SMI entry and its
      // first instruction are one step), then stop at the reset vector if a triple fault resets.
      const commands = [
        `lb 0x${firmware.smiWaitAddress.toString(16)}`,
        "c",
        "d 1",
        `s ${firmware.smmInstructions}`,
        `lb 0x${RESET_VECTOR.toString(16)}`,
        ...(replaySteps > 0 ? [`s ${replaySteps}`] : []),
      ];
      writeFileSync(dir.file("boot.rc"), commands.join("\n") + "\n");
      fifo = createFifo(dir.file("stdin"));
      child = await Child.start(this.options.program, ["-f", dir.file("bochsrc"), "-q", "-rc", dir.file("boot.rc")], {
        cwd: dir.path,
        interactive: true,
        stdin: fifo.childFd,
      });
      const started = child;
      const logFile = dir.file("bochs.log");
      let logReadUpTo = () => 0;
      const explainClose: ExplainClose = async (closed) => {
        // Bochs has exited or is exiting: let it finish writing its log (bounded), then read why.
        await Promise.race([started.exited, new Promise((r) => setTimeout(r, EXIT_WAIT_MS))]);
        return bochsExitError(closed, readLogPanic(logFile, logReadUpTo()), state);
      };
      const debuggerClient = new BochsDebugger(new ByteStream({ input: child.stdoutStream, output: fifo.writer }, "bochs"), this.options.stepTimeoutMs, explainClose);
      // The command file's output ends at the first prompt.
      let bootOutput: string;
      try {
        bootOutput = await debuggerClient.ready(this.options.startTimeoutMs);
      } catch (e) {
        // Output ended or never came: if Bochs exited, say how (its status and stderr).
        const exited = await Promise.race([started.exited, new Promise((r) => setTimeout(r, 300, undefined))]);
        if (exited !== undefined) throw new EngineError("start", `bochs ${started.describeExit()}`);
        if (e instanceof EngineError && e.kind === "timeout") throw new EngineError("start", `bochs: the boot image did not reach the case within ${this.options.startTimeoutMs} ms`);
        throw e;
      }
      if (!bootOutput.includes("Breakpoint 1,")) throw new EngineError("start", `bochs: the boot image never reached its final SMI (${lastLine(bootOutput)})`);
      const reports = bootOutput.split("Next at t=");
      const next = parseNext("Next at t=" + reports[reports.length - 1]!);
      if ("unavailable" in next) throw new EngineError("start", "bochs: the case's first instruction is not readable");
      const session: Session = {
        dir, child, debuggerClient, closeInput: fifo.close, logFile, initial: state, profile, megs,
        logOffset: 0, next, steps: replaySteps, halted: false, shutdown: undefined, buffered: undefined, cached: undefined,
      };
      session.logOffset = fileSize(session.logFile);
      logReadUpTo = () => session.logOffset;
      if (replaySteps === 0) {
        const cpu = await this.readCpu(session);
        if (cpu.inSmm) throw new EngineError("start", "bochs: still in SMM at the case's first instruction");
        const difference = compareInstalled(state, cpu.registers);
        if (difference !== null) throw new EngineError("unsupported-state", `bochs installed ${difference}`);
        // The memory is the loaded state's (the boot image copied it); keep the read.
        session.cached = { ...cpu.registers, memory: state.memory };
      }
      return session;
    } catch (e) {
      fifo?.close();
      await child?.kill();
      dir.remove();
      throw e;
    }
  }

  private current(): Session {
    if (this.session === null) throw new EngineError("usage", "bochs engine: load() a state first");
    return this.session;
  }

  private newLog(s: Session): string {
    const size = fileSize(s.logFile);
    if (size <= s.logOffset) return "";
    const fd = openSync(s.logFile, "r");
    try {
      const buffer = Buffer.alloc(size - s.logOffset);
      const n = readSync(fd, buffer, 0, buffer.length, s.logOffset);
      const text = buffer.subarray(0, n).toString("latin1");
      const end = text.lastIndexOf("\n") + 1;
      s.logOffset += end;
      return text.slice(0, end);
    } finally {
      closeSync(fd);
    }
  }

  /** `s`, bounded by `waitMs`; null when it did not come back (the debugger is interrupted). */
  private async debuggerStep(s: Session, waitMs: number): Promise<string | null> {
    try {
      return await s.debuggerClient.command("s", waitMs);
    } catch (e) {
      if (!(e instanceof EngineError && e.kind === "timeout")) throw e;
      s.child.signal("SIGINT");
      await s.debuggerClient.afterInterrupt(this.options.stepTimeoutMs);
      return null;
    }
  }

  /**
   * Runs the CPU unobserved (the debugger's `c`) until it reaches `address`, and says what that
   * cost: the benchmarks' way of timing a loop inside Bochs. Any other stop is an error.
   */
  async runFreeTo(address: bigint, timeoutMs: number): Promise<FreeRunCost> {
    const s = this.current();
    s.cached = undefined;
    if (s.shutdown !== undefined || s.halted || s.buffered !== undefined) throw new EngineError("usage", "bochs: a free run needs a running CPU");
    await s.debuggerClient.command(`lb 0x${address.toString(16)}`);
    let output = "";
    const cost = await measureFreeRun(s.child.pid, async () => {
      try {
        output = await s.debuggerClient.command("c", timeoutMs);
      } catch (e) {
        if (!(e instanceof EngineError && e.kind === "timeout")) throw e;
        s.child.signal("SIGINT");
        await s.debuggerClient.afterInterrupt(this.options.stepTimeoutMs);
        throw new EngineError("timeout", `bochs: the free run did not reach 0x${address.toString(16)} within ${timeoutMs} ms`);
      }
    });
    this.newLog(s);
    const next = parseNext(output);
    if ("unavailable" in next || next.rip !== address) {
      throw new EngineError("protocol", `bochs: the free run stopped elsewhere than 0x${address.toString(16)}: ${lastLine(output)}`);
    }
    s.next = next;
    const breakpoint = /Breakpoint (\d+),/.exec(output);
    if (breakpoint !== null) await s.debuggerClient.command(`d ${breakpoint[1]}`);
    return cost;
  }

  async step(): Promise<EngineEvent> {
    const s = this.current();
    if (!this.options.cpuDebugLog) throw new EngineError("usage", "bochs engine: opened without its CPU debug log (cpuDebugLog: false), it only runs free");
    s.cached = undefined;
    const rip = s.next.rip;
    if (s.shutdown !== undefined) return { kind: "shutdown", rip };
    if (s.buffered !== undefined) {
      const e = s.buffered;
      s.buffered = undefined;
      return e;
    }
    if (s.halted) return { kind: "halted", rip };
    const isHlt = /^hlt\b/.test(s.next.text);
    const bytes = s.next.bytes ?? new Uint8Array(0);
    const instruction = { bytes: Uint8Array.from(bytes), length: bytes.length };
    const output = await this.debuggerStep(s, this.options.stepTimeoutMs);
    if (output === null) throw new EngineError("timeout", `bochs: a step at 0x${rip.toString(16)} did not finish within ${this.options.stepTimeoutMs} ms`);
    s.steps++;
    const log = this.newLog(s);
    const summary = summarizeBochsStep(parseBochsLog(log));
    if (summary.panics.length > 0) throw new EngineError("crash", `bochs panicked: ${summary.panics[0]}`);
    if (summary.tripleFault) {
      s.shutdown = { log, atStep: s.steps };
      return { kind: "shutdown", rip, instruction };
    }
    const next = parseNext(output);
    if ("unavailable" in next) {
      // RIP points where nothing is mapped: keep the address from the register dump.
      const regs = await s.debuggerClient.command("r");
      const m = /rip: ([0-9a-f]{8})_([0-9a-f]{8})/.exec(regs);
      if (m === null) throw new EngineError("protocol", "bochs: no rip in the register dump");
      s.next = { ticks: next.ticks, selector: 0, rip: BigInt("0x" + m[1]! + m[2]!), bytes: undefined, text: "" };
    } else s.next = next;
    const d = summary.delivered;
    // An IRQ or NMI is delivered at the boundary (Bochs runs the handler's first instruction in
    // the same step); anything else was the instruction's own doing.
    const atBoundary = d !== undefined && (d.source === "external" || d.source === "nmi");
    const event: EngineEvent =
      d !== undefined
        ? { kind: "delivered", rip, vector: d.vector, errorCode: d.errorCode, source: d.source, ...(atBoundary ? {} : { instruction }) }
        : isHlt
          ? { kind: "halted", rip, instruction }
          : { kind: "retired", rip, instruction };
    if (summary.haltedWithIf0) {
      s.halted = true;
      return event;
    }
    if (isHlt || event.kind === "delivered") {
      // HLT with IF = 1 (or an event handler's first instruction was a HLT): halted unless an
      // event wakes the CPU; probe with one more step.
      const activity = await s.debuggerClient.command('show "cpu0.activity_state"');
      if (isHalted(activity)) {
        let probe = await this.debuggerStep(s, this.options.haltWaitMs);
        // Interrupted: halted, unless the probe did wake the CPU just then (a loaded machine).
        if (probe === null && !isHalted(await s.debuggerClient.command('show "cpu0.activity_state"'))) {
          const next = await s.debuggerClient.command("r");
          probe = `Next at t=0\n(0) [0x0] 0000:${/rip: ([0-9a-f]{8})_([0-9a-f]{8})/.exec(next)?.slice(1).join("") ?? "0"} (unk. ctxt): ? ; \n`;
        }
        if (probe === null) s.halted = true;
        else {
          s.steps++;
          const probeSummary = summarizeBochsStep(parseBochsLog(this.newLog(s)));
          const probeNext = parseNext(probe);
          if (!("unavailable" in probeNext)) s.next = probeNext;
          const d = probeSummary.delivered;
          s.buffered = d === undefined ? { kind: "retired", rip: s.next.rip } : { kind: "delivered", rip: s.next.rip, vector: d.vector, errorCode: d.errorCode, source: d.source };
        }
      }
    }
    return event;
  }

  async steps(n: number): Promise<readonly EngineEvent[]> {
    const out: EngineEvent[] = [];
    for (let i = 0; i < n; i++) {
      const e = await this.step();
      out.push(e);
      if (e.kind === "shutdown" || (e.kind === "halted" && this.current().halted)) break;
    }
    return out;
  }

  async run(maxSteps: number): Promise<EngineStop> {
    const s = this.current();
    const deadline = Date.now() + this.options.runTimeoutMs;
    let steps = 0;
    for (;;) {
      if (s.shutdown !== undefined) return { reason: "shutdown", steps };
      if (s.halted && s.buffered === undefined) return { reason: "hlt", steps };
      if (steps >= maxSteps) return { reason: "limit", steps };
      if (Date.now() > deadline) throw new EngineError("timeout", `bochs: no stop within ${this.options.runTimeoutMs / 1000} s (${steps} steps)`);
      await this.step();
      steps++;
    }
  }

  private async readCpu(s: Session): Promise<BochsCpu> {
    const registers = await s.debuggerClient.command("r");
    const shows: string[] = [];
    for (const param of STATE_PARAMS) shows.push(await s.debuggerClient.command(`show "${param}"`));
    return cpuFromDumps(registers, shows);
  }

  private async readPhysicalPage(s: Session, address: bigint): Promise<Uint8Array> {
    const out = await s.debuggerClient.command(`xp /512gx 0x${address.toString(16)}`);
    return parseXpGiant(out, address, 512);
  }

  /** Memory as the case's final page tables map it, plus the loaded pages and the tables. */
  private async readMemory(s: Session, cr3: bigint, linearReadable: boolean): Promise<Map<number, Uint8Array>> {
    const ramEnd = BigInt(s.megs) << 20n;
    const inRam = (p: bigint) => p < ramEnd && !(p >= NOT_RAM.start && p < NOT_RAM.end);
    const pages = new Map<number, Uint8Array>();
    const tableCache = new Map<bigint, Uint8Array>();
    const readTable = async (physical: bigint) => {
      if (!inRam(physical)) return null;
      let page = tableCache.get(physical);
      if (page === undefined) tableCache.set(physical, (page = await this.readPhysicalPage(s, physical)));
      return page;
    };
    if (linearReadable) {
      const { mappings } = await walkPageTables(cr3, readTable);
      let dumped = 0n;
      for (const run of ramRuns(mappings, ramEnd, NOT_RAM)) {
        dumped += run.size;
        if (dumped > 256n << 20n) throw new EngineError("protocol", "bochs: more than 256 MiB mapped; memory not read");
        const file = s.dir.file("dump.bin");
        const out = await s.debuggerClient.command(`writemem "${file}" 0x${run.linear.toString(16)} 0x${run.size.toString(16)}`);
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch {
          throw new EngineError("protocol", `bochs: writemem at 0x${run.linear.toString(16)} wrote nothing (${lastLine(out)})`);
        }
        if (BigInt(bytes.length) !== run.size) throw new EngineError("protocol", `bochs: writemem at 0x${run.linear.toString(16)} wrote ${bytes.length} of ${run.size} bytes`);
        for (let off = 0; off < bytes.length; off += PAGE_SIZE) {
          pages.set(Number((run.physical + BigInt(off)) >> 12n), Uint8Array.from(bytes.subarray(off, off + PAGE_SIZE)));
        }
      }
    }
    for (const [physical, page] of tableCache) pages.set(Number(physical >> 12n), page);
    for (const n of s.initial.memory.keys()) {
      const physical = BigInt(n) << 12n;
      if (!pages.has(n) && inRam(physical)) pages.set(n, await this.readPhysicalPage(s, physical));
    }
    for (const [n, page] of pages) if (page.every((b) => b === 0)) pages.delete(n);
    return pages;
  }

  async state(): Promise<ArchState> {
    const s = this.current();
    if (s.cached !== undefined) return s.cached;
    if (s.shutdown !== undefined) {
      s.cached = await this.shutdownState(s);
      return s.cached;
    }
    const cpu = await this.readCpu(s);
    const paging = (cpu.registers.cr0 & (1n << 31n)) !== 0n;
    const memory = await this.readMemory(s, cpu.registers.cr3, paging);
    s.cached = { ...cpu.registers, memory };
    return s.cached;
  }

  /**
   * After a triple fault Bochs resets the CPU (the debugger stops at the reset vector) and only
   * its log dump keeps part of the state. A triple-faulting step commits nothing but CR2 (and
   * accessed bits in memory), so the engine rebuilds the rest by replaying the steps before it in
   * a second Bochs (the runs are deterministic) and lays the dump over that state. Memory is read
   * from the first Bochs, where paging is off after the reset.
   */
  private async shutdownState(s: Session): Promise<ArchState> {
    const shutdown = s.shutdown!;
    const dump = parseShutdownDump(shutdown.log);
    if (dump === undefined) throw new EngineError("protocol", "bochs: no register dump in the log at the triple fault");
    // Make sure the first Bochs has stopped at the reset vector.
    const where = await s.debuggerClient.command("r");
    if (!/rip: 00000000_0000fff0/.test(where)) throw new EngineError("protocol", "bochs: after the triple fault the CPU is not at the reset vector");
    const memory = new Map<number, Uint8Array>();
    const ramDump = s.dir.file("ram.bin");
    await s.debuggerClient.command(`writemem "${ramDump}" 0x0 0x${(BigInt(s.megs) << 20n).toString(16)}`);
    const ram = readFileSync(ramDump);
    for (let off = 0; off < ram.length; off += PAGE_SIZE) {
      const n = off / PAGE_SIZE;
      const physical = BigInt(off);
      if (physical >= NOT_RAM.start && physical < NOT_RAM.end) continue;
      const page = ram.subarray(off, off + PAGE_SIZE);
      if (page.some((b) => b !== 0)) memory.set(n, Uint8Array.from(page));
      else memory.delete(n);
    }
    const replay = await this.start(s.initial, s.profile, shutdown.atStep - 1);
    let before: BochsCpu;
    try {
      before = await this.readCpu(replay);
    } finally {
      replay.closeInput();
      await replay.child.kill();
      replay.dir.remove();
    }
    const b = before.registers;
    const overlay = (name: "cs" | "ds" | "ss" | "es" | "fs" | "gs") => {
      const d = dump.segments[name];
      const old = b[name];
      const base = name === "fs" ? dump.fsBase : name === "gs" ? dump.gsBase : (old.base & 0xffffffffn) === d.base ? old.base : d.base;
      return { ...old, selector: d.selector, base, limit: d.limit, g: d.g, db: d.db };
    };
    return {
      ...b,
      gpr: dump.gpr,
      rip: dump.rip,
      rflags: dump.rflags,
      cs: overlay("cs"), ds: overlay("ds"), ss: overlay("ss"), es: overlay("es"), fs: overlay("fs"), gs: overlay("gs"),
      cr0: dump.cr0, cr2: dump.cr2, cr3: dump.cr3, cr4: dump.cr4, efer: dump.efer,
      memory,
      cpu: { ...DEFAULT_CPU, shutdown: true },
    };
  }

  async raise(event: RaiseRequest): Promise<void> {
    this.current();
    throw new EngineError("usage", `bochs: cannot raise ${"nmi" in event ? "an NMI" : `IRQ ${event.irq}`} mid-run (events can only be pending in the loaded state)`);
  }

  async touched(): Promise<readonly PhysicalRange[]> {
    const s = this.current();
    const now = (await this.state()).memory;
    const zero = new Uint8Array(PAGE_SIZE);
    const changed = [...new Set([...now.keys(), ...s.initial.memory.keys()])]
      .filter((p) => {
        const a = now.get(p) ?? zero;
        const b = s.initial.memory.get(p) ?? zero;
        return !a.every((v, i) => v === b[i]);
      })
      .sort((x, y) => x - y);
    const out: PhysicalRange[] = [];
    for (const p of changed) {
      const start = BigInt(p) * 4096n;
      const last = out[out.length - 1];
      if (last !== undefined && last.end === start) out[out.length - 1] = { start: last.start, end: start + 4096n };
      else out.push({ start, end: start + 4096n });
    }
    return out;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s === null) return;
    s.debuggerClient.close();
    s.closeInput();
    await s.child.kill();
    s.dir.remove();
  }
}

function isHalted(activityDump: string): boolean {
  return /activity_state = 0x0*1\b/.test(activityDump);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").slice(0, 120);
}

/** How long a closed connection waits for Bochs to exit (and finish its log) before reading it. */
const EXIT_WAIT_MS = 500;
/** How much of the log's end is read for the reason Bochs exited. */
const LOG_TAIL_BYTES = 64 * 1024;
/** The longest panic line a reason quotes. */
const PANIC_CHARS = 240;

/** The first panic line Bochs logged after `from` (the engine's last read), within the log's last 64 KiB. */
export function readLogPanic(logFile: string, from: number): string | undefined {
  const size = fileSize(logFile);
  const start = Math.max(from, size - LOG_TAIL_BYTES);
  if (size <= start) return undefined;
  let text: string;
  try {
    const fd = openSync(logFile, "r");
    try {
      const buffer = Buffer.alloc(size - start);
      const n = readSync(fd, buffer, 0, buffer.length, start);
      text = buffer.subarray(0, n).toString("latin1");
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  // A read that starts inside a line drops that partial line.
  if (start > from) text = text.slice(text.indexOf("\n") + 1);
  return firstPanic(text);
}

/**
 * What to report when Bochs's debugger connection closed mid-case (`closed`), given the first
 * panic line of its log (if any) and the loaded state: Bochs's failed SS assertion in its stack
 * path is a state Bochs cannot hold (unsupported state, naming sregs.ss, segment-limits.ts); any
 * other panic is quoted in the crash reason.
 */
export function bochsExitError(closed: EngineError, panic: string | undefined, state: ArchState): EngineError {
  if (panic === undefined) return closed;
  const quoted = panic.length > PANIC_CHARS ? panic.slice(0, PANIC_CHARS) + "…" : panic;
  if (isStackSegmentAssertion(panic)) {
    const problem = bochsStackSegmentProblem(state) ?? "sregs.ss (as the run left it)";
    return new EngineError("unsupported-state", `bochs: ${problem}: Bochs cannot hold an SS that is not a writable data segment; at a stack access it exited (its log: ${quoted})`);
  }
  return new EngineError("crash", `${closed.message}; Bochs's log: ${quoted}`);
}

/** RAM for the case: 32 MiB or more, in 32 MiB steps, up to 2 GiB. */
function ramMegs(state: ArchState): number {
  let top = 0;
  for (const page of state.memory.keys()) top = Math.max(top, (page + 1) * 4096);
  return Math.max(32, Math.ceil(top / (32 << 20)) * 32);
}

/** null if Bochs can be given exactly this state, else the reason. */
export function bochsCannotInstall(state: ArchState): string | null {
  const cpu = state.cpu;
  if (cpu.shadow !== "none") return `cpu.shadow = ${cpu.shadow}: RSM cannot restore an interrupt shadow`;
  if (cpu.halted) return "cpu.halted: RSM cannot restore a halted CPU";
  if (cpu.shutdown) return "cpu.shutdown: a shut-down CPU cannot be installed";
  if (cpu.pendingDebugTrap) return "cpu.pending_debug_trap: cannot be installed";
  if (cpu.nmiBlocked) return "cpu.nmi_blocked: Bochs's RSM unblocks NMIs";
  if (cpu.pendingIrq !== null && cpu.pendingIrq < 16) return `cpu.pending_irq = ${cpu.pendingIrq}: Bochs's local APIC drops vectors below 16`;
  for (const [name, value] of [["cr0", state.cr0], ["cr4", state.cr4], ["rflags", state.rflags]] as const) {
    if (value >> 32n !== 0n) return `${name} has bits above 31: the save area holds 32 bits`;
  }
  const segments = bochsRsmRefusal(state);
  if (segments !== null) return segments;
  let nonZero = 0;
  for (const [page, bytes] of state.memory) {
    if (!bytes.some((b) => b !== 0)) continue;
    nonZero++;
    const address = BigInt(page) << 12n;
    if (address >= NOT_RAM.start && address < NOT_RAM.end) return `memory at 0x${address.toString(16)}: 0xa0000–0xfffff is not RAM (VGA and ROM)`;
    if (address >= 2n ** 31n) return `memory at 0x${address.toString(16)}: above the 2 GiB the engine gives Bochs`;
  }
  if ((nonZero + 16) * PAGE_SIZE > MAX_IMAGE_SIZE) return `${nonZero} non-zero pages do not fit in the ${MAX_IMAGE_SIZE >> 20} MiB boot image`;
  return null;
}
