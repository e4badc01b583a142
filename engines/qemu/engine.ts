// QEMU (TCG) as an AsyncEngine. One QEMU process per loaded state:
//   load:  a generated firmware image installs the state through SMM and RSM (firmware.ts); the
//          case's memory goes in with `-device loader`; the engine runs the firmware to its final
//          RSM through the gdbstub (a breakpoint) and steps over it: the CPU is then at the case's
//          first instruction boundary, with any IRQ/NMI pending.
//   step:  one gdbstub single-step (QEMU's `qqemu.sstep` = 1: interrupts and timers stay enabled
//          while stepping). The `-d int` log says what was delivered in that step.
//   state: QMP `migrate` to a file, parsed with the JSON description QEMU appends (cpu,
//          cpu_common, apic sections); RIP/RFLAGS/GPRs from the gdbstub; memory straight from
//          the guest RAM's backing file (a shared file, which `x-ignore-shared` keeps out of the
//          stream).
//
// What a step is here (it is not exactly the vector README's step, so `singleStep` is false):
// one gdbstub step executes one instruction, or delivers one event pending at the boundary; a
// REP string instruction runs to completion (its iterations are stepped and joined); a TF
// single-step trap is delivered inside the step of the instruction that raised it (QEMU raises it
// at the end of that instruction); a HLT that an event wakes includes the delivery of that event.
// Run lengths are therefore comparable with the architectural count but not equal to it.
import { openSync, readSync, closeSync, writeFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import type { AsyncEngine, EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, RaiseRequest, StepInstruction } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { PAGE_SIZE, type ArchState } from "../../contract/state.ts";
import { Child, measureFreeRun, type FreeRunCost } from "../host/process.ts";
import { EngineError } from "../host/errors.ts";
import { WorkDir, fastTempBase } from "../host/workdir.ts";
import { RspClient, SIGNAL, type StopReply } from "../gdb/rsp.ts";
import { loadTargetDescription, registerValue, type TargetDescription } from "../gdb/target-description.ts";
import { QmpClient, MigrationInfo, StatusInfo } from "./qmp.ts";
import { buildFirmware, pageRuns } from "../firmware/smm-image.ts";
import { qemuCannotInstall, ramSizeFor } from "./representable.ts";
import { parseIntLog, summarizeStep } from "./int-log.ts";
import { parseMigrationStream } from "./migration.ts";
import { cpuStateFromStream, type QemuCpuState } from "./cpu-state.ts";
import { classifyInstruction, stepInstruction, type InstructionClass } from "../host/instruction.ts";
import { compareInstalled, UNINSTALLED_REGISTERS } from "../host/verify.ts";

export interface QemuEngineOptions {
  /** The QEMU program (default `qemu-system-x86_64` on PATH). */
  readonly program?: string;
  /** `-cpu` model; default `max` with the vendor of the profile (GenuineIntel / AuthenticAMD). */
  readonly cpu?: string;
  /** QEMU start-up and firmware, up to the case's first instruction (default 20 s). */
  readonly startTimeoutMs?: number;
  /** One step that does not come back within this is a hang (default 5 s). */
  readonly stepTimeoutMs?: number;
  /** How long a HLT may wait for an event before the CPU counts as halted (default 40 ms). */
  readonly haltWaitMs?: number;
  /** A whole `run` (default 60 s). */
  readonly runTimeoutMs?: number;
  /**
   * Log every delivered event with `-d int` (default true). step() reads its events from that log;
   * without it the engine only runs free (`runFreeTo`), as benchmarks do: QEMU's logging would
   * otherwise dominate the cost of an interrupt or fault.
   */
  readonly interruptLog?: boolean;
}

/** Fields the QEMU engine can neither set nor read (reported as not compared). */
export const QEMU_UNOBSERVABLE: readonly string[] = [
  // RSM restores no interrupt shadow, and QEMU's one inhibit flag does not say STI or MOV SS.
  "cpu.shadow",
  // QEMU raises a TF trap at the end of the instruction: no pending trap exists at a boundary.
  "cpu.pending_debug_trap",
  // Neither installed by the firmware image nor read back yet (contract/state.ts POWER_UP_REGISTERS).
  ...UNINSTALLED_REGISTERS,
  // ringspec's devices (docs/devices.md) are not QEMU's: the state reports the reset devices.
  "devices.*",
];

const GPR_ORDER_GDB = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"] as const;

interface Registers {
  readonly gpr: readonly bigint[];
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly cs: number;
  readonly efer: bigint;
}

interface Session {
  readonly dir: WorkDir;
  readonly child: Child;
  readonly qmp: QmpClient;
  readonly gdb: RspClient;
  readonly target: TargetDescription;
  readonly ramFile: string;
  readonly ramSize: number;
  readonly logFile: string;
  readonly initial: ArchState;
  logOffset: number;
  regs: Registers;
  halted: boolean;
  shutdown: boolean;
  /** CS is a 64-bit code segment (for decoding the next instruction), as of selector `csSelector`. */
  cs64: boolean;
  csSelector: number;
  migrations: number;
  /** The state read since the last step (QEMU refuses a second migration in a row). */
  cached: ArchState | undefined;
  /** The CPU read from the migration stream since the last step. */
  cpuRead: QemuCpuState | undefined;
  /** The last migration stream read (kept for diagnostics and for recording test samples). */
  lastStream: Buffer | undefined;
}

export class QemuEngine implements AsyncEngine {
  private session: Session | null = null;
  private version = "";
  private readonly options: Required<Omit<QemuEngineOptions, "cpu">> & { cpu: string | undefined };

  constructor(options: QemuEngineOptions = {}) {
    this.options = {
      program: options.program ?? "qemu-system-x86_64",
      cpu: options.cpu,
      startTimeoutMs: options.startTimeoutMs ?? 20_000,
      stepTimeoutMs: options.stepTimeoutMs ?? 5_000,
      haltWaitMs: options.haltWaitMs ?? 40,
      runTimeoutMs: options.runTimeoutMs ?? 60_000,
      interruptLog: options.interruptLog ?? true,
    };
  }

  get capabilities(): EngineCapabilities {
    const cpu = this.options.cpu ?? "max";
    return {
      name: `qemu${this.version === "" ? "" : " " + this.version} tcg -cpu ${cpu}`,
      profiles: this.options.cpu === undefined ? ["intel", "amd"] : ["intel"],
      singleStep: false,
      raise: false,
      touched: false,
      unobservable: QEMU_UNOBSERVABLE,
    };
  }

  private cpuArgument(profile: ProfileName): string {
    if (this.options.cpu !== undefined) return this.options.cpu;
    return `max,vendor=${profile === "amd" ? "AuthenticAMD" : "GenuineIntel"}`;
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    await this.close();
    const refusal = qemuCannotInstall(state);
    if (refusal !== null) throw new EngineError("unsupported-state", `qemu: ${refusal}`);
    if (this.options.cpu !== undefined && profile !== "intel") {
      throw new EngineError("unsupported-state", `qemu: profile ${profile} needs the default -cpu (it sets the vendor); --qemu-cpu was given`);
    }
    const dir = WorkDir.create("qemu", fastTempBase());
    let child: Child | undefined;
    let qmp: QmpClient | undefined;
    let gdb: RspClient | undefined;
    try {
      const firmware = buildFirmware(state, {
        pendingIrq: state.cpu.pendingIrq,
        pendingNmi: state.cpu.pendingNmi,
        nmiBlocked: state.cpu.nmiBlocked,
        memory: "loaded",
      });
      writeFileSync(dir.file("firmware.bin"), firmware.image);
      const ramSize = ramSizeFor(state);
      const args = qemuArguments({
        cpu: this.cpuArgument(profile),
        firmware: dir.file("firmware.bin"),
        ramFile: dir.file("ram"),
        ramSize,
        qmpSocket: dir.file("qmp.sock"),
        gdbSocket: dir.file("gdb.sock"),
        ...(this.options.interruptLog ? { logFile: dir.file("int.log") } : {}),
        chunks: writeMemoryChunks(state, (i) => dir.file(`memory-${i}.bin`)),
      });
      child = await Child.start(this.options.program, args, { cwd: dir.path });
      const started = child;
      const alive = () => started.exitStatus === undefined;
      const timeoutMs = this.options.startTimeoutMs;
      qmp = await QmpClient.connect(dir.file("qmp.sock"), { timeoutMs, stillStarting: alive }).catch((e: unknown) => {
        throw started.exitStatus !== undefined ? new EngineError("start", `qemu ${started.describeExit()}`) : e;
      });
      this.version = qmp.version;
      gdb = await RspClient.connect({ path: dir.file("gdb.sock") }, { timeoutMs, stillStarting: alive });
      const target = await loadTargetDescription((annex) => gdb!.readFeatureFile(annex));
      if (target === null || !["rip", "eflags", "rax", "cs", "efer"].every((n) => target.registers.some((r) => r.name === n))) {
        throw new EngineError("protocol", "qemu gdbstub: no x86-64 target description");
      }
      await qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] });
      // Run the firmware to the RSM that enters the case, then step over it.
      await gdb.setBreakpoint(firmware.rsmAddress);
      const stop = await gdb.resume("c", timeoutMs).catch((e: unknown) => {
        throw e instanceof EngineError && e.kind === "timeout" ? new EngineError("start", `qemu: the firmware did not reach its RSM within ${timeoutMs} ms`) : e;
      });
      if (stop.kind !== "signal" || stop.signal !== SIGNAL.TRAP) throw new EngineError("start", `qemu: the firmware stopped unexpectedly (${describeStop(stop)})`);
      await gdb.clearBreakpoint(firmware.rsmAddress);
      // 1 = step with interrupts and timers enabled (QEMU's default 7 would mask them).
      await gdb.ok("Qqemu.sstep=1");
      const rsm = await gdb.resume("s", timeoutMs);
      if (rsm.kind !== "signal") throw new EngineError("start", `qemu: stepping over RSM: ${describeStop(rsm)}`);
      const session: Session = {
        dir, child, qmp, gdb, target, ramFile: dir.file("ram"), ramSize, logFile: dir.file("int.log"),
        initial: state, logOffset: 0, regs: { gpr: [], rip: 0n, rflags: 0n, cs: 0, efer: 0n },
        halted: false, shutdown: false, cs64: state.cs.l === 1, csSelector: state.cs.selector, migrations: 0, cached: undefined, cpuRead: undefined, lastStream: undefined,
      };
      session.regs = await this.readRegisters(session);
      if (session.regs.rip !== state.rip) {
        throw new EngineError("start", `qemu: after RSM, RIP is 0x${session.regs.rip.toString(16)}, not the case's 0x${state.rip.toString(16)}`);
      }
      session.logOffset = fileSize(session.logFile);
      // Check what RSM installed against what was asked (the state read is kept: QEMU cannot
      // migrate twice without running in between).
      const installed = await this.state(session);
      const difference = compareInstalled(state, installed, QEMU_UNOBSERVABLE);
      if (difference !== null) throw new EngineError("unsupported-state", `qemu installed ${difference}`);
      this.session = session;
    } catch (e) {
      gdb?.drop();
      qmp?.close();
      await child?.kill();
      dir.remove();
      throw e;
    }
  }

  private current(): Session {
    if (this.session === null) throw new EngineError("usage", "qemu engine: load() a state first");
    if (this.released) throw new EngineError("usage", "qemu engine: its gdbstub was handed to another client");
    return this.session;
  }

  private released = false;

  /**
   * Hands the loaded QEMU's gdbstub to another client (the generic GDB bridge, gdb itself): the
   * engine disconnects, leaving the CPU stopped at the case's first instruction, and returns the
   * stub's unix socket. The engine can then only be closed.
   */
  async releaseGdbStub(): Promise<{ readonly socket: string; readonly runState: () => Promise<string> }> {
    const s = this.current();
    s.gdb.drop();
    this.released = true;
    return { socket: s.dir.file("gdb.sock"), runState: () => this.status(s) };
  }

  private async readRegisters(s: Session): Promise<Registers> {
    const g = await s.gdb.readRegisters();
    const value = (name: string) => {
      const reg = s.target.registers.find((r) => r.name === name);
      const v = reg === undefined ? undefined : registerValue(g, reg);
      if (v === undefined) throw new EngineError("protocol", `qemu gdbstub: no register ${name} in the g reply`);
      return v;
    };
    return {
      gpr: GPR_ORDER_GDB.map(value),
      rip: value("rip"),
      rflags: value("eflags"),
      cs: Number(value("cs")),
      efer: value("efer"),
    };
  }

  /** Log text appended since the last call. */
  private newLogText(s: Session): string {
    const size = fileSize(s.logFile);
    if (size <= s.logOffset) return "";
    const fd = openSync(s.logFile, "r");
    try {
      const buffer = Buffer.alloc(size - s.logOffset);
      const n = readSync(fd, buffer, 0, buffer.length, s.logOffset);
      // Only whole lines: a line still being written is read next time.
      const text = buffer.subarray(0, n).toString("latin1");
      const end = text.lastIndexOf("\n") + 1;
      s.logOffset += end;
      return text.slice(0, end);
    } finally {
      closeSync(fd);
    }
  }

  private async status(s: Session): Promise<string> {
    return (await s.qmp.query("query-status", StatusInfo)).status;
  }

  /** One gdbstub step; `waitMs` bounds it. Returns null if it did not come back in time. */
  private async gdbStep(s: Session, waitMs: number): Promise<StopReply | null> {
    try {
      return await s.gdb.resume("s", waitMs);
    } catch (e) {
      if (e instanceof EngineError && e.kind === "timeout") return null;
      throw e;
    }
  }

  /** Stops a step that did not return; true if the CPU is then halted. */
  private async interruptStep(s: Session): Promise<void> {
    s.gdb.interrupt();
    await s.gdb.waitStop(this.options.stepTimeoutMs);
  }

  /**
   * Runs the CPU unobserved (gdbstub `c`) until it reaches `address`, and says what that cost:
   * the benchmarks' way of timing a loop inside QEMU. Any other stop is an error.
   */
  async runFreeTo(address: bigint, timeoutMs: number): Promise<FreeRunCost> {
    const s = this.current();
    s.cached = undefined;
    s.cpuRead = undefined;
    await s.gdb.setBreakpoint(address);
    let stop: StopReply | undefined;
    const cost = await measureFreeRun(s.child.pid, async () => {
      stop = await s.gdb.resume("c", timeoutMs).catch(async (e: unknown) => {
        if (e instanceof EngineError && e.kind === "timeout") {
          await this.interruptStep(s).catch(() => undefined);
          throw new EngineError("timeout", `qemu: the free run did not reach 0x${address.toString(16)} within ${timeoutMs} ms`);
        }
        throw e;
      });
    });
    await s.gdb.clearBreakpoint(address);
    s.regs = await this.readRegisters(s);
    if (stop?.kind !== "signal" || stop.signal !== SIGNAL.TRAP || s.regs.rip !== address) {
      throw new EngineError("protocol", `qemu: the free run stopped at 0x${s.regs.rip.toString(16)} (${describeStop(stop ?? null)}), not at 0x${address.toString(16)}`);
    }
    return cost;
  }

  async step(): Promise<EngineEvent> {
    const s = this.current();
    if (!this.options.interruptLog) throw new EngineError("usage", "qemu engine: opened without its interrupt log (interruptLog: false), it only runs free");
    const rip = s.regs.rip;
    s.cached = undefined;
    s.cpuRead = undefined;
    if (s.shutdown) return { kind: "shutdown", rip };
    if (s.halted) return { kind: "halted", rip };
    const bytes = (await s.gdb.readMemory(rip, 15)) ?? Buffer.alloc(0);
    const insn = classifyInstruction(bytes, s.cs64 ? 64 : 32, rip);
    const instruction = stepInstruction(bytes, s.cs64 ? 64 : 32, rip);
    const raxBefore = s.regs.gpr[0]!;

    let reply: StopReply | null;
    if (insn.kind === "hlt") {
      reply = await this.gdbStep(s, this.options.haltWaitMs);
      if (reply === null) {
        // Nothing woke the CPU: it is halted. Stop the step that is still waiting.
        await this.interruptStep(s);
        const registers = await s.qmp.hmp("info registers");
        if (!/\bHLT=1\b/.test(registers)) {
          // A slow step rather than a halt: the CPU did something else; fall through with its state.
          reply = { kind: "signal", signal: SIGNAL.TRAP, info: new Map() };
        } else {
          s.regs = await this.readRegisters(s);
          this.newLogText(s);
          s.halted = true;
          return { kind: "halted", rip, instruction };
        }
      }
    } else {
      reply = await this.gdbStep(s, this.options.stepTimeoutMs);
      if (reply === null) {
        const status = await this.status(s);
        if (status !== "shutdown") {
          await this.interruptStep(s).catch(() => undefined);
          throw new EngineError("timeout", `qemu: a step at 0x${rip.toString(16)} did not finish within ${this.options.stepTimeoutMs} ms (run state ${status})`);
        }
      }
      // A REP string instruction: step its iterations until RIP moves on or something is delivered.
      if (insn.kind === "rep-string" && reply !== null) {
        let log = this.newLogText(s);
        s.regs = await this.readRegisters(s);
        while (s.regs.rip === rip && parseIntLog(log).length === 0 && reply !== null) {
          reply = await this.gdbStep(s, this.options.stepTimeoutMs);
          if (reply === null) break;
          log += this.newLogText(s);
          s.regs = await this.readRegisters(s);
        }
        return this.finishStep(s, rip, reply, insn, instruction, raxBefore, log);
      }
    }
    return this.finishStep(s, rip, reply, insn, instruction, raxBefore, this.newLogText(s));
  }

  private async finishStep(
    s: Session,
    rip: bigint,
    reply: StopReply | null,
    insn: InstructionClass,
    instruction: StepInstruction,
    raxBefore: bigint,
    log: string,
  ): Promise<EngineEvent> {
    const summary = summarizeStep(parseIntLog(log));
    if (reply !== null && reply.kind !== "signal") throw new EngineError("crash", `qemu: ${describeStop(reply)}`);
    if (reply === null || summary.tripleFault || (reply.signal !== SIGNAL.TRAP && (await this.status(s)) === "shutdown")) {
      // Triple fault: QEMU requested a reset, which -action turns into a paused shutdown.
      const status = await this.status(s);
      if (status !== "shutdown" && !summary.tripleFault) throw new EngineError("protocol", `qemu: a step stopped with ${describeStop(reply)} in run state ${status}`);
      s.shutdown = true;
      s.regs = await this.readRegisters(s);
      return { kind: "shutdown", rip, instruction };
    }
    s.regs = await this.readRegisters(s);
    if (s.regs.cs !== s.csSelector) {
      s.csSelector = s.regs.cs;
      s.cs64 = await this.csIs64(s);
    }
    if (summary.delivered !== undefined) {
      const d = summary.delivered;
      // An IRQ or NMI taken at the boundary executed no instruction.
      const atBoundary = d.source === "external" || d.source === "nmi";
      return { kind: "delivered", rip, vector: d.vector, errorCode: d.errorCode, source: d.source, ...(atBoundary ? {} : { instruction }) };
    }
    if (insn.kind === "io") {
      const mask = (1n << BigInt(8 * insn.size)) - 1n;
      const value = insn.direction === "in" ? s.regs.gpr[0]! & mask : raxBefore & mask;
      const port = insn.port ?? Number(s.regs.gpr[2]! & 0xffffn);
      return { kind: "io", rip, direction: insn.direction, port, size: insn.size, value, instruction };
    }
    return { kind: "retired", rip, instruction };
  }

  /** Whether CS is a 64-bit code segment now (read from the migration stream's segment cache). */
  private async csIs64(s: Session): Promise<boolean> {
    const cpu = await this.cpuNow(s);
    return cpu.registers.cs.l === 1 && (cpu.registers.efer & (1n << 10n)) !== 0n;
  }

  async steps(n: number): Promise<readonly EngineEvent[]> {
    const out: EngineEvent[] = [];
    for (let i = 0; i < n; i++) {
      const e = await this.step();
      out.push(e);
      if (e.kind === "shutdown" || e.kind === "halted") break;
    }
    return out;
  }

  async run(maxSteps: number): Promise<EngineStop> {
    const s = this.current();
    const deadline = Date.now() + this.options.runTimeoutMs;
    let steps = 0;
    for (;;) {
      if (s.shutdown) return { reason: "shutdown", steps };
      if (s.halted) return { reason: "hlt", steps };
      if (steps >= maxSteps) return { reason: "limit", steps };
      if (Date.now() > deadline) throw new EngineError("timeout", `qemu: no stop within ${this.options.runTimeoutMs / 1000} s (${steps} steps)`);
      await this.step();
      steps++;
    }
  }

  /** The CPU as of now (one migration per step at most). */
  private async cpuNow(s: Session): Promise<QemuCpuState> {
    if (s.cpuRead === undefined) s.cpuRead = (await this.readCpu(s)).cpu;
    return s.cpuRead;
  }

  /** Runs a migration into a unix socket the engine listens on, and parses what arrives. */
  private async readCpu(s: Session) {
    const socketPath = s.dir.file(`migration-${s.migrations++}.sock`);
    const chunks: Buffer[] = [];
    let received: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (received = resolve));
    const server = createServer((connection) => {
      connection.on("data", (chunk: Buffer) => chunks.push(chunk));
      connection.on("end", () => received());
      connection.on("error", () => received());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => resolve());
    });
    try {
      await s.qmp.execute("migrate", { uri: `unix:${socketPath}` });
      const deadline = Date.now() + this.options.stepTimeoutMs;
      for (;;) {
        const info = await s.qmp.query("query-migrate", MigrationInfo);
        if (info.status === "completed") break;
        if (info.status === "failed" || info.status === "cancelled") throw new EngineError("protocol", `qemu: migration ${info.status}${info["error-desc"] === undefined ? "" : ": " + info["error-desc"]}`);
        if (Date.now() > deadline) throw new EngineError("timeout", "qemu: the migration did not complete");
        await new Promise((r) => setTimeout(r, 1));
      }
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), this.options.stepTimeoutMs).unref());
      if ((await Promise.race([done, timeout])) === "timeout") throw new EngineError("timeout", "qemu: the migration stream did not end");
    } finally {
      server.close();
    }
    const bytes = Buffer.concat(chunks);
    s.lastStream = bytes;
    const stream = parseMigrationStream(bytes);
    return { stream, bytes, cpu: cpuStateFromStream(stream, s.shutdown) };
  }

  async state(session?: Session): Promise<ArchState> {
    const s = session ?? this.current();
    if (s.cached !== undefined) return s.cached;
    const cpu = await this.cpuNow(s);
    const memory = readPages(s.ramFile, s.ramSize);
    // Registers come from the stream: the gdbstub truncates GPRs to 32 bits (and R8–R15 to 0)
    // outside 64-bit code.
    s.cached = {
      ...cpu.registers,
      memory,
      cpu: { ...cpu.cpu, halted: cpu.cpu.halted || s.halted, shutdown: s.shutdown },
    };
    return s.cached;
  }

  async raise(event: RaiseRequest): Promise<void> {
    const s = this.current();
    if ("nmi" in event) {
      await s.qmp.execute("inject-nmi");
      return;
    }
    throw new EngineError("usage", `qemu: cannot raise IRQ ${event.irq} mid-run (an IRQ can only be pending in the loaded state)`);
  }

  /** Pages whose contents differ from the loaded state (QEMU does not report writes). */
  async touched(): Promise<readonly PhysicalRange[]> {
    const s = this.current();
    const now = readPages(s.ramFile, s.ramSize);
    const changed: number[] = [];
    const zero = new Uint8Array(PAGE_SIZE);
    const pages = new Set([...now.keys(), ...s.initial.memory.keys()]);
    for (const p of pages) {
      const a = now.get(p) ?? zero;
      const b = s.initial.memory.get(p) ?? zero;
      if (!a.every((v, i) => v === b[i])) changed.push(p);
    }
    changed.sort((x, y) => x - y);
    const out: PhysicalRange[] = [];
    for (const p of changed) {
      const last = out[out.length - 1];
      const start = BigInt(p) * 4096n;
      if (last !== undefined && last.end === start) out[out.length - 1] = { start: last.start, end: start + 4096n };
      else out.push({ start, end: start + 4096n });
    }
    return out;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    this.released = false;
    if (s === null) return;
    s.gdb.drop();
    s.qmp.close();
    await s.child.kill();
    s.dir.remove();
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function describeStop(stop: StopReply | null): string {
  if (stop === null) return "no stop reply";
  switch (stop.kind) {
    case "signal":
      return `signal ${stop.signal}`;
    case "exited":
      return `the target exited (${stop.code})`;
    case "terminated":
      return `the target was terminated (signal ${stop.signal})`;
  }
}

/** Guest RAM from its backing file: non-zero pages only. */
export function readPages(file: string, size: number): Map<number, Uint8Array> {
  const pages = new Map<number, Uint8Array>();
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(1 << 20);
    const zero = Buffer.alloc(PAGE_SIZE);
    for (let offset = 0; offset < size; offset += chunk.length) {
      const n = readSync(fd, chunk, 0, chunk.length, offset);
      for (let p = 0; p + PAGE_SIZE <= n; p += PAGE_SIZE) {
        const page = chunk.subarray(p, p + PAGE_SIZE);
        if (!page.equals(zero)) pages.set((offset + p) / PAGE_SIZE, Uint8Array.from(page));
      }
      if (n < chunk.length) break;
    }
  } finally {
    closeSync(fd);
  }
  return pages;
}

export interface MemoryChunk {
  readonly file: string;
  readonly address: number;
}

/** The state's non-zero pages as contiguous chunks, one file each (for `-device loader`). */
export function writeMemoryChunks(state: ArchState, fileFor: (index: number) => string): MemoryChunk[] {
  return pageRuns(state).map((run, index) => {
    const data = new Uint8Array(run.pages.length * PAGE_SIZE);
    run.pages.forEach((page, i) => data.set(page, i * PAGE_SIZE));
    const file = fileFor(index);
    writeFileSync(file, data);
    return { file, address: run.start * PAGE_SIZE };
  });
}

export interface QemuArguments {
  readonly cpu: string;
  readonly firmware: string;
  readonly ramFile: string;
  readonly ramSize: number;
  readonly qmpSocket: string;
  readonly gdbSocket: string;
  /** `-d int` goes to this file; no interrupt log without it. */
  readonly logFile?: string;
  readonly chunks: readonly MemoryChunk[];
}

/** The QEMU command line (emulator-harnesses.md), with RAM in a shared file the engine reads. */
export function qemuArguments(a: QemuArguments): string[] {
  return [
    "-machine", "pc,accel=tcg,smm=on,memory-backend=ram",
    "-object", `memory-backend-file,id=ram,size=${a.ramSize},mem-path=${a.ramFile},share=on`,
    "-cpu", a.cpu,
    "-bios", a.firmware,
    "-nodefaults", "-no-user-config", "-vga", "none", "-display", "none",
    "-serial", "none", "-parallel", "none", "-monitor", "none",
    "-no-reboot", "-action", "reboot=shutdown,shutdown=pause",
    "-S",
    "-qmp", `unix:${a.qmpSocket},server=on,wait=off`,
    "-gdb", `unix:${a.gdbSocket},server=on,wait=off`,
    ...(a.logFile === undefined ? [] : ["-d", "int", "-D", a.logFile]),
    ...a.chunks.flatMap((c) => ["-device", `loader,file=${c.file},addr=0x${c.address.toString(16)},force-raw=on`]),
  ];
}
