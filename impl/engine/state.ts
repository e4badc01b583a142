// The contract's ArchState ⇄ the Machine: load refuses a state outside the contract's one input
// domain (contract/scope.ts modelScopeViolation: the model's scope, register widths, MAXPHYADDR,
// the page budget — the same refusal as the loader's and spec's) or beyond this engine's own page
// cap, and builds a fresh Machine — so every cache starts empty —
// and state reads one back. Also the touched-page list (Engine.touched). Not a cache.
import type { ArchState, Segment, CpuRunState, InterruptShadow } from "../../contract/state.ts";
import { timerCounting } from "../../contract/state.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { profileByName } from "../../contract/profile.ts";
import type { PhysicalRange } from "../../contract/engine.ts";
import { modelScopeViolation } from "../../contract/scope.ts";
import { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { getFlags } from "../flags.ts";
import { allocateFrame } from "../memory/pool.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  ATTR, A_DPL_SHIFT, A_TYPE, BASE_HI, BASE_LO, CS, DS, ES, FS, GS, LDTR, LIMIT, RIP_HI, RIP_LO, SEG_STRIDE, SEL,
  SHADOW_MOVSS, SHADOW_NONE, SHADOW_STI, SS, TR, PAGE_BYTES, F_TOUCHED, STAR_LO, LSTAR_LO, CSTAR_LO, FMASK_LO,
  KERNEL_GS_BASE_LO, SYSENTER_CS_LO, SYSENTER_ESP_LO, SYSENTER_EIP_LO, APIC_BASE_LO, DR0_LO, DR1_LO, DR2_LO,
  DR3_LO, DR6_LO, DR7_LO, attrDpl,
} = constsModule;

const MASK64 = (1n << 64n) - 1n;

export function lo32(v: bigint): number {
  return Number(v & 0xffffffffn) | 0;
}
export function hi32(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn) | 0;
}
/** The 64-bit value of int32 halves. */
export function big(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Machine.msr slot of each MSR the contract's state names. */
const MSR_FIELDS = [
  ["star", STAR_LO], ["lstar", LSTAR_LO], ["cstar", CSTAR_LO], ["fmask", FMASK_LO], ["kernelGsBase", KERNEL_GS_BASE_LO],
  ["sysenterCs", SYSENTER_CS_LO], ["sysenterEsp", SYSENTER_ESP_LO], ["sysenterEip", SYSENTER_EIP_LO], ["apicBase", APIC_BASE_LO],
] as const;

/** Machine.debug slot of each debug register. */
const DEBUG_FIELDS = [
  ["dr0", DR0_LO], ["dr1", DR1_LO], ["dr2", DR2_LO], ["dr3", DR3_LO], ["dr6", DR6_LO], ["dr7", DR7_LO],
] as const;

/** A fresh Machine holding `state`; RangeError naming the field when the state is outside the model
 *  or the page budget. */
export function loadState(state: ArchState, profile: ProfileName, maxPages: number, uncached: boolean): Machine {
  const violation = modelScopeViolation(state);
  if (violation !== null) throw new RangeError(`state outside the model: ${violation}`);
  if (profile !== "intel" && profile !== "amd") throw new RangeError(`unknown profile ${String(profile)}`);
  const m = new Machine({ maxPages, uncached });
  m.profile = profileByName(profile);
  for (let n = 0; n < 16; n++) {
    const v = state.gpr[n]! & MASK64;
    m.regs[2 * n] = lo32(v);
    m.regs[2 * n + 1] = hi32(v);
  }
  m.regs[RIP_LO] = lo32(state.rip);
  m.regs[RIP_HI] = hi32(state.rip);
  m.flags = Number(state.rflags) | 0;
  const segs: [number, Segment][] = [
    [ES, state.es], [CS, state.cs], [SS, state.ss], [DS, state.ds], [FS, state.fs], [GS, state.gs],
    [TR, state.tr], [LDTR, state.ldtr],
  ];
  for (const [s, seg] of segs) loadSegment(m, s, seg);
  m.gdtrLo = lo32(state.gdtr.base);
  m.gdtrHi = hi32(state.gdtr.base);
  m.gdtrLimit = state.gdtr.limit & 0xffff;
  m.idtrLo = lo32(state.idtr.base);
  m.idtrHi = hi32(state.idtr.base);
  m.idtrLimit = state.idtr.limit & 0xffff;
  m.cr0 = Number(state.cr0) | 0;
  m.cr2Lo = lo32(state.cr2);
  m.cr2Hi = hi32(state.cr2);
  m.cr3Lo = lo32(state.cr3);
  m.cr3Hi = hi32(state.cr3);
  m.cr4 = Number(state.cr4) | 0;
  m.cr8 = Number(state.cr8);
  m.efer = Number(state.efer) | 0;
  for (const [field, slot] of MSR_FIELDS) {
    m.msr[slot] = lo32(state[field]);
    m.msr[slot + 1] = hi32(state[field]);
  }
  for (const [field, slot] of DEBUG_FIELDS) {
    m.debug[slot] = lo32(state[field]);
    m.debug[slot + 1] = hi32(state[field]);
  }
  for (const [page, bytes] of state.memory) {
    const slot = allocateFrame(m, page);
    if (slot < 0) throw new RangeError(`memory: more than ${maxPages} pages (the engine's cap)`);
    m.pool8.set(bytes, slot * PAGE_BYTES);
  }
  const cpu = state.cpu;
  m.pendingIrq = cpu.pendingIrq ?? -1;
  m.pendingNmi = cpu.pendingNmi;
  m.nmiBlocked = cpu.nmiBlocked;
  m.shadow = cpu.shadow === "sti" ? SHADOW_STI : cpu.shadow === "movss" ? SHADOW_MOVSS : SHADOW_NONE;
  m.halted = cpu.halted;
  m.shutdown = cpu.shutdown;
  m.pendingDebugTrap = cpu.pendingDebugTrap;
  const timer = state.devices.timer;
  m.timerPeriod = timer.period;
  m.timerVector = timer.vector;
  m.timerCountdown = timer.countdown;
  m.timerWaitingEoi = timer.waitingEoi;
  m.timerCounting = timerCounting(timer);
  m.exitValue = state.devices.exitValue ?? -1;
  m.updateMode();
  return m;
}

function loadSegment(m: Machine, s: number, seg: Segment): void {
  const b = s * SEG_STRIDE;
  const segments = m.segments;
  segments[b + SEL] = seg.selector & 0xffff;
  segments[b + BASE_LO] = lo32(seg.base);
  segments[b + BASE_HI] = hi32(seg.base);
  segments[b + LIMIT] = seg.limit | 0;
  segments[b + ATTR] = (seg.type & 15) | ((seg.s & 1) << 4) | ((seg.dpl & 3) << A_DPL_SHIFT) | ((seg.present & 1) << 7) |
    ((seg.avl & 1) << 12) | ((seg.l & 1) << 13) | ((seg.db & 1) << 14) | ((seg.g & 1) << 15) | ((seg.unusable & 1) << 16);
}

function segment(m: Machine, s: number): Segment {
  const b = s * SEG_STRIDE;
  const segments = m.segments;
  const a = segments[b + ATTR]!;
  return {
    selector: segments[b + SEL]! & 0xffff,
    base: big(segments[b + BASE_LO]!, segments[b + BASE_HI]!),
    limit: segments[b + LIMIT]! >>> 0,
    type: a & A_TYPE,
    s: (a >> 4) & 1,
    dpl: attrDpl(a),
    present: (a >> 7) & 1,
    db: (a >> 14) & 1,
    l: (a >> 13) & 1,
    g: (a >> 15) & 1,
    avl: (a >> 12) & 1,
    unusable: (a >> 16) & 1,
  };
}

/** The frames (4 KiB) `ranges` reach, as [first, last] pairs. */
function framesReached(ranges: readonly PhysicalRange[]): [number, number][] {
  return ranges.filter((r) => r.end > r.start).map((r) => [Number(r.start >> 12n), Number((r.end - 1n) >> 12n)]);
}

/** The machine's state in the contract's terms; with `ranges`, memory only of the frames they
 *  reach (Engine.state). `peek`: the pages are views of the pool, not copies (Engine.peekState). */
export function machineState(m: Machine, ranges?: readonly PhysicalRange[], peek = false): ArchState {
  const gpr: bigint[] = [];
  for (let n = 0; n < 16; n++) gpr.push(big(m.regs[2 * n]!, m.regs[2 * n + 1]!));
  const memory = new Map<number, Uint8Array>();
  const spans = ranges === undefined ? undefined : framesReached(ranges);
  // No range (a lockstep checkpoint that compares registers only): no frame is listed at all.
  if (spans === undefined || spans.length > 0) {
    const frames: [number, number][] = [];
    for (const [frame, slot] of m.frameSlot) if (spans === undefined || spans.some(([first, last]) => frame >= first && frame <= last)) frames.push([frame, slot]);
    frames.sort((a, b) => a[0] - b[0]);
    if (peek) {
      for (const [frame, slot] of frames) memory.set(frame, m.pool8.subarray(slot * PAGE_BYTES, (slot + 1) * PAGE_BYTES));
    } else {
      // The copies in one buffer, each page a 4 KiB view of it: one allocation instead of one a
      // page (a lockstep hands out the pages either engine wrote after every step; an ArrayBuffer
      // costs about as much to make as 4 KiB to copy).
      const copies = new Uint8Array(frames.length * PAGE_BYTES);
      for (let i = 0; i < frames.length; i++) {
        const slot = frames[i]![1];
        const page = copies.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES);
        page.set(m.pool8.subarray(slot * PAGE_BYTES, (slot + 1) * PAGE_BYTES));
        memory.set(frames[i]![0], page);
      }
    }
  }
  const shadow: InterruptShadow = m.shadow === SHADOW_STI ? "sti" : m.shadow === SHADOW_MOVSS ? "movss" : "none";
  const cpu: CpuRunState = {
    pendingIrq: m.pendingIrq < 0 ? null : m.pendingIrq,
    pendingNmi: m.pendingNmi,
    nmiBlocked: m.nmiBlocked,
    shadow,
    halted: m.halted,
    shutdown: m.shutdown,
    pendingDebugTrap: m.pendingDebugTrap,
  };
  const msr = (slot: number) => big(m.msr[slot]!, m.msr[slot + 1]!);
  const debug = (slot: number) => big(m.debug[slot]!, m.debug[slot + 1]!);
  return {
    gpr,
    rip: big(m.regs[RIP_LO]!, m.regs[RIP_HI]!),
    rflags: BigInt(getFlags(m) >>> 0),
    cs: segment(m, CS), ds: segment(m, DS), es: segment(m, ES), fs: segment(m, FS),
    gs: segment(m, GS), ss: segment(m, SS), tr: segment(m, TR), ldtr: segment(m, LDTR),
    gdtr: { base: big(m.gdtrLo, m.gdtrHi), limit: m.gdtrLimit },
    idtr: { base: big(m.idtrLo, m.idtrHi), limit: m.idtrLimit },
    cr0: BigInt(m.cr0 >>> 0),
    cr2: big(m.cr2Lo, m.cr2Hi),
    cr3: big(m.cr3Lo, m.cr3Hi),
    cr4: BigInt(m.cr4 >>> 0),
    cr8: BigInt(m.cr8),
    efer: BigInt(m.efer >>> 0),
    star: msr(STAR_LO),
    lstar: msr(LSTAR_LO),
    cstar: msr(CSTAR_LO),
    fmask: msr(FMASK_LO),
    kernelGsBase: msr(KERNEL_GS_BASE_LO),
    sysenterCs: msr(SYSENTER_CS_LO),
    sysenterEsp: msr(SYSENTER_ESP_LO),
    sysenterEip: msr(SYSENTER_EIP_LO),
    apicBase: msr(APIC_BASE_LO),
    // By name, not a spread of DEBUG_FIELDS: a state is handed out at every lockstep checkpoint.
    dr0: debug(DR0_LO), dr1: debug(DR1_LO), dr2: debug(DR2_LO), dr3: debug(DR3_LO), dr6: debug(DR6_LO), dr7: debug(DR7_LO),
    memory,
    cpu,
    devices: {
      timer: { period: m.timerPeriod, vector: m.timerVector, countdown: m.timerCountdown, waitingEoi: m.timerWaitingEoi },
      exitValue: m.exitValue < 0 ? null : m.exitValue,
    },
  };
}

/** The physical pages written since load(), merged into ranges, in order. */
export function touchedRanges(m: Machine): PhysicalRange[] {
  const frames: number[] = [];
  for (const [frame, slot] of m.frameSlot) if ((m.slotFlags[slot]! & F_TOUCHED) !== 0) frames.push(frame);
  frames.sort((a, b) => a - b);
  const out: PhysicalRange[] = [];
  let start = -1, end = -1;
  for (const f of frames) {
    if (f === end) end++;
    else {
      if (start >= 0) out.push({ start: BigInt(start) * BigInt(PAGE_BYTES), end: BigInt(end) * BigInt(PAGE_BYTES) });
      start = f;
      end = f + 1;
    }
  }
  if (start >= 0) out.push({ start: BigInt(start) * BigInt(PAGE_BYTES), end: BigInt(end) * BigInt(PAGE_BYTES) });
  return out;
}
