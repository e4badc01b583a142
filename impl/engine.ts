// ImplEngine: the optimized emulator behind the Engine interface (contract/engine.ts).
//
// The hot loop (run) reads top to bottom:
//   1. shutdown? stop.
//   2. an event deliverable at this boundary (single-step trap, NMI, IRQ)? deliver it (one step);
//      halted with nothing deliverable? stop (`hlt`).
//   3. step budget exhausted? stop (`limit`).
//   4. otherwise fetch: translate RIP through the TLB, find (or decode) the block at that frame;
//      run it compiled (compile.ts) or interpreted, never past the step budget; deliver the fault
//      or software interrupt it stopped on (the same step as the instruction).
// step() runs the same machinery for exactly one step and describes it as an EngineEvent.
import type { ArchState, Segment, CpuRunState, InterruptShadow } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import type {
  Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest, DeliverySource,
} from "../contract/engine.ts";
import { modelScopeViolation, MAXPHYADDR } from "../contract/scope.ts";
import { Machine, PAGE_BYTES, F_TOUCHED } from "./machine.ts";
import * as constsModule from "./consts.ts";
import { getFlags } from "./flags.ts";
import { decode, MAX_INSN } from "./decode.ts";
import type { Insn } from "./insn.ts";
import * as insnModule from "./insn.ts";
import { HANDLERS } from "./handlers.ts";
import { Block, blockAt } from "./blocks.ts";
import { compileBlock, COMPILE_AFTER } from "./compile.ts";
import { deliver, DELIVERED, MEMLIMIT, SHUTDOWN } from "./deliver.ts";
import { profileByName } from "../contract/profile.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  BASE_HI, BASE_LO, CS, DB_VEC, EV_EXTERNAL, EV_FAULT, EV_NMI, EV_SOFT, EV_TRAP, GP, IF, LIMIT, NMI_VEC, RF,
  RIP_HI, RIP_LO, SEG_STRIDE, SEL, SHADOW_MOVSS, SHADOW_NONE, SHADOW_STI, ST_END, ST_FAULT, ST_HALT, ST_IO,
  ST_OK, ST_SWINT, ST_UNSUP, TF, VEC_MEMLIMIT, ES, SS, DS, FS, GS, TR, LDTR, ATTR, A_TYPE, A_DPL_SHIFT, A_DB,
  attrDpl,
} = constsModule;
const {
  MODE_32, MODE_64, OP_SYSCALL, OP_SYSRET,
} = insnModule;

export interface ImplEngineOptions {
  /** Cap on guest physical memory in bytes (rounded to 4 KiB pages); default 256 MiB. */
  readonly maxMemoryBytes?: number;
  /** Compile hot blocks to JavaScript (default true). Off: interpret every instruction. */
  readonly compile?: boolean;
  /** Reference mode for testing the caches: no TLB, no decoded-block cache, no system-table
   *  cache, no compiler — every access walks the page tables and every instruction is decoded
   *  when executed. Default false. */
  readonly uncached?: boolean;
}

// Boundary decisions.
const EV_NONE = 0, EV_HALT_STOP = 1, EV_DBTRAP = 2, EV_DO_NMI = 3, EV_DO_IRQ = 4;

// Outcomes of one step (internal).
const R_RETIRED = 0, R_DELIVERED = 1, R_HALTED = 2, R_IO = 3, R_SHUTDOWN = 4, R_UNSUP = 5, R_MEMLIMIT = 6;

const TWO32 = 4294967296;
const MASK64 = (1n << 64n) - 1n;

function lo32(v: bigint): number {
  return Number(v & 0xffffffffn) | 0;
}
function hi32(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn) | 0;
}
function big(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export class ImplEngine implements Engine {
  private m: Machine;
  private readonly maxPages: number;
  private readonly compileBlocks: boolean;
  private readonly uncached: boolean;
  private profileName: ProfileName = "intel";
  // The last step's details for step().
  private stepRipLo = 0;
  private stepRipHi = 0;
  private unsupBytes: Uint8Array = new Uint8Array(0);
  private unsupReason = "";

  constructor(opts: ImplEngineOptions = {}) {
    const bytes = opts.maxMemoryBytes ?? 256 * 1024 * 1024;
    if (!Number.isFinite(bytes) || bytes < PAGE_BYTES) throw new RangeError("maxMemoryBytes: must be at least 4096");
    this.maxPages = Math.floor(bytes / PAGE_BYTES);
    this.uncached = opts.uncached ?? false;
    this.compileBlocks = (opts.compile ?? true) && !this.uncached;
    this.m = new Machine({ maxPages: this.maxPages, uncached: this.uncached });
  }

  /** The machine (tests and benchmarks only). */
  get machine(): Machine {
    return this.m;
  }

  // =============================================================================================
  // load / state
  // =============================================================================================

  load(state: ArchState, profile: ProfileName): void {
    const violation = modelScopeViolation(state);
    if (violation !== null) throw new RangeError(`state outside the model: ${violation}`);
    if (profile !== "intel" && profile !== "amd") throw new RangeError(`unknown profile ${String(profile)}`);
    if (state.gpr.length !== 16) throw new RangeError("gpr: expected 16 registers");
    if ((state.rflags >> 32n) !== 0n) throw new RangeError("rflags: bits 63:32 are reserved");
    const m = new Machine({ maxPages: this.maxPages, uncached: this.uncached });
    m.profile = profileByName(profile);
    this.profileName = profile;
    for (let n = 0; n < 16; n++) {
      const v = state.gpr[n]! & MASK64;
      m.r[2 * n] = lo32(v);
      m.r[2 * n + 1] = hi32(v);
    }
    m.r[RIP_LO] = lo32(state.rip);
    m.r[RIP_HI] = hi32(state.rip);
    m.flags = Number(state.rflags) | 0;
    const segs: [number, Segment][] = [
      [ES, state.es], [CS, state.cs], [SS, state.ss], [DS, state.ds], [FS, state.fs], [GS, state.gs],
      [TR, state.tr], [LDTR, state.ldtr],
    ];
    for (const [s, seg] of segs) this.loadSegment(m, s, seg);
    m.gdtrLo = lo32(state.gdtr.base);
    m.gdtrHi = hi32(state.gdtr.base);
    m.gdtrLimit = state.gdtr.limit & 0xffff;
    m.idtrLo = lo32(state.idtr.base);
    m.idtrHi = hi32(state.idtr.base);
    m.idtrLimit = state.idtr.limit & 0xffff;
    if ((state.cr0 >> 32n) !== 0n || (state.cr4 >> 32n) !== 0n || (state.efer >> 32n) !== 0n) {
      throw new RangeError("cr0/cr4/efer: bits 63:32 must be 0");
    }
    if ((state.cr3 >> BigInt(MAXPHYADDR)) !== 0n) throw new RangeError(`cr3: bits above MAXPHYADDR (${MAXPHYADDR}) set`);
    if ((state.cr8 & ~15n) !== 0n) throw new RangeError("cr8: only bits 3:0 exist");
    m.cr0 = Number(state.cr0) | 0;
    m.cr2Lo = lo32(state.cr2);
    m.cr2Hi = hi32(state.cr2);
    m.cr3Lo = lo32(state.cr3);
    m.cr3Hi = hi32(state.cr3);
    m.cr4 = Number(state.cr4) | 0;
    m.cr8 = Number(state.cr8);
    m.efer = Number(state.efer) | 0;
    const msrs = [state.star, state.lstar, state.cstar, state.fmask, state.kernelGsBase];
    msrs.forEach((v, k) => {
      m.msr[2 * k] = lo32(v);
      m.msr[2 * k + 1] = hi32(v);
    });
    for (const [page, bytes] of state.memory) {
      if (!Number.isInteger(page) || page < 0 || page >= 2 ** (MAXPHYADDR - 12)) {
        throw new RangeError(`memory: page ${page} is beyond MAXPHYADDR`);
      }
      if (bytes.length !== PAGE_BYTES) throw new RangeError(`memory: page ${page} is not 4096 bytes`);
      const slot = m.allocSlot(page);
      if (slot < 0) throw new RangeError(`memory: more than ${this.maxPages} pages (the engine's cap)`);
      m.mem8.set(bytes, slot * PAGE_BYTES);
    }
    const cpu = state.cpu;
    if (cpu.pendingIrq !== null && !(Number.isInteger(cpu.pendingIrq) && cpu.pendingIrq >= 0 && cpu.pendingIrq <= 255)) {
      throw new RangeError("cpu.pendingIrq: expected a vector 0–255 or null");
    }
    m.pendingIrq = cpu.pendingIrq ?? -1;
    m.pendingNmi = cpu.pendingNmi;
    m.nmiBlocked = cpu.nmiBlocked;
    m.shadow = cpu.shadow === "sti" ? SHADOW_STI : cpu.shadow === "movss" ? SHADOW_MOVSS : SHADOW_NONE;
    m.halted = cpu.halted;
    m.shutdown = cpu.shutdown;
    m.pendingDebugTrap = cpu.pendingDebugTrap;
    m.updateMode();
    this.m = m;
  }

  private loadSegment(m: Machine, s: number, seg: Segment): void {
    const b = s * SEG_STRIDE;
    const sg = m.sg;
    sg[b + SEL] = seg.selector & 0xffff;
    sg[b + BASE_LO] = lo32(seg.base);
    sg[b + BASE_HI] = hi32(seg.base);
    sg[b + LIMIT] = seg.limit | 0;
    sg[b + ATTR] = (seg.type & 15) | ((seg.s & 1) << 4) | ((seg.dpl & 3) << A_DPL_SHIFT) | ((seg.present & 1) << 7) |
      ((seg.avl & 1) << 12) | ((seg.l & 1) << 13) | ((seg.db & 1) << 14) | ((seg.g & 1) << 15) | ((seg.unusable & 1) << 16);
  }

  private segment(s: number): Segment {
    const b = s * SEG_STRIDE;
    const sg = this.m.sg;
    const a = sg[b + ATTR]!;
    return {
      selector: sg[b + SEL]! & 0xffff,
      base: big(sg[b + BASE_LO]!, sg[b + BASE_HI]!),
      limit: sg[b + LIMIT]! >>> 0,
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

  state(): ArchState {
    const m = this.m;
    const gpr: bigint[] = [];
    for (let n = 0; n < 16; n++) gpr.push(big(m.r[2 * n]!, m.r[2 * n + 1]!));
    const memory = new Map<number, Uint8Array>();
    const frames = [...m.frameSlot.entries()].sort((a, b) => a[0] - b[0]);
    for (const [frame, slot] of frames) memory.set(frame, m.mem8.slice(slot * PAGE_BYTES, (slot + 1) * PAGE_BYTES));
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
    return {
      gpr,
      rip: big(m.r[RIP_LO]!, m.r[RIP_HI]!),
      rflags: BigInt(getFlags(m) >>> 0),
      cs: this.segment(CS), ds: this.segment(DS), es: this.segment(ES), fs: this.segment(FS),
      gs: this.segment(GS), ss: this.segment(SS), tr: this.segment(TR), ldtr: this.segment(LDTR),
      gdtr: { base: big(m.gdtrLo, m.gdtrHi), limit: m.gdtrLimit },
      idtr: { base: big(m.idtrLo, m.idtrHi), limit: m.idtrLimit },
      cr0: BigInt(m.cr0 >>> 0),
      cr2: big(m.cr2Lo, m.cr2Hi),
      cr3: big(m.cr3Lo, m.cr3Hi),
      cr4: BigInt(m.cr4 >>> 0),
      cr8: BigInt(m.cr8),
      efer: BigInt(m.efer >>> 0),
      star: big(m.msr[0]!, m.msr[1]!),
      lstar: big(m.msr[2]!, m.msr[3]!),
      cstar: big(m.msr[4]!, m.msr[5]!),
      fmask: big(m.msr[6]!, m.msr[7]!),
      kernelGsBase: big(m.msr[8]!, m.msr[9]!),
      memory,
      cpu,
    };
  }

  raise(event: RaiseRequest): void {
    if ("irq" in event) {
      const v = event.irq;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError("irq: expected a vector 0–255");
      this.m.pendingIrq = v;
    } else if (event.nmi === true) this.m.pendingNmi = true;
  }

  touched(): readonly PhysicalRange[] {
    const m = this.m;
    const frames: number[] = [];
    for (const [frame, slot] of m.frameSlot) if ((m.slotFlags[slot]! & F_TOUCHED) !== 0) frames.push(frame);
    frames.sort((a, b) => a - b);
    const out: PhysicalRange[] = [];
    let start = -1, end = -1;
    for (const f of frames) {
      if (f === end) end++;
      else {
        if (start >= 0) out.push({ start: BigInt(start) * 4096n, end: BigInt(end) * 4096n });
        start = f;
        end = f + 1;
      }
    }
    if (start >= 0) out.push({ start: BigInt(start) * 4096n, end: BigInt(end) * 4096n });
    return out;
  }

  // =============================================================================================
  // Boundary events
  // =============================================================================================

  /** What the boundary allows (PRIO-01, SHADOW-05, NMI-02, HLT-03/06, CR8 TPR). */
  private boundaryEvent(): number {
    const m = this.m;
    const inhibitAll = m.shadow === SHADOW_MOVSS;
    const irqOk = m.pendingIrq >= 0 && (m.flags & IF) !== 0 && m.shadow === SHADOW_NONE &&
      !(m.cr8 !== 0 && m.pendingIrq >> 4 <= m.cr8);
    // SHADOW-04: whether an STI shadow holds back NMI is the profile's choice.
    const nmiHeld = inhibitAll || (m.shadow === SHADOW_STI && m.profile.stiShadowBlocksNmi);
    const nmiOk = m.pendingNmi && !m.nmiBlocked && !nmiHeld;
    if (m.halted && !irqOk && !nmiOk) return EV_HALT_STOP;
    if (m.pendingDebugTrap && !inhibitAll) return EV_DBTRAP;
    if (nmiOk) return EV_DO_NMI;
    if (irqOk) return EV_DO_IRQ;
    return EV_NONE;
  }

  /** Delivers a boundary event: one step. */
  private deliverBoundary(ev: number): number {
    const m = this.m;
    const lo = m.r[RIP_LO]!, hi = m.r[RIP_HI]!;
    this.stepRipLo = lo;
    this.stepRipHi = hi;
    let vector: number, source: number;
    if (ev === EV_DBTRAP) {
      m.pendingDebugTrap = false;
      vector = DB_VEC;
      source = EV_TRAP;
    } else if (ev === EV_DO_NMI) {
      // Consumed and blocking from the start of its delivery, even if that faults.
      m.pendingNmi = false;
      m.nmiBlocked = true;
      vector = NMI_VEC;
      source = EV_NMI;
    } else {
      vector = m.pendingIrq;
      m.pendingIrq = -1;
      source = EV_EXTERNAL;
    }
    return this.deliverOutcome(deliver(m, vector, source, -1, lo, hi, lo, hi));
  }

  private deliverOutcome(r: number): number {
    if (r === DELIVERED) return R_DELIVERED;
    if (r === SHUTDOWN) return R_SHUTDOWN;
    return R_MEMLIMIT;
  }

  // =============================================================================================
  // Instruction execution
  // =============================================================================================

  private readonly crossBuf = new Uint8Array(MAX_INSN);

  /**
   * Finds what to execute at RIP: a cached block (returned), or null with either a fault raised
   * (fetch #PF/#GP, m.fVec >= 0) or the single instruction in `this.loose` (crosses a page or the
   * CS limit; not cached).
   */
  private fetch(): Block | null {
    const m = this.m;
    const ripLo = m.r[RIP_LO]!, ripHi = m.r[RIP_HI]!;
    m.fVec = -1;
    this.loose = null;
    // The walks of this fetch belong to the first instruction (undone if it is unsupported).
    m.resetJournal();
    let mode: number;
    let linLo: number, linHi: number;
    let csLimit = -1;
    if (m.mode64) {
      mode = MODE_64;
      if (ripHi >> 15 !== ripHi >> 31) {
        m.raise(GP, 0);
        return null;
      }
      linLo = ripLo;
      linHi = ripHi;
    } else {
      const b = CS * SEG_STRIDE;
      // Compatibility mode: 32-bit code is assumed (docs/model-choices.md), whatever CS.D.
      mode = MODE_32;
      csLimit = m.sg[b + LIMIT]!;
      if (ripLo >>> 0 > csLimit >>> 0) {
        m.raise(GP, 0);
        return null;
      }
      linLo = (ripLo + m.sg[b + BASE_LO]!) | 0;
      linHi = 0;
    }
    const base = m.page(linLo, linHi, m.xcls);
    if (base < 0) return null;
    const off = linLo & 0xfff;
    if (!this.uncached) {
      const block = blockAt(m, base, off, mode, ripLo, ripHi, csLimit);
      if (block !== null) return block;
    }
    // The first instruction crosses the page end or the CS limit: fetch its bytes one page at a
    // time (the second page only if the instruction needs it).
    const first = PAGE_BYTES - off;
    let avail = Math.min(first, MAX_INSN);
    const limitAvail = mode === MODE_64 ? MAX_INSN : Math.min(MAX_INSN, (csLimit >>> 0) - (ripLo >>> 0) + 1);
    const buf = this.crossBuf;
    buf.set(m.mem8.subarray(base + off, base + off + Math.min(avail, limitAvail)));
    let insn = decode(buf, 0, Math.min(avail, limitAvail), mode, ripLo, ripHi);
    if (insn === null && Math.min(avail, limitAvail) < limitAvail) {
      const nLo = (linLo + first) | 0;
      const nHi = mode === MODE_64 ? ((nLo >>> 0) < (linLo >>> 0) ? (linHi + 1) | 0 : linHi) : 0;
      if (mode === MODE_64 && nHi >> 15 !== nHi >> 31) {
        m.raise(GP, 0);
        return null;
      }
      const base2 = m.page(nLo, nHi, m.xcls);
      if (base2 < 0) return null;
      avail = limitAvail;
      buf.set(m.mem8.subarray(base2, base2 + (avail - first)), first);
      insn = decode(buf, 0, avail, mode, ripLo, ripHi);
    }
    if (insn === null) {
      // Runs past the CS limit.
      m.raise(GP, 0);
      return null;
    }
    this.loose = insn;
    return null;
  }
  private loose: Insn | null = null;

  /** Executes one decoded instruction with the per-instruction bookkeeping (RF, TF trap, shadow).
   *  Returns an R_* outcome. */
  private execute(i: Insn): number {
    const m = this.m;
    const startLo = m.r[RIP_LO]!, startHi = m.r[RIP_HI]!;
    this.stepRipLo = startLo;
    this.stepRipHi = startHi;
    const prevShadow = m.shadow;
    const oldFlags = m.flags;
    const tf = (oldFlags & TF) !== 0;
    m.nextShadow = SHADOW_NONE;
    m.fVec = -1;
    m.flags = oldFlags & ~RF;
    m.r[RIP_LO] = i.nextLo;
    m.r[RIP_HI] = i.nextHi;
    const st = HANDLERS[i.op]!(m, i);
    switch (st) {
      case ST_OK: case ST_END: case ST_IO: case ST_HALT: {
        // SHADOW-02: the shadow this instruction ran in ends; it may have created a new one.
        m.shadow = m.nextShadow;
        const op = i.op;
        if (op === OP_SYSCALL || op === OP_SYSRET) {
          // SYSCALL-10 / SYSRET-09: the TF after the instruction decides.
          if ((m.flags & TF) !== 0) m.pendingDebugTrap = true;
        } else if (tf) m.pendingDebugTrap = true;
        if (st === ST_HALT) {
          m.halted = true;
          return R_HALTED;
        }
        return st === ST_IO ? R_IO : R_RETIRED;
      }
      case ST_SWINT: {
        const v = m.fVec, src = m.swSource;
        const r = this.deliverOutcome(deliver(m, v, src, -1, m.r[RIP_LO]!, m.r[RIP_HI]!, startLo, startHi));
        if (r === R_SHUTDOWN) {
          // A triple fault leaves the machine at the instruction.
          m.r[RIP_LO] = startLo;
          m.r[RIP_HI] = startHi;
          m.flags = oldFlags;
        }
        return r;
      }
      case ST_UNSUP:
        // The machine is unchanged: RIP, RF, and the A/D bits this instruction's walks set.
        m.r[RIP_LO] = startLo;
        m.r[RIP_HI] = startHi;
        m.flags = oldFlags;
        m.rollbackJournal();
        this.unsupBytes = i.bytes;
        this.unsupReason = m.unsupReason;
        return R_UNSUP;
      default: {
        // ST_FAULT: no change but A/D bits (and what IRET-00 allows); deliver at the instruction.
        m.r[RIP_LO] = startLo;
        m.r[RIP_HI] = startHi;
        const r = this.faultOutcome(startLo, startHi, oldFlags);
        if (r === R_SHUTDOWN) m.flags = oldFlags;
        return r;
      }
    }
  }

  /** Delivers the fault in m.fVec with RIP at the faulting instruction. */
  private faultOutcome(lo: number, hi: number, oldFlags: number): number {
    const m = this.m;
    if (m.fVec === VEC_MEMLIMIT) {
      m.flags = oldFlags;
      this.unsupReason = `guest physical memory would exceed ${this.maxPages} pages`;
      return R_MEMLIMIT;
    }
    const v = m.fVec;
    const err = hasErr(v) ? m.fErr : -1;
    return this.deliverOutcome(deliver(m, v, EV_FAULT, err, lo, hi, lo, hi));
  }

  /** The instruction the last instructionStep fetched (null: the fetch faulted). */
  private stepInsn: Insn | null = null;

  /** One instruction step (fetch + execute), uncompiled. */
  private instructionStep(): number {
    const m = this.m;
    const b = this.fetch();
    const insn = b !== null ? b.insns[0]! : this.loose;
    this.stepInsn = insn;
    if (insn !== null) return this.execute(insn);
    // Fetch fault (#PF / #GP(0)) at RIP.
    const lo = m.r[RIP_LO]!, hi = m.r[RIP_HI]!;
    this.stepRipLo = lo;
    this.stepRipHi = hi;
    if (m.fVec === VEC_MEMLIMIT) {
      this.unsupReason = `guest physical memory would exceed ${this.maxPages} pages`;
      return R_MEMLIMIT;
    }
    return this.fetchFaultOutcome(lo, hi);
  }

  /** Delivers a fetch fault at (lo, hi). RF is cleared for the delivery (the pushed image sets it
   *  anyway, RF-03); a triple fault leaves the machine at the instruction, RF as it was. */
  private fetchFaultOutcome(lo: number, hi: number): number {
    const m = this.m;
    const oldFlags = m.flags;
    m.flags &= ~RF;
    const r = this.faultOutcome(lo, hi, oldFlags);
    if (r === R_SHUTDOWN) m.flags = oldFlags;
    return r;
  }

  // =============================================================================================
  // step / run
  // =============================================================================================

  step(): EngineEvent {
    const m = this.m;
    const rip = () => big(m.r[RIP_LO]!, m.r[RIP_HI]!);
    if (m.shutdown) return { kind: "shutdown", rip: rip() };
    const ev = this.boundaryEvent();
    if (ev === EV_HALT_STOP) return { kind: "halted", rip: rip() };
    if (ev !== EV_NONE) return this.describe(this.deliverBoundary(ev));
    const event = this.describe(this.instructionStep());
    // The instruction's bytes, for traces (contract: StepInstruction).
    const i = this.stepInsn;
    return { ...event, instruction: i === null ? { bytes: new Uint8Array(0), length: 0 } : { bytes: i.bytes.slice(), length: i.len } };
  }

  private describe(r: number): EngineEvent {
    const m = this.m;
    const rip = big(this.stepRipLo, this.stepRipHi);
    switch (r) {
      case R_RETIRED:
        return { kind: "retired", rip };
      case R_DELIVERED:
        return {
          kind: "delivered", rip, vector: m.lastVec, errorCode: m.lastErr < 0 ? undefined : m.lastErr >>> 0,
          source: SOURCE_NAMES[m.lastSource]!,
        };
      case R_HALTED:
        return { kind: "halted", rip };
      case R_IO:
        return {
          kind: "io", rip, direction: m.ioDir === 1 ? "out" : "in", port: m.ioPort, size: m.ioSize as 1 | 2 | 4,
          value: BigInt(m.ioValue >>> 0),
        };
      case R_SHUTDOWN:
        return { kind: "shutdown", rip };
      case R_UNSUP:
        return { kind: "unsupported", rip, bytes: this.unsupBytes.slice(), reason: this.unsupReason };
      default:
        return { kind: "memory-limit", rip, reason: this.unsupReason };
    }
  }

  run(maxSteps: number): EngineStop {
    if (!Number.isFinite(maxSteps) || maxSteps < 0) throw new RangeError("maxSteps: expected a number >= 0");
    const limit = Math.floor(maxSteps);
    const m = this.m;
    let steps = 0;
    /** The block that ran last (its successor link is tried before a full fetch). */
    let prev: Block | null = null;
    for (;;) {
      if (m.shutdown) return { reason: "shutdown", steps };
      if (m.pendingDebugTrap || m.pendingNmi || m.pendingIrq >= 0 || m.halted) {
        const ev = this.boundaryEvent();
        if (ev === EV_HALT_STOP) return { reason: "hlt", steps };
        if (ev !== EV_NONE) {
          if (steps >= limit) return { reason: "limit", steps };
          const r = this.deliverBoundary(ev);
          steps++;
          if (r === R_MEMLIMIT) return this.memStop(steps - 1);
          continue;
        }
      }
      if (steps >= limit) return { reason: "limit", steps };
      // Blocks run only where no per-instruction event bookkeeping is needed.
      if ((m.flags & TF) === 0 && m.shadow === SHADOW_NONE) {
        let b: Block | null = prev === null ? null : this.successor(prev);
        if (b === null) {
          b = this.fetch();
          if (b !== null && prev !== null) prev.succ = b;
        }
        if (b !== null) {
          const n = this.runBlock(b, limit - steps);
          steps += n;
          const r = this.blockOutcome;
          if (r === R_UNSUP) return this.unsupStop(steps);
          if (r === R_MEMLIMIT) return this.memStop(steps);
          prev = b;
          continue;
        }
        prev = null;
        let r: number;
        if (this.loose !== null) r = this.execute(this.loose);
        else {
          // fetch fault
          if (m.fVec === VEC_MEMLIMIT) {
            this.unsupReason = `guest physical memory would exceed ${this.maxPages} pages`;
            return this.memStop(steps);
          }
          r = this.fetchFaultOutcome(m.r[RIP_LO]!, m.r[RIP_HI]!);
        }
        if (r === R_UNSUP) return this.unsupStop(steps);
        if (r === R_MEMLIMIT) return this.memStop(steps);
        steps++;
        continue;
      }
      prev = null;
      const r = this.instructionStep();
      if (r === R_UNSUP) return this.unsupStop(steps);
      if (r === R_MEMLIMIT) return this.memStop(steps);
      steps++;
    }
  }

  private unsupStop(steps: number): EngineStop {
    return {
      reason: "unsupported", steps,
      event: {
        kind: "unsupported", rip: big(this.stepRipLo, this.stepRipHi), bytes: this.unsupBytes.slice(),
        reason: this.unsupReason,
      },
    };
  }

  private memStop(steps: number): EngineStop {
    return {
      reason: "memory-limit", steps,
      event: { kind: "memory-limit", rip: big(this.stepRipLo, this.stepRipHi), reason: this.unsupReason },
    };
  }

  /**
   * The block `prev` last handed over to, if fetching at RIP now would find it: still valid
   * (its frame not written), 64-bit mode, same RIP, and the TLB translates RIP's page for an
   * instruction fetch at the current CPL to the block's frame. Otherwise null (full fetch).
   */
  private successor(prev: Block): Block | null {
    const b: Block | null = prev.succ;
    if (b === null || !b.valid || b.mode !== MODE_64) return null;
    const m = this.m;
    const lo = m.r[RIP_LO]!, hi = m.r[RIP_HI]!;
    if (lo !== b.ripLo || hi !== b.ripHi || !m.mode64) return null;
    const t = m.tlb;
    const e = ((lo >>> 12) & 1023) << 2;
    if (t[e] !== lo >>> 12 || t[e + 1] !== hi || (t[e + 2]! & m.xcls) === 0 || t[e + 3] !== b.pageOff) return null;
    return b;
  }

  /** Outcome of the last runBlock (R_RETIRED unless it stopped on something else). */
  private blockOutcome = R_RETIRED;

  /**
   * Runs a block for at most `budget` steps (≥ 1). Returns the steps taken: instructions retired,
   * plus one if the block ended in a fault or software interrupt that was delivered.
   */
  private runBlock(b: Block, budget: number): number {
    const m = this.m;
    this.blockOutcome = R_RETIRED;
    if (b.fn === null && this.compileBlocks && !b.noCompile && ++b.runs >= COMPILE_AFTER) {
      b.fn = compileBlock(b);
      if (b.fn === null) b.noCompile = true;
    }
    const insns = b.insns;
    if (b.fn !== null && budget >= insns.length) {
      // Compiled: RF is cleared by the first instruction; the body keeps the rest exact.
      const entryRf = m.flags & RF;
      m.flags &= ~RF;
      m.blockEnd = false;
      m.fVec = -1;
      const n = b.fn(m, budget);
      const st = m.bstat;
      if (st === ST_OK || st === ST_END) return n;
      const extra = this.finishCompiled(st);
      // Nothing ran (the first instruction stopped the run): RF is as it was.
      if (n === 0 && (extra === 0 || m.shutdown)) m.flags |= entryRf;
      return n + extra;
    }
    // Interpreted.
    let n = 0;
    m.blockEnd = false;
    for (let k = 0; k < insns.length && n < budget; k++) {
      const i = insns[k]!;
      if (k > 0) m.resetJournal();
      const r = this.execute(i);
      if (r === R_UNSUP || r === R_MEMLIMIT) {
        this.blockOutcome = r;
        return n;
      }
      n++;
      if (r !== R_RETIRED || m.blockEnd) return n;
      // A block's later instructions assume RIP flowed to them.
      const nx = insns[k + 1];
      if (nx !== undefined && (m.r[RIP_LO] !== nx.ripLo || m.r[RIP_HI] !== nx.ripHi)) return n;
      if ((m.flags & TF) !== 0 || m.shadow !== SHADOW_NONE) return n;
    }
    return n;
  }

  /** A compiled block stopped on a fault, software interrupt, HLT, I/O or unsupported instruction
   *  (m.bstat; RIP at that instruction's start, m.bins = its index). Returns the extra step. */
  private finishCompiled(st: number): number {
    const m = this.m;
    const lo = m.r[RIP_LO]!, hi = m.r[RIP_HI]!;
    this.stepRipLo = lo;
    this.stepRipHi = hi;
    if (st === ST_FAULT) {
      const r = this.faultOutcome(lo, hi, m.flags);
      if (r === R_MEMLIMIT) {
        this.blockOutcome = r;
        return 0;
      }
      return 1;
    }
    // ST_STOP: the instruction the block left to the interpreter (exact bookkeeping).
    const i = m.bins;
    m.bins = null;
    if (i === null) return 0;
    m.resetJournal();
    const r = this.execute(i);
    if (r === R_UNSUP || r === R_MEMLIMIT) {
      this.blockOutcome = r;
      return 0;
    }
    return 1;
  }
}

const SOURCE_NAMES: DeliverySource[] = ["exception", "exception", "software", "external", "nmi", "exception"];

function hasErr(v: number): boolean {
  return v === 8 || (v >= 10 && v <= 14) || v === 17 || v === 21;
}

export { EV_SOFT, ST_IO, TWO32 };
