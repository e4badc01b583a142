// The context-switch checker: pure functions from (model, one observed step) to (model,
// violations). It watches a machine from outside, at every step a runner reports, and acts at
// the user↔kernel boundaries: an entry records the task's user context and kernel stack, an exit
// compares them and checks the rules of invariants (a)–(f) (rules.ts). It needs the state after
// a step only where `needsState` says so, so that a runner can skip the cost of reading states
// on ordinary kernel steps.
import type { EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { hex } from "../../contract/hex.ts";
import { GPR_NAMES } from "../../contract/schema.ts";
import { CONTEXT_RULES, INVARIANTS, type ContextRuleId } from "./rules.ts";
import { readLinear, tablePages, translate, userMappings } from "./memory.ts";
import type { Invariant } from "./rules.ts";
import type { ContextConfig, ContextModel, EntryKind, KernelRange, Suspended, TaskRecord, UserContext, Violation } from "./types.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";

const RF = 1n << 16n;
const IF = 1n << 9n;
/** RFLAGS bits SYSRET loads from R11. */
const SYSRET_FLAGS = 0x3c7fd7n;
const RCX = 1;
const RSP = 4;
const R11 = 11;
const MAX_DIFFERENCES_SHOWN = 4;

/** What the checker sees of one step: its event and, where needed, the state after it. */
export interface Observation {
  readonly step: number;
  readonly event: EngineEvent;
  readonly after: ArchState | undefined;
}

export interface Observed {
  readonly model: ContextModel;
  readonly violations: readonly Violation[];
}

const cplOf = (s: ArchState) => s.cs.selector & 3;
const isUser = (cpl: number) => cpl === 3;

export function initialContextModel(config: ContextConfig, initial: ArchState): ContextModel {
  const user = isUser(cplOf(initial));
  return {
    config,
    cpl: cplOf(initial),
    gs: user ? "user" : "kernel",
    lastGs: { base: initial.gs.base, kernel: initial.kernelGsBase },
    tasks: new Map(),
    suspended: new Map(),
    syscallWindow: undefined,
    sharedTop: undefined,
    tablesByCr3: new Map(),
    checks: { a: 0, b: 0, c: 0, d: 0, e: 0, f: 0 },
  };
}

function counted(m: ContextModel, ...invariants: Invariant[]): ContextModel {
  const checks = { ...m.checks };
  for (const i of invariants) {
    checks[i]++;
    for (const rule of INVARIANTS[i].rules) recordExecuted(rule);
  }
  return { ...m, checks };
}

// ---- Instructions, from the bytes events carry (when the engine reports them).

function instructionBytes(event: EngineEvent): Uint8Array | undefined {
  return event.instruction?.bytes;
}

type Boundary = "syscall" | "sysret" | "iret" | "retf" | "swapgs" | "other";

/** The instructions that move between privilege levels or swap GS; prefixes and REX skipped. */
export function boundaryInstruction(bytes: Uint8Array): Boundary {
  let i = 0;
  while (i < bytes.length && [0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65].includes(bytes[i]!)) i++;
  while (i < bytes.length && (bytes[i]! & 0xf0) === 0x40) i++;
  const op = bytes[i];
  if (op === 0xcf) return "iret";
  if (op === 0xca || op === 0xcb) return "retf";
  if (op !== 0x0f) return "other";
  const op2 = bytes[i + 1];
  if (op2 === 0x05) return "syscall";
  if (op2 === 0x07) return "sysret";
  if (op2 === 0x01 && bytes[i + 2] === 0xf8) return "swapgs";
  return "other";
}

/** Whether `observe` needs the state after this step (the runner may skip it otherwise). */
export function needsState(model: ContextModel, event: EngineEvent): boolean {
  if (model.syscallWindow !== undefined) return true;
  if (event.kind === "delivered") return true;
  if (event.kind !== "retired") return false;
  const bytes = instructionBytes(event);
  return bytes === undefined || boundaryInstruction(bytes) !== "other";
}

// ---- Reading the machine.

function taskId(model: ContextModel, s: ArchState): bigint {
  const symbol = model.config.taskSymbol;
  if (symbol === undefined) return s.cr3 & 0x000f_ffff_ffff_f000n;
  return readLinear(s, symbol.address, 8) ?? -1n;
}

function taskLabel(model: ContextModel, id: bigint, n: number): string {
  const symbol = model.config.taskSymbol;
  return symbol === undefined ? `task ${n} (cr3 ${hex(id)})` : `task ${n} (${symbol.name} = ${hex(id)})`;
}

/** TSS.RSP0, or ISTn (1–7), of the state's TSS. */
function tssStack(s: ArchState, ist: number): bigint | undefined {
  return readLinear(s, s.tr.base + (ist === 0 ? 4n : 0x24n + 8n * BigInt(ist - 1)), 8);
}

interface Gate {
  readonly offset: bigint;
  readonly ist: number;
}

function idtGate(s: ArchState, vector: number): Gate | undefined {
  const low = readLinear(s, s.idtr.base + 16n * BigInt(vector), 8);
  const high = readLinear(s, s.idtr.base + 16n * BigInt(vector) + 8n, 4);
  if (low === undefined || high === undefined) return undefined;
  const offset = (low & 0xffffn) | (((low >> 48n) & 0xffffn) << 16n) | (high << 32n);
  return { offset, ist: Number((low >> 32n) & 7n) };
}

/** The user context a delivery from user mode saved: GPRs as they are, RIP CS RFLAGS RSP SS
 *  from the frame it pushed. */
function contextFromFrame(s: ArchState, errorCode: boolean): UserContext | undefined {
  const base = s.gpr[RSP]! + (errorCode ? 8n : 0n);
  const slot = (i: number) => readLinear(s, base + 8n * BigInt(i), 8);
  const [rip, cs, rflags, rsp, ss] = [0, 1, 2, 3, 4].map(slot);
  if (rip === undefined || cs === undefined || rflags === undefined || rsp === undefined || ss === undefined) return undefined;
  const gpr = [...s.gpr];
  gpr[RSP] = rsp;
  return { gpr, rip, rflags, cs: Number(cs & 0xffffn), ss: Number(ss & 0xffffn), ...dataSegments(s) };
}

function dataSegments(s: ArchState) {
  return { ds: s.ds.selector, es: s.es.selector, fs: s.fs.selector, gs: s.gs.selector, fsBase: s.fs.base, gsBase: s.gs.base };
}

function violation(rule: ContextRuleId, step: number, rip: bigint, task: string, message: string, fields: Record<string, string> = {}): Violation {
  const invariant = CONTEXT_RULES.find((r) => r.id === rule)!.invariant;
  return { rule, invariant, step, rip, task, message, fields };
}

// ---- The step.

export function observe(model: ContextModel, observation: Observation): Observed {
  const { event, after } = observation;
  if (after === undefined) return { model, violations: [] };
  const violations: Violation[] = [];
  let m = model;

  // SWAPGS parity: from the instruction's bytes, else from GS.base and KERNEL_GS_BASE trading places.
  const bytes = instructionBytes(event);
  const swapped =
    event.kind === "retired" &&
    (bytes !== undefined
      ? boundaryInstruction(bytes) === "swapgs"
      : m.lastGs !== undefined && m.lastGs.base !== m.lastGs.kernel && after.gs.base === m.lastGs.kernel && after.kernelGsBase === m.lastGs.base);
  if (swapped) m = { ...m, gs: m.gs === "kernel" ? "user" : "kernel" };
  m = { ...m, lastGs: { base: after.gs.base, kernel: after.kernelGsBase } };

  const before = m.cpl;
  const now = cplOf(after);
  if (isUser(before) && !isUser(now)) m = enter(m, observation, after, violations);
  else if (!isUser(before) && isUser(now)) m = leave(m, observation, after, violations);
  else if (!isUser(now)) m = inKernel(m, observation, after, violations);
  return { model: { ...m, cpl: now }, violations };
}

/** CPL 3 → CPL 0: record the task's user context (invariant d, and b for IDT entries). */
function enter(model: ContextModel, { step, event }: Observation, after: ArchState, out: Violation[]): ContextModel {
  let m = counted(model, "d", ...(event.kind === "delivered" ? (["b"] as const) : []));
  const id = taskId(m, after);
  const { model: withTask, task } = ensureTask(m, id, step);
  m = withTask;
  const rsp0 = tssStack(after, 0);

  let kind: EntryKind;
  let context: UserContext | undefined;
  let vector: number | undefined;
  if (event.kind === "delivered") {
    kind = event.source;
    vector = event.vector;
    const gate = idtGate(after, event.vector);
    if (gate === undefined || after.rip !== gate.offset)
      out.push(violation("CTX-04", step, event.rip, task.label,
        `${task.label} reached CPL 0 at ${hex(after.rip)}, which is not the handler of IDT gate ${event.vector} (${gate === undefined ? "unreadable" : hex(gate.offset)})`,
        { vector: String(event.vector), rip: hex(after.rip), gate: gate === undefined ? "unreadable" : hex(gate.offset) }));
    const errorCode = event.errorCode !== undefined;
    context = contextFromFrame(after, errorCode);
    // CTX-02: the CPU switched to RSP0 (or the gate's IST) and pushed the frame below its aligned top.
    const top = gate === undefined ? undefined : tssStack(after, gate.ist);
    if (top !== undefined) {
      const expected = (top & ~0xfn) - (errorCode ? 48n : 40n);
      if (after.gpr[RSP] !== expected)
        out.push(violation("CTX-02", step, event.rip, task.label,
          `${task.label} entered the kernel (vector ${event.vector}) with RSP = ${hex(after.gpr[RSP]!)}, not on ${gate!.ist === 0 ? "its kernel stack (TSS.RSP0" : `the gate's IST${gate!.ist} stack (TSS.IST${gate!.ist}`} = ${hex(top)})`,
          { rsp: hex(after.gpr[RSP]!), expected: hex(expected), stack_top: hex(top) }));
    }
  } else if (event.kind === "retired" && (instructionBytes(event) === undefined ? after.rip === after.lstar : boundaryInstruction(instructionBytes(event)!) === "syscall")) {
    kind = "syscall";
    const userCs = task.record.userCs;
    const userSs = task.record.userSs;
    context = { gpr: after.gpr, rip: after.gpr[RCX]!, rflags: after.gpr[R11]!, cs: userCs, ss: userSs, ...dataSegments(after) };
    if (rsp0 !== undefined) m = { ...m, syscallWindow: { task: id, step, userRsp: after.gpr[RSP]!, top: rsp0 } };
    if (after.rip !== after.lstar)
      out.push(violation("CTX-04", step, event.rip, task.label, `${task.label} reached CPL 0 by SYSCALL at ${hex(after.rip)}, not at LSTAR ${hex(after.lstar)}`, { rip: hex(after.rip), lstar: hex(after.lstar) }));
  } else {
    out.push(violation("CTX-04", step, event.rip, task.label,
      `${task.label} reached CPL 0 at ${hex(after.rip)} through a ${event.kind} step, neither an IDT gate nor SYSCALL`, { event: event.kind, rip: hex(after.rip) }));
    return m;
  }
  if (context === undefined || rsp0 === undefined) return m;
  const suspended: Suspended = { step, kind, vector, at: event.rip, context, kernelStackTop: rsp0 };
  return { ...m, suspended: new Map(m.suspended).set(id, suspended) };
}

/** CPL 0 → CPL 3: the task must find its context again (a), with the user's GS and IF = 1 (c),
 *  its own RSP0 (e), and no user mapping of kernel memory (f). */
function leave(model: ContextModel, { step, event }: Observation, after: ArchState, out: Violation[]): ContextModel {
  let m: ContextModel = counted({ ...model, syscallWindow: undefined }, "c", "e", "f", ...(model.suspended.has(taskId(model, after)) ? (["a"] as const) : []));
  const id = taskId(m, after);
  const ensured = ensureTask(m, id, step);
  m = ensured.model;
  let record = ensured.task.record;
  const label = record.label;
  const rip = event.rip;

  if ((after.rflags & IF) === 0n)
    out.push(violation("CTX-03-IF", step, rip, label, `${label} returned to user mode with interrupts disabled (IF = 0): the timer can no longer preempt it`, { rflags: hex(after.rflags) }));
  if (m.gs !== "user")
    out.push(violation("CTX-03-GS", step, rip, label,
      `${label} returned to user mode with the kernel's GS.base (${hex(after.gs.base)}) live: an entry or exit path is missing its SWAPGS`,
      { "gs.base": hex(after.gs.base), kernel_gs_base: hex(after.kernelGsBase) }));

  const saved = m.suspended.get(id);
  if (saved !== undefined) {
    const differences = contextDifferences(saved, after);
    if (differences.length > 0) {
      const shown = differences.slice(0, MAX_DIFFERENCES_SHOWN).map((d) => `${d.field} = ${d.now} (${d.expected})`).join(", ");
      const more = differences.length > MAX_DIFFERENCES_SHOWN ? ` and ${differences.length - MAX_DIFFERENCES_SHOWN} more` : "";
      out.push(violation("CTX-01", step, rip, label,
        `${label} resumed in user mode with ${shown}${more}; it entered the kernel at step ${saved.step} (${entryText(saved)}) and must get back every register its entry does not define`,
        Object.fromEntries(differences.map((d) => [d.field, `${d.now} (${d.expected})`]))));
    }
    const suspended = new Map(m.suspended);
    suspended.delete(id);
    m = { ...m, suspended };
  }

  // CTX-05: RSP0 is this task's kernel stack top.
  const rsp0 = tssStack(after, 0);
  if (rsp0 !== undefined) {
    if (m.config.kernelStacks === "shared") {
      if (m.sharedTop === undefined) m = { ...m, sharedTop: rsp0 };
      else if (rsp0 !== m.sharedTop)
        out.push(violation("CTX-05", step, rip, label, `${label} runs in user mode with TSS.RSP0 = ${hex(rsp0)}, but the kernel's one stack has its top at ${hex(m.sharedTop)}`, { rsp0: hex(rsp0), stack_top: hex(m.sharedTop) }));
    } else {
      if (record.kernelStackTop === undefined) record = { ...record, kernelStackTop: rsp0 };
      else if (rsp0 !== record.kernelStackTop)
        out.push(violation("CTX-05", step, rip, label,
          `${label} runs in user mode with TSS.RSP0 = ${hex(rsp0)}, but its kernel stack top is ${hex(record.kernelStackTop)} (step ${record.firstRunStep}): the context switch did not set RSP0 for this task`,
          { rsp0: hex(rsp0), stack_top: hex(record.kernelStackTop) }));
      for (const [other, s] of m.suspended)
        if (other !== id && s.kernelStackTop === rsp0) {
          const otherLabel = m.tasks.get(other)?.label ?? hex(other);
          out.push(violation("CTX-05", step, rip, label,
            `${label} runs in user mode with TSS.RSP0 = ${hex(rsp0)}, the kernel stack of ${otherLabel}, which is suspended in the kernel since step ${s.step}: the next interrupt would overwrite its saved state (stale RSP0 after a context switch)`,
            { rsp0: hex(rsp0), suspended_task: otherLabel }));
          break;
        }
    }
  }
  record = { ...record, userCs: after.cs.selector, userSs: after.ss.selector };
  m = { ...m, tasks: new Map(m.tasks).set(id, record) };

  return checkMappings(m, step, rip, label, after, out);
}

/** Kernel steps: the SYSCALL entry's first stack (CTX-02-SYSCALL) and deliveries in ring 0
 *  (CTX-02-RING0). */
function inKernel(model: ContextModel, { step, event }: Observation, after: ArchState, out: Violation[]): ContextModel {
  let m = model;
  const window = m.syscallWindow;
  if (event.kind === "delivered") {
    m = counted(m, "b");
    const rsp = after.gpr[RSP]!;
    const t = translate(after, after.cr3, rsp);
    if (t?.user === true) {
      const label = m.tasks.get(taskId(m, after))?.label ?? "the kernel";
      out.push(violation("CTX-02-RING0", step, event.rip, label,
        `vector ${event.vector} was delivered in kernel mode onto a user-accessible stack (RSP = ${hex(rsp)}): the kernel ran with the user's stack (SYSRETQ to a non-canonical RCX? an entry that did not switch stacks?)`,
        { vector: String(event.vector), rsp: hex(rsp), physical: hex(t.physical) }));
    }
    if (window !== undefined) m = { ...m, syscallWindow: undefined };
    return m;
  }
  if (window !== undefined && after.gpr[RSP] !== window.userRsp) {
    m = counted(m, "b");
    const rsp = after.gpr[RSP]!;
    const low = window.top - m.config.kernelStackSize;
    if (rsp <= low || rsp > window.top) {
      const label = m.tasks.get(window.task)?.label ?? hex(window.task);
      out.push(violation("CTX-02-SYSCALL", step, event.rip, label,
        `after ${label}'s SYSCALL (step ${window.step}) the kernel moved RSP to ${hex(rsp)}, outside the task's kernel stack (${hex(low)}, ${hex(window.top)}] (TSS.RSP0 = ${hex(window.top)}): the entry code is not running on the task's kernel stack`,
        { rsp: hex(rsp), rsp0: hex(window.top), user_rsp: hex(window.userRsp) }));
    }
    m = { ...m, syscallWindow: undefined };
  }
  return m;
}

function ensureTask(model: ContextModel, id: bigint, step: number): { model: ContextModel; task: { record: TaskRecord; label: string } } {
  const existing = model.tasks.get(id);
  if (existing !== undefined) return { model, task: { record: existing, label: existing.label } };
  const record: TaskRecord = { label: taskLabel(model, id, model.tasks.size + 1), kernelStackTop: undefined, firstRunStep: step, userCs: undefined, userSs: undefined };
  return { model: { ...model, tasks: new Map(model.tasks).set(id, record) }, task: { record, label: record.label } };
}

function entryText(s: Suspended): string {
  switch (s.kind) {
    case "syscall":
      return `SYSCALL at ${hex(s.at)}`;
    case "software":
      return `INT ${s.vector} at ${hex(s.at)}`;
    case "exception":
      return `exception ${s.vector} at ${hex(s.at)}`;
    case "external":
      return `interrupt ${s.vector} at ${hex(s.at)}`;
    case "nmi":
      return `NMI at ${hex(s.at)}`;
  }
}

interface Difference {
  readonly field: string;
  readonly now: string;
  readonly expected: string;
}

/** Where the state after a return to user mode differs from the task's saved context. */
function contextDifferences(saved: Suspended, after: ArchState): Difference[] {
  const out: Difference[] = [];
  const c = saved.context;
  const differ = (field: string, now: bigint | number, expected: bigint | number | undefined, what = "was") => {
    if (expected !== undefined && now !== expected) out.push({ field, now: hex(now), expected: `${what} ${hex(expected)}` });
  };
  const syscall = saved.kind === "syscall";
  // What the entry defines: the result in RAX (SYSCALL, INT n); RCX and R11 (SYSCALL, checked below).
  const free = new Set<number>(syscall ? [0, RCX, R11] : saved.kind === "software" ? [0] : []);
  GPR_NAMES.forEach((name, i) => {
    if (!free.has(i)) differ(name, after.gpr[i]!, c.gpr[i]);
  });
  differ("rip", after.rip, c.rip);
  differ("rflags", after.rflags & ~RF, c.rflags & ~RF);
  if (syscall) {
    if (after.gpr[RCX] !== after.rip) out.push({ field: "rcx", now: hex(after.gpr[RCX]!), expected: `the return RIP ${hex(after.rip)}, as SYSRET leaves it` });
    if ((after.gpr[R11]! & SYSRET_FLAGS) !== (after.rflags & SYSRET_FLAGS))
      out.push({ field: "r11", now: hex(after.gpr[R11]!), expected: `the return RFLAGS ${hex(after.rflags)}, as SYSRET leaves it` });
  }
  differ("cs", after.cs.selector, c.cs);
  differ("ss", after.ss.selector, c.ss);
  differ("ds", after.ds.selector, c.ds);
  differ("es", after.es.selector, c.es);
  differ("fs", after.fs.selector, c.fs);
  differ("gs", after.gs.selector, c.gs);
  differ("fs.base", after.fs.base, c.fsBase);
  differ("gs.base", after.gs.base, c.gsBase);
  return out;
}

// ---- CTX-06: user mappings.

function overlaps(a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }): boolean {
  return a.start < b.end && b.start < a.end;
}

/** Physical pages of a linear range (descriptor tables, TSS) under the state's CR3. */
function physicalPages(s: ArchState, linear: bigint, length: bigint, what: string): KernelRange[] {
  const out: KernelRange[] = [];
  for (let page = linear & ~0xfffn; page < linear + length; page += 4096n) {
    const t = translate(s, s.cr3, page);
    if (t !== undefined) out.push({ start: t.physical & ~0xfffn, end: (t.physical & ~0xfffn) + 4096n, what });
  }
  return out;
}

function kernelRanges(m: ContextModel, s: ArchState, tables: readonly bigint[]): KernelRange[] {
  const ranges: KernelRange[] = [...m.config.kernelMemory];
  ranges.push(...physicalPages(s, s.gdtr.base, BigInt(s.gdtr.limit) + 1n, "the GDT"));
  ranges.push(...physicalPages(s, s.idtr.base, BigInt(s.idtr.limit) + 1n, "the IDT"));
  ranges.push(...physicalPages(s, s.tr.base, BigInt(s.tr.limit) + 1n, "the TSS"));
  for (const t of tables) ranges.push({ start: t, end: t + 4096n, what: "a page table" });
  const size = m.config.kernelStackSize;
  const stack = (top: bigint, what: string) => {
    const low = top - size;
    ranges.push(...physicalPages(s, low, size, what));
  };
  for (const record of m.tasks.values()) if (record.kernelStackTop !== undefined) stack(record.kernelStackTop, `${record.label}'s kernel stack`);
  for (let ist = 1; ist <= 7; ist++) {
    const top = tssStack(s, ist);
    if (top !== undefined && top !== 0n) stack(top, `the IST${ist} stack`);
  }
  return ranges;
}

function checkMappings(model: ContextModel, step: number, rip: bigint, label: string, after: ArchState, out: Violation[]): ContextModel {
  let m = model;
  const cr3 = after.cr3 & 0x000f_ffff_ffff_f000n;
  let tables = m.tablesByCr3.get(cr3);
  if (tables === undefined) {
    tables = tablePages(after, cr3);
    m = { ...m, tablesByCr3: new Map(m.tablesByCr3).set(cr3, tables) };
  }
  const user = userMappings(after, cr3);
  const kernel = kernelRanges(m, after, [...tables, ...user.tables]);
  for (const mapping of user.mappings) {
    const span = { start: mapping.physical, end: mapping.physical + mapping.size };
    const hit = kernel.find((k) => overlaps(span, k));
    if (hit !== undefined) {
      out.push(violation("CTX-06", step, rip, label,
        `${label}'s address space lets user mode ${mapping.writable ? "write" : "read"} kernel memory: ${hex(mapping.linear)} maps physical ${hex(mapping.physical)}, ${hit.what}`,
        { linear: hex(mapping.linear), physical: hex(mapping.physical), size: hex(mapping.size), writable: String(mapping.writable), kernel: hit.what }));
      break;
    }
  }
  return m;
}
