// The architectural state from Bochs's parameter tree (`show "cpu0.X"` for each group the engine
// needs) and its `r` register dump.
import { z } from "zod";
import { POWER_UP_REGISTERS, RESET_DEVICES, type ArchState, type CpuRunState, type InterruptShadow, type Segment, type SegmentName } from "../../contract/state.ts";
import { EngineError } from "../host/errors.ts";
import { ParamInt, ParamSegment, ParamTable, parseParamDump, readParam, type ParamNode } from "./param-tree.ts";

/** The `show` commands a state read issues, in order. */
export const STATE_PARAMS = [
  "cpu0.ES", "cpu0.CS", "cpu0.SS", "cpu0.DS", "cpu0.FS", "cpu0.GS", "cpu0.LDTR", "cpu0.TR",
  "cpu0.GDTR", "cpu0.IDTR", "cpu0.CR0", "cpu0.CR2", "cpu0.CR3", "cpu0.CR4", "cpu0.MSR",
  "cpu0.local_apic", "cpu0.activity_state", "cpu0.inhibit_mask", "cpu0.inhibit_icount", "cpu0.icount",
  "cpu0.debug_trap", "cpu0.pending_event", "cpu0.event_mask", "cpu0.in_smm",
] as const;

const GPR_LINE = /^(rax|rbx|rcx|rdx|rsp|rbp|rsi|rdi|r8 |r9 |r10|r11|r12|r13|r14|r15|rip): ([0-9a-f]{8})_([0-9a-f]{8})$/;
const EFLAGS_LINE = /^eflags 0x([0-9a-f]{8}):/;
const SDM_ORDER = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/** Parses the debugger's `r` output. */
export function parseRegisters(text: string): { gpr: bigint[]; rip: bigint; rflags: bigint } {
  const values = new Map<string, bigint>();
  let rflags: bigint | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const m = GPR_LINE.exec(line);
    if (m !== null) values.set(m[1]!.trim(), BigInt("0x" + m[2]! + m[3]!));
    const f = EFLAGS_LINE.exec(line);
    if (f !== null) rflags = BigInt("0x" + f[1]!);
  }
  const missing = [...SDM_ORDER, "rip"].filter((n) => !values.has(n));
  if (missing.length > 0 || rflags === undefined) throw new EngineError("protocol", `bochs: register dump without ${missing.length > 0 ? missing.join(", ") : "eflags"}`);
  return { gpr: SDM_ORDER.map((n) => values.get(n)!), rip: values.get("rip")!, rflags };
}

const MsrGroup = z.object({ EFER: ParamInt, star: ParamInt, lstar: ParamInt, cstar: ParamInt, fmask: ParamInt, kernelgsbase: ParamInt });
const ApicGroup = z.object({
  task_priority: ParamInt,
  irr0: ParamInt, irr1: ParamInt, irr2: ParamInt, irr3: ParamInt, irr4: ParamInt, irr5: ParamInt, irr6: ParamInt, irr7: ParamInt,
});

function segment(p: z.output<typeof ParamSegment>): Segment {
  return {
    selector: Number(p.selector),
    base: p.base,
    limit: Number(p.limit_scaled & 0xffffffffn),
    type: Number(p.type),
    s: Number(p.segment),
    dpl: Number(p.dpl),
    present: Number(p.p),
    db: Number(p.d_b),
    l: Number(p.l ?? 0n),
    g: Number(p.granularity),
    avl: Number(p.avl),
    // Bochs's "valid" bit is the usable flag of the hidden part.
    unusable: (p.valid & 1n) === 1n ? 0 : 1,
  };
}

/** Bochs event bits (pending_event / event_mask): NMI is bit 0, a pending INTR bit 11. */
const EVENT_NMI = 1n;
/** debug_trap bit 14: a single-step trap (DR6.BS) is due at the next boundary. */
const DEBUG_TRAP_SINGLE_STEP = 1n << 14n;
/** activity_state: 0 active, 1 HLT, 2 shutdown. */
const ACTIVITY = { active: 0n, hlt: 1n, shutdown: 2n } as const;

function highestVector(words: readonly bigint[]): number | null {
  for (let w = words.length - 1; w >= 0; w--) for (let b = 31; b >= 0; b--) if ((words[w]! >> BigInt(b)) & 1n) return w * 32 + b;
  return null;
}

export interface BochsCpu {
  readonly registers: Omit<ArchState, "memory">;
  readonly inSmm: boolean;
}

/** Builds the CPU part of the state from `r` output and the `show` outputs of STATE_PARAMS. */
export function cpuFromDumps(registersText: string, shows: readonly string[]): BochsCpu {
  if (shows.length !== STATE_PARAMS.length) throw new EngineError("protocol", "bochs: missing parameter dumps");
  const nodes = new Map<string, { path: string; value: ParamNode }>();
  shows.forEach((text, i) => {
    const node = parseParamDump(text);
    if (node.path !== STATE_PARAMS[i]) throw new EngineError("protocol", `bochs: asked for ${STATE_PARAMS[i]}, got ${node.path}`);
    nodes.set(node.path, node);
  });
  const get = <T>(path: string, schema: z.ZodType<T>) => readParam(nodes.get(path)!, schema);
  const seg = (name: string) => segment(get(`cpu0.${name}`, ParamSegment));
  const regs = parseRegisters(registersText);
  const msr = get("cpu0.MSR", MsrGroup);
  const apic = get("cpu0.local_apic", ApicGroup);
  const activity = get("cpu0.activity_state", ParamInt);
  const inhibitMask = get("cpu0.inhibit_mask", ParamInt);
  const inhibitIcount = get("cpu0.inhibit_icount", ParamInt);
  const icount = get("cpu0.icount", ParamInt);
  const pending = get("cpu0.pending_event", ParamInt);
  const mask = get("cpu0.event_mask", ParamInt);
  // An inhibit applies to the instruction boundary while icount has not passed inhibit_icount;
  // MOV SS inhibits debug traps too (mask 3), STI only interrupts (mask 1).
  const shadowActive = inhibitMask !== 0n && icount <= inhibitIcount;
  const shadow: InterruptShadow = !shadowActive ? "none" : (inhibitMask & 2n) !== 0n ? "movss" : "sti";
  const cpu: CpuRunState = {
    pendingIrq: highestVector([apic.irr0, apic.irr1, apic.irr2, apic.irr3, apic.irr4, apic.irr5, apic.irr6, apic.irr7]),
    pendingNmi: (pending & EVENT_NMI) !== 0n,
    nmiBlocked: (mask & EVENT_NMI) !== 0n,
    shadow,
    halted: activity === ACTIVITY.hlt,
    shutdown: activity === ACTIVITY.shutdown,
    pendingDebugTrap: (get("cpu0.debug_trap", ParamInt) & DEBUG_TRAP_SINGLE_STEP) !== 0n,
  };
  const table = (name: string) => {
    const t = get(`cpu0.${name}`, ParamTable);
    return { base: t.base, limit: Number(t.limit & 0xffffn) };
  };
  const segments: Record<SegmentName, Segment> = {
    cs: seg("CS"), ds: seg("DS"), es: seg("ES"), fs: seg("FS"), gs: seg("GS"), ss: seg("SS"), tr: seg("TR"), ldtr: seg("LDTR"),
  };
  return {
    registers: {
      gpr: regs.gpr,
      rip: regs.rip,
      rflags: regs.rflags,
      ...segments,
      gdtr: table("GDTR"),
      idtr: table("IDTR"),
      cr0: get("cpu0.CR0", ParamInt),
      cr2: get("cpu0.CR2", ParamInt),
      cr3: get("cpu0.CR3", ParamInt),
      cr4: get("cpu0.CR4", ParamInt),
      // CR8 is the task-priority class: TPR bits 7:4.
      cr8: (apic.task_priority >> 4n) & 15n,
      efer: msr.EFER,
      star: msr.star,
      lstar: msr.lstar,
      cstar: msr.cstar,
      fmask: msr.fmask,
      kernelGsBase: msr.kernelgsbase,
      // Not read from Bochs yet: power-up values, listed as unobservable (BOCHS_UNOBSERVABLE).
      ...POWER_UP_REGISTERS,
      cpu,
      devices: RESET_DEVICES,
    },
    inSmm: get("cpu0.in_smm", ParamInt) !== 0n,
  };
}
