// One step (vector README, "Running a vector" 3): an instruction, with the delivery of any fault
// it raised; or one event delivered at an instruction boundary. `run` repeats it.
import { decode } from "../decode/decode.ts";
import { isFault, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import { canonical, cpl, in64BitMode, MASK64, RFLAGS } from "../machine/registers.ts";
import { INTEL, type Profile } from "../profile.ts";
import type { RuleId } from "../rules/registry.ts";
import type { StepEvent, StepResult, RunResult } from "./events.ts";
import { executorFor } from "./execute.ts";
import type { ExecEnv } from "./executor.ts";
import { Transaction } from "./transaction.ts";
import type { Instruction } from "../decode/instruction.ts";

export interface StepOptions {
  readonly profile?: Profile;
  /** Collects the rule IDs the step exercises. */
  readonly coverage?: Set<RuleId>;
  /** `idt`: faults are delivered through the IDT (the architecture); `stop`: the step ends with
   *  a `fault` event and the machine left at the faulting instruction (for unit tests). */
  readonly delivery?: "idt" | "stop";
  /** Value read by IN (default all ones: nothing answers on the bus). */
  readonly portIn?: (port: number, size: 1 | 2 | 4) => bigint;
}

const DEFAULT_PORT_IN = (_port: number, size: 1 | 2 | 4): bigint => (1n << BigInt(8 * size)) - 1n;

/** Linear address of the instruction pointer: CS.base applies outside 64-bit mode. */
function fetchAddress(m: Machine, offset: number): bigint {
  return in64BitMode(m) ? (m.rip + BigInt(offset)) & MASK64 : (m.cs.base + ((m.rip + BigInt(offset)) & 0xffff_ffffn)) & 0xffff_ffffn;
}

/** Decodes at RIP; fetch faults (#PF, #GP for non-canonical RIP) come back as faults. */
export function fetchAndDecode(t: Transaction) {
  const m = t.m;
  const mode = cpl(m) === 3 ? "user" : "supervisor";
  return decode((i: number) => {
    const address = fetchAddress(m, i);
    if (!canonical(address)) return t.fault("CANON-FETCH", 13, 0);
    const byte = t.readLinear(address, 1, mode, { kind: "execute" });
    return typeof byte === "bigint" ? Number(byte) : byte;
  }, in64BitMode(m));
}

export function step(state: Machine, options: StepOptions = {}): StepResult {
  const profile = options.profile ?? INTEL;
  const coverage = options.coverage ?? null;
  const rip = state.rip;
  if (state.cpu.shutdown) return { state, event: { kind: "shutdown", rip } };
  if (state.cpu.halted) return { state, event: { kind: "halted", rip } };

  const t = new Transaction(state, profile, coverage);
  const decoded = fetchAndDecode(t);
  if (isFault(decoded)) return faulted(state, t, decoded, undefined, options);
  if (decoded.kind === "unsupported")
    return { state, event: { kind: "unsupported", rip, bytes: decoded.bytes, reason: decoded.reason } };
  const insn = decoded;
  const executor = executorFor(insn.mnemonic);
  if (executor === undefined)
    return { state, event: { kind: "unsupported", rip, bytes: insn.bytes, reason: `no semantics for ${insn.mnemonic}` } };

  // RF-01: RF is cleared by every instruction that completes; RIP moves on unless it branches.
  const nextRip = in64BitMode(state) ? (rip + BigInt(insn.length)) & MASK64 : (rip + BigInt(insn.length)) & 0xffff_ffffn;
  t.update("RF-01", { rip: nextRip, rflags: t.m.rflags & ~RFLAGS.RF });
  const env: ExecEnv = { portIn: options.portIn ?? DEFAULT_PORT_IN };
  const outcome = executor(t, insn, env);
  if (isFault(outcome)) return faulted(state, t, outcome, insn, options);
  const after = t.m;
  if (outcome === undefined) return { state: after, event: { kind: "retired", rip, instruction: insn } };
  switch (outcome.kind) {
    case "halt":
      return { state: { ...after, cpu: { ...after.cpu, halted: true } }, event: { kind: "halted", rip } };
    case "io":
      return { state: after, event: { kind: "io", rip, direction: outcome.direction, port: outcome.port, size: outcome.size, value: outcome.value, instruction: insn } };
    case "software-interrupt":
      // Delivery through the IDT is the event-delivery family's; until then it stops here.
      return { state, event: { kind: "unsupported", rip, bytes: insn.bytes, reason: "software interrupt delivery not modelled yet" } };
  }
}

function faulted(state: Machine, t: Transaction, f: Fault, insn: Instruction | undefined, _options: StepOptions): StepResult {
  return { state: t.machineAfterFault(state), event: { kind: "fault", rip: state.rip, fault: f, instruction: insn } };
}

export interface RunOptions extends StepOptions {
  readonly maxSteps: number;
  /** Wall-clock limit in milliseconds; checked every 1024 steps. */
  readonly timeoutMs?: number;
  /** Called after every step (traces). */
  readonly onStep?: (before: Machine, result: StepResult) => void;
}

const STOPPING: Partial<Record<StepEvent["kind"], RunResult["reason"]>> = {
  shutdown: "shutdown",
  unsupported: "unsupported",
  fault: "fault",
};

export function run(state: Machine, options: RunOptions): RunResult {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let m = state;
  let last: StepEvent | undefined;
  for (let steps = 0; ; steps++) {
    if (m.cpu.shutdown) return { state: m, reason: "shutdown", steps, last };
    if (m.cpu.halted && !canWake(m)) return { state: m, reason: "hlt", steps, last };
    if (steps >= options.maxSteps) return { state: m, reason: "limit", steps, last };
    if ((steps & 1023) === 1023 && Date.now() > deadline) return { state: m, reason: "timeout", steps, last };
    const result = step(m, options);
    options.onStep?.(m, result);
    last = result.event;
    const stop = STOPPING[result.event.kind];
    m = result.state;
    if (stop !== undefined) return { state: m, reason: stop, steps: steps + (stop === "unsupported" ? 0 : 1), last };
  }
}

/** HLT-03: an NMI, or an external interrupt with IF = 1, wakes a halted CPU. */
export function canWake(m: Machine): boolean {
  return m.cpu.pendingNmi || (m.cpu.pendingIrq !== null && (m.rflags & RFLAGS.IF) !== 0n);
}
