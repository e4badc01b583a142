// A generic bridge to any emulator with a GDB remote-serial-protocol stub (`--engine gdb --gdb
// HOST:PORT`, e.g. QEMU's `-s`): the engine sets and reads what the stub's target description
// exposes and single-steps the target in lockstep. Everything else — hidden segment parts,
// GDTR/IDTR/TR/LDTR, the SYSCALL MSRs, the run-time CPU state, and memory unless the stub can
// address it physically — is declared unobservable (reported as not compared), and has to be in
// place in the target already (the bridge cannot set it): the user boots the emulator into the
// environment the states assume (for QEMU, `ringspec` can: see README).
//
// Registers are matched by the names GDB's x86-64 descriptions use (rax…r15, rip, eflags, cs…gs,
// fs_base, gs_base, k_gs_base, cr0, cr2, cr3, cr4, cr8, efer). Memory: QEMU's stub can be switched
// to physical addresses (`Qqemu.PhyMemMode:1`); other stubs read linear addresses, which equal
// physical ones only where the target maps them 1:1, so memory is then not compared.
// Events: a stub reports only that a step ended, so every step is `retired` unless it is a HLT
// that does not come back (`halted`); the step granularity is the stub's.
import type { AsyncEngine, EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { PAGE_SIZE, type ArchState, type Segment } from "../../contract/state.ts";
import { EngineError } from "../host/errors.ts";
import { RspClient, SIGNAL, type RspTarget } from "./rsp.ts";
import { loadTargetDescription, registerBytes, registerValue, type RegisterDescription, type TargetDescription } from "./target-description.ts";
import { classifyInstruction, stepInstruction } from "../host/instruction.ts";

export interface GdbEngineOptions {
  readonly target: RspTarget;
  readonly connectTimeoutMs?: number;
  readonly stepTimeoutMs?: number;
  readonly haltWaitMs?: number;
}

/** `HOST:PORT` (or a path to a unix socket) as given to `--gdb`. */
export function parseGdbTarget(text: string): RspTarget | string {
  if (text.startsWith("/") || text.startsWith("./")) return { path: text };
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) return `expected HOST:PORT or a socket path, got ${JSON.stringify(text)}`;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is out of range`;
  return { host: m[1] ?? m[2]!, port };
}

const GPRS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"] as const;
const SELECTORS = ["cs", "ss", "ds", "es", "fs", "gs"] as const;
const CONTROL = { cr0: "cr0", cr2: "cr2", cr3: "cr3", cr4: "cr4", cr8: "cr8", efer: "efer" } as const;

/** Field patterns (contract/compare.ts names) a stub with these registers cannot observe. */
export function gdbUnobservable(registers: ReadonlySet<string>, physicalMemory: boolean): string[] {
  const out: string[] = [];
  for (const seg of ["cs", "ss", "ds", "es", "fs", "gs"]) {
    for (const f of ["limit", "type", "s", "dpl", "present", "db", "l", "g", "avl", "unusable"]) out.push(`sregs.${seg}.${f}`);
    if (!(seg === "fs" && registers.has("fs_base")) && !(seg === "gs" && registers.has("gs_base"))) out.push(`sregs.${seg}.base`);
    if (!registers.has(seg)) out.push(`sregs.${seg}.selector`);
  }
  if (!registers.has("fs_base")) out.push("msrs.FS_BASE");
  if (!registers.has("gs_base")) out.push("msrs.GS_BASE");
  out.push("sregs.tr.*", "sregs.ldt.*", "sregs.gdt.*", "sregs.idt.*");
  for (const [field, reg] of Object.entries(CONTROL)) if (!registers.has(reg)) out.push(`sregs.${field}`);
  out.push("msrs.STAR", "msrs.LSTAR", "msrs.CSTAR", "msrs.SFMASK");
  if (!registers.has("k_gs_base")) out.push("msrs.KERNEL_GS_BASE");
  for (const g of [...GPRS, "rip"]) if (!registers.has(g)) out.push(`regs.${g}`);
  if (!registers.has("eflags")) out.push("regs.rflags");
  out.push("msrs.SYSENTER_CS", "msrs.SYSENTER_ESP", "msrs.SYSENTER_EIP", "msrs.APIC_BASE", "sregs.dr*");
  out.push("cpu.*", "devices.*");
  if (!physicalMemory) out.push("memory*");
  return out;
}

interface Connection {
  readonly client: RspClient;
  readonly target: TargetDescription;
  readonly byName: ReadonlyMap<string, RegisterDescription>;
  readonly physicalMemory: boolean;
  readonly name: string;
}

export class GdbEngine implements AsyncEngine {
  private connection: Connection | null = null;
  private loaded: ArchState | null = null;
  private halted = false;
  /** Physical pages state() reads (see there). */
  private readonly watched = new Set<number>();
  private readonly options: Required<Omit<GdbEngineOptions, "target">> & { target: RspTarget };

  constructor(options: GdbEngineOptions) {
    this.options = {
      target: options.target,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      stepTimeoutMs: options.stepTimeoutMs ?? 5_000,
      haltWaitMs: options.haltWaitMs ?? 100,
    };
  }

  get capabilities(): EngineCapabilities {
    const c = this.connection;
    const registers = new Set(c?.byName.keys() ?? []);
    return {
      name: c?.name ?? "gdb stub",
      profiles: ["intel", "amd"],
      singleStep: false,
      raise: false,
      touched: false,
      unobservable: gdbUnobservable(registers, c?.physicalMemory ?? false),
    };
  }

  private async connect(): Promise<Connection> {
    if (this.connection !== null) return this.connection;
    // The stub is the user's, already running: no retrying a refused connection.
    const client = await RspClient.connect(this.options.target, { timeoutMs: this.options.connectTimeoutMs, stillStarting: () => false });
    try {
      const target = await loadTargetDescription((annex) => client.readFeatureFile(annex));
      if (target === null) throw new EngineError("protocol", "gdb stub: no target description (qXfer:features:read)");
      const byName = new Map(target.registers.map((r) => [r.name, r]));
      for (const needed of ["rip", "rsp", "eflags"]) {
        if (!byName.has(needed)) throw new EngineError("protocol", `gdb stub: the target description has no ${needed} (not an x86-64 target?)`);
      }
      // QEMU's stub can address physical memory; others answer with an empty packet.
      const physicalMemory = (await client.command("Qqemu.PhyMemMode:1")) === "OK";
      const where = "path" in this.options.target ? this.options.target.path : `${this.options.target.host}:${this.options.target.port}`;
      this.connection = { client, target, byName, physicalMemory, name: `gdb stub at ${where}${target.architecture === undefined ? "" : ` (${target.architecture})`}` };
      return this.connection;
    } catch (e) {
      client.drop();
      throw e;
    }
  }

  private async registers(c: Connection): Promise<Map<string, bigint>> {
    const g = await c.client.readRegisters();
    const out = new Map<string, bigint>();
    for (const reg of c.target.registers) {
      const v = registerValue(g, reg);
      if (v !== undefined) out.set(reg.name, v);
    }
    return out;
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    void profile;
    const c = await this.connect();
    this.halted = false;
    this.watched.clear();
    // Memory first (page tables may change what the registers mean to the stub). Only what
    // differs is written: a target booted into the state is left untouched.
    if (c.physicalMemory) {
      for (const [page, bytes] of state.memory) {
        const address = BigInt(page) * BigInt(PAGE_SIZE);
        const now = await c.client.readMemory(address, PAGE_SIZE);
        if (now === null || !now.equals(bytes)) await c.client.writeMemory(address, bytes);
      }
    }
    const current = await this.registers(c);
    const writes: [string, bigint][] = [
      ...GPRS.map((n, i) => [n, state.gpr[i]!] as [string, bigint]),
      ["rip", state.rip],
      ["eflags", state.rflags],
      ["fs_base", state.fs.base],
      ["gs_base", state.gs.base],
      ["k_gs_base", state.kernelGsBase],
      ["cr2", state.cr2],
      ["cr8", state.cr8],
    ];
    for (const [name, value] of writes) {
      const reg = c.byName.get(name);
      if (reg === undefined || current.get(name) === BigInt.asUintN(reg.bits, value)) continue;
      await c.client.writeRegister(reg.number, registerBytes(reg, value)).catch((e: unknown) => {
        throw new EngineError("unsupported-state", `gdb stub: cannot set ${name} to 0x${value.toString(16)} (${e instanceof Error ? e.message : String(e)})`);
      });
    }
    // Check what the stub holds now against the state, for every register it exposes.
    const now = await this.registers(c);
    const expect = new Map<string, bigint>([
      ...writes,
      ...SELECTORS.map((s) => [s, BigInt(state[s].selector)] as [string, bigint]),
      ["cr0", state.cr0], ["cr3", state.cr3], ["cr4", state.cr4], ["efer", state.efer],
    ]);
    for (const [name, want] of expect) {
      const got = now.get(name);
      if (got === undefined) continue;
      const mask = name === "eflags" || SELECTORS.includes(name as (typeof SELECTORS)[number]) ? 0xffffffffn : (1n << 64n) - 1n;
      if ((got & mask) !== (want & mask)) {
        throw new EngineError("unsupported-state", `gdb stub: ${name} is 0x${got.toString(16)}, the state has 0x${want.toString(16)} (the bridge cannot set it: boot the target into the case's environment)`);
      }
    }
    this.loaded = state;
  }

  private ready(): { c: Connection; state: ArchState } {
    if (this.connection === null || this.loaded === null) throw new EngineError("usage", "gdb engine: load() a state first");
    return { c: this.connection, state: this.loaded };
  }

  async step(): Promise<EngineEvent> {
    const { c } = this.ready();
    const before = await this.registers(c);
    const rip = before.get("rip")!;
    if (this.halted) return { kind: "halted", rip };
    const bytes = (await c.client.readMemory(rip, 15).catch(() => null)) ?? Buffer.alloc(0);
    const insn = classifyInstruction(bytes, 64, rip);
    const instruction = stepInstruction(bytes, 64, rip);
    const wait = insn.kind === "hlt" ? this.options.haltWaitMs : this.options.stepTimeoutMs;
    let stop;
    try {
      stop = await c.client.resume("s", wait);
    } catch (e) {
      if (!(e instanceof EngineError && e.kind === "timeout")) throw e;
      c.client.interrupt();
      await c.client.waitStop(this.options.stepTimeoutMs);
      if (insn.kind === "hlt") {
        this.halted = true;
        return { kind: "halted", rip, instruction };
      }
      throw new EngineError("timeout", `gdb stub: a step at 0x${rip.toString(16)} did not finish within ${wait} ms`);
    }
    if (stop.kind !== "signal") throw new EngineError("crash", `gdb stub: the target ${stop.kind === "exited" ? `exited (${stop.code})` : `was terminated (signal ${stop.signal})`}`);
    if (stop.signal !== SIGNAL.TRAP) throw new EngineError("protocol", `gdb stub: a step stopped with signal ${stop.signal}`);
    return insn.kind === "hlt" ? { kind: "halted", rip, instruction } : { kind: "retired", rip, instruction };
  }

  async steps(n: number): Promise<readonly EngineEvent[]> {
    const out: EngineEvent[] = [];
    for (let i = 0; i < n; i++) {
      const e = await this.step();
      out.push(e);
      if (e.kind === "halted" && this.halted) break;
    }
    return out;
  }

  async run(maxSteps: number): Promise<EngineStop> {
    this.ready();
    let steps = 0;
    for (;;) {
      if (this.halted) return { reason: "hlt", steps };
      if (steps >= maxSteps) return { reason: "limit", steps };
      await this.step();
      steps++;
    }
  }

  async state(): Promise<ArchState> {
    const { c, state } = this.ready();
    const r = await this.registers(c);
    const reg = (name: string, fallback: bigint) => r.get(name) ?? fallback;
    const seg = (name: (typeof SELECTORS)[number], base?: bigint): Segment => ({
      ...state[name],
      selector: Number(reg(name, BigInt(state[name].selector)) & 0xffffn),
      ...(base === undefined ? {} : { base }),
    });
    let memory: Map<number, Uint8Array> = new Map(state.memory);
    if (c.physicalMemory) {
      // A stub does not say what was written: the bridge reads the loaded state's pages, the
      // pages it saw in use before, and the stack pages around RSP (where transitions push their
      // frames), where RSP's linear address is identity-mapped. A page it does not read counts
      // as zero: a difference, never a pass.
      const rsp = reg("rsp", state.gpr[4]!);
      const stack = [rsp - 8n, rsp, rsp + BigInt(PAGE_SIZE) - 1n].filter((a) => a >= 0n && a < 1n << 52n).map((a) => Number(a >> 12n));
      for (const page of [...state.memory.keys(), ...stack]) this.watched.add(page);
      memory = new Map();
      for (const page of this.watched) {
        const bytes = await c.client.readMemory(BigInt(page) * BigInt(PAGE_SIZE), PAGE_SIZE);
        if (bytes !== null && bytes.some((b) => b !== 0)) memory.set(page, Uint8Array.from(bytes));
      }
    }
    return {
      ...state,
      gpr: GPRS.map((n, i) => reg(n, state.gpr[i]!)),
      rip: reg("rip", state.rip),
      rflags: reg("eflags", state.rflags),
      cs: seg("cs"), ss: seg("ss"), ds: seg("ds"), es: seg("es"),
      fs: seg("fs", reg("fs_base", state.fs.base)),
      gs: seg("gs", reg("gs_base", state.gs.base)),
      cr0: reg("cr0", state.cr0), cr2: reg("cr2", state.cr2), cr3: reg("cr3", state.cr3), cr4: reg("cr4", state.cr4),
      cr8: reg("cr8", state.cr8), efer: reg("efer", state.efer),
      kernelGsBase: reg("k_gs_base", state.kernelGsBase),
      memory,
      cpu: { ...state.cpu, halted: this.halted },
    };
  }

  async raise(event: RaiseRequest): Promise<void> {
    this.ready();
    throw new EngineError("usage", `gdb stub: cannot raise ${"nmi" in event ? "an NMI" : `IRQ ${event.irq}`}`);
  }

  async touched(): Promise<readonly PhysicalRange[]> {
    this.ready();
    return [];
  }

  async close(): Promise<void> {
    const c = this.connection;
    this.connection = null;
    this.loaded = null;
    if (c === null) return;
    if (c.physicalMemory) await c.client.command("Qqemu.PhyMemMode:0").catch(() => undefined);
    c.client.drop();
  }
}
