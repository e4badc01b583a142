// The machine impl/ runs: architectural state in typed arrays and small-integer fields, the
// physical memory pool, the software TLB with its page walker, and linear/segmented memory access.
//
// 64-bit values are pairs of int32 halves (lo, hi); nothing here allocates per access.
//
// ---- The caches that live in this file and what keeps them invisible ----
// TLB (tlb[]): linear page → pool offset plus the set of access classes
//   (consts.ts C_*) that may use the entry without a walk. An entry is filled only by a walk that
//   succeeded and set every A bit it used; write classes are granted only when the leaf D bit is
//   already set and the frame is neither a page-table, code, nor unallocated frame. So a TLB hit
//   does exactly what an uncached walk would do (which would find A/D set and change nothing).
//   Invalidated (flushTlb) by: MOV CR0/CR3/CR4, WRMSR EFER, INVLPG, any write to a frame a walk has
//   read page-table entries from (slot flag F_PT), the first time a frame becomes F_PT or F_CODE
//   (to drop write classes), allocation of a frame (entries may point at the zero page), load().
// Decoded-block cache (blocks[], see impl/blocks.ts): keyed by physical frame; any write to an
//   F_CODE frame drops that frame's blocks (invalidateCode) and ends the running block.
// System-table cache (descCache here, the gate cache in deliver.ts): results of reading GDT/LDT
//   descriptors, IDT gates and TSS stack pointers, valid while `sysGen` is unchanged. sysGen is
//   bumped by every TLB flush (so translations and the "A bits already set" invariant hold as for
//   the TLB), by LGDT/LIDT/LTR, and by any write to a frame a cached entry was read from (slot
//   flag F_SYS; such frames get no TLB write classes, so every write reaches noteWrite).
// Not-present cache (npCache, see notPresent()): linear pages whose walk ended at a not-present
//   entry; page() raises the #PF again without walking. Valid while tlbGen is unchanged (any TLB
//   flush); the frames such a walk read become F_PT, so writes to them flush.
import * as constsModule from "./consts.ts";
import { INTEL, type Profile } from "../contract/profile.ts";
import type { Insn } from "./insn.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AC, C_FETCH, C_SR, C_SRA, C_SW, C_SWA, C_SX, C_UR, C_USER, C_UW, C_UX, C_WRITE, CR0_WP, CR4_SMAP, CR4_SMEP,
  CS, EFER_LMA, EFER_NXE, GP, LIMIT, PF_VEC, SEG_STRIDE, SEL, SS, SS_VEC, BASE_LO, BASE_HI, FS, GS,
  VEC_MEMLIMIT, LDTR, RIP_LO, RIP_HI, CR0_AM, AC_VEC, ATTR, A_TYPE, A_DB, A_L, A_S, A_P, A_G, A_DPL_SHIFT,
  A_UNUSABLE,
} = constsModule;

export const PAGE_SHIFT = 12;
export const PAGE_BYTES = 4096;
/** Slot flags: frame holds page-table entries a walk has used / decoded code / was written. */
export const F_PT = 1, F_CODE = 2, F_TOUCHED = 4, F_SYS = 8;
/** Slot flags whose frames never get TLB write classes (writes must reach noteWrite). */
const F_GUARDED = F_PT | F_CODE | F_SYS;
/** A/D journal capacity (entries); one instruction's walks need far fewer. */
const JOURNAL = 64;
/** Entries of the descriptor cache (direct-mapped on selector bits 10:3). */
const DESC_ENTRIES = 256;

export const TLB_ENTRIES = 1024;
/** Entries of the not-present cache (direct-mapped on linear page bits). */
const NP_ENTRIES = 64;
const NP_MASK = NP_ENTRIES - 1;
const TLB_MASK = TLB_ENTRIES - 1;
const TWO32 = 4294967296;

/** A decoded-instruction block cached for a frame (impl/blocks.ts owns its shape). */
export interface CachedBlock {
  readonly key: number;
  /** Cleared when the block's frame is written: links to it (Block.succ) must not be followed. */
  valid: boolean;
}

export interface MachineOptions {
  /** Cap on allocated guest physical pages (4 KiB each). */
  readonly maxPages: number;
  /** Reference mode: no TLB hits, no system-table cache (every access walks, every table entry
   *  is read). The engine also decodes every instruction afresh and compiles nothing. */
  readonly uncached?: boolean;
}

export class Machine {
  // ---------------- architectural registers ----------------
  /** GPRs as lo/hi int32 pairs (r[2n], r[2n+1]), RIP at r[32], r[33]. */
  readonly r = new Int32Array(34);
  /** RFLAGS; the arithmetic bits are valid only when `lop` is 0 (see impl/flags.ts). */
  flags = 2;
  // lazy arithmetic flags: the last flag-setting operation (impl/flags.ts)
  lop = 0;
  lsz = 0;
  lrl = 0;
  lrh = 0;
  lal = 0;
  lah = 0;
  lbl = 0;
  lbh = 0;
  /** Carry-in for ADC/SBB, preserved CF for INC/DEC. */
  lc = 0;
  /** Segment registers ES CS SS DS FS GS TR LDTR, SEG_STRIDE int32 fields each. */
  readonly sg = new Int32Array(8 * SEG_STRIDE);
  gdtrLo = 0;
  gdtrHi = 0;
  gdtrLimit = 0;
  idtrLo = 0;
  idtrHi = 0;
  idtrLimit = 0;
  cr0 = 0;
  cr2Lo = 0;
  cr2Hi = 0;
  cr3Lo = 0;
  cr3Hi = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;
  /** STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE as lo/hi pairs. */
  readonly msr = new Int32Array(10);
  // run-time CPU state (the `cpu` block)
  pendingIrq = -1;
  pendingNmi = false;
  nmiBlocked = false;
  shadow = 0;
  halted = false;
  shutdown = false;
  pendingDebugTrap = false;

  // ---------------- derived mode (updateMode) ----------------
  cpl = 0;
  /** 64-bit mode: EFER.LMA = 1 and CS.L = 1. */
  mode64 = true;
  /** CPL 3 with CR0.AM = RFLAGS.AC = 1: misaligned data accesses raise #AC(0) (SMAP-06). */
  acCheck = false;
  /** Access classes of explicit data reads/writes and instruction fetches at the current CPL/AC. */
  rcls = C_SR;
  wcls = C_SW;
  xcls = C_SX;
  /** Classes the compiled fast paths may use: 0 while #AC checks are on (forces the slow path). */
  rfast = C_SR;
  wfast = C_SW;

  // ---------------- fault / event reporting ----------------
  /** Vector of the exception the current operation raised, or -1. */
  fVec = -1;
  /** Its error code, or -1 for none. */
  fErr = -1;
  /** Set when a write hit a page-table or code frame: the running block must stop after this instruction. */
  blockEnd = false;
  /** The event deliver() finally delivered (vector, error code or -1, EV_* source). */
  lastVec = 0;
  lastErr = -1;
  lastSource = 0;
  /** Source (EV_*) of the event an INT-type instruction raised (ST_SWINT). */
  swSource = 0;
  /** Interrupt shadow the current instruction creates (STI 0→1, MOV SS, POP SS). */
  nextShadow = 0;
  /** Last IN/OUT (ST_IO): direction (0 in, 1 out), port, size, value. */
  ioDir = 0;
  ioPort = 0;
  ioSize = 1;
  ioValue = 0;
  /** Exit status of the last compiled block (ST_*) and the instruction it stopped before. */
  bstat = 0;
  bins: Insn | null = null;
  /** Why the current instruction is unsupported (ST_UNSUP). */
  unsupReason = "";
  profile: Profile = INTEL;
  /** High half of the last 8-byte read. */
  vh = 0;
  /** Linear address produced by `linear()`. */
  laLo = 0;
  laHi = 0;

  // ---------------- physical memory pool ----------------
  /** Pool of 4 KiB slots; slot 0 is the zero page standing for every unallocated frame. */
  mem8: Uint8Array;
  mem32: Int32Array;
  dv: DataView;
  slotFrame: Float64Array;
  slotFlags: Uint8Array;
  slots = 1;
  /** All allocated frames → slot (iteration order = allocation order). */
  readonly frameSlot = new Map<number, number>();
  /** The same map as a two-level table for lookups: slotDir[frame >> 10][frame & 1023]
   *  (frames < 2^34 with MAXPHYADDR 46; missing chunks mean unallocated). */
  private readonly slotDir: (Int32Array | undefined)[] = [];
  readonly maxPages: number;
  /** Decoded blocks per slot (impl/blocks.ts); undefined when none. */
  blocks: (Map<number, CachedBlock> | undefined)[] = [];

  // ---------------- software TLB ----------------
  /** Entry e at tlb[4e]: linear page bits 31:12 (tag, -1 = empty), address bits 63:32, classes
   *  granted, pool byte offset of the page. */
  readonly tlb = new Int32Array(TLB_ENTRIES * 4).fill(-1);
  /** Incremented by every TLB flush. */
  tlbGen = 0;
  /** Not-present cache (see page()/notPresent()): entry e at npCache[3e]: linear page bits 31:12,
   *  address bits 63:32, the tlbGen it was recorded in. */
  readonly npCache = new Int32Array(NP_ENTRIES * 3).fill(-1);
  /** Generation of the system-table cache (see the file comment). */
  sysGen = 0;
  /** Descriptor cache entry e at descCache[8e]: selector & 0xfffc, sysGen, descriptor low and
   *  high dwords, linear address low and high. */
  readonly descCache = new Int32Array(DESC_ENTRIES * 8).fill(-1);
  /** Gate cache (deliver.ts, GATE_STRIDE fields per vector). */
  readonly gateCache = new Int32Array(256 * 16).fill(-1);
  /** IRET return cache (system.ts, 8 entries of IRET_STRIDE fields). */
  readonly iretCache = new Int32Array(8 * 10).fill(-1);

  /** See MachineOptions.uncached. */
  readonly uncached: boolean;

  constructor(opts: MachineOptions) {
    this.uncached = opts.uncached ?? false;
    this.maxPages = Math.max(16, Math.min(opts.maxPages, 1 << 18));
    const initial = 64;
    this.mem8 = new Uint8Array(initial * PAGE_BYTES);
    this.mem32 = new Int32Array(this.mem8.buffer);
    this.dv = new DataView(this.mem8.buffer);
    this.slotFrame = new Float64Array(initial).fill(-1);
    this.slotFlags = new Uint8Array(initial);
  }

  // =====================================================================================
  // Registers
  // =====================================================================================

  /** Value of the 16-bit selector of segment `s`. */
  sel(s: number): number {
    return this.sg[s * SEG_STRIDE + SEL]!;
  }

  /** Recomputes CPL, 64-bit mode and the current access classes (after CS, AC, CR0/CR4 changes). */
  updateMode(): void {
    const sg = this.sg;
    const cpl = sg[CS * SEG_STRIDE + SEL]! & 3;
    this.cpl = cpl;
    this.mode64 = (this.efer & EFER_LMA) !== 0 && (sg[CS * SEG_STRIDE + ATTR]! & A_L) !== 0;
    const ac = (this.flags & AC) !== 0;
    if (cpl === 3) {
      const check = ac && (this.cr0 & CR0_AM) !== 0;
      this.acCheck = check;
      this.rcls = C_UR;
      this.wcls = C_UW;
      this.xcls = C_UX;
      this.rfast = check ? 0 : C_UR;
      this.wfast = check ? 0 : C_UW;
    } else {
      const rc = ac ? C_SRA : C_SR, wc = ac ? C_SWA : C_SW;
      this.acCheck = false;
      this.rcls = rc;
      this.wcls = wc;
      this.xcls = C_SX;
      this.rfast = rc;
      this.wfast = wc;
    }
  }


  setRip(lo: number, hi: number): void {
    this.r[RIP_LO] = lo;
    this.r[RIP_HI] = hi;
  }

  // =====================================================================================
  // Faults
  // =====================================================================================

  raise(vector: number, errorCode: number): void {
    this.fVec = vector;
    this.fErr = errorCode;
  }

  // =====================================================================================
  // Physical memory pool
  // =====================================================================================

  /** Slot of a frame, 0 (the zero page) when unallocated. */
  slotOf(frame: number): number {
    const chunk = this.slotDir[Math.floor(frame / 1024)];
    return chunk === undefined ? 0 : chunk[frame & 1023]!;
  }

  /** Allocates a slot for `frame`; -1 when the page budget is exhausted. Flushes the TLB because
   *  entries for this frame pointed at the zero page. */
  allocSlot(frame: number): number {
    const existing = this.frameSlot.get(frame);
    if (existing !== undefined) return existing;
    if (this.slots > this.maxPages) return -1;
    const slot = this.slots++;
    if (slot >= this.slotFrame.length) this.growPool(slot + 1);
    this.frameSlot.set(frame, slot);
    const ci = Math.floor(frame / 1024);
    let chunk = this.slotDir[ci];
    if (chunk === undefined) this.slotDir[ci] = chunk = new Int32Array(1024);
    chunk[frame & 1023] = slot;
    this.slotFrame[slot] = frame;
    this.slotFlags[slot] = 0;
    this.flushTlb();
    // Blocks decoded while the frame read as zeros are now stale.
    const oldBlocks = this.blocks[0];
    if (oldBlocks !== undefined) this.invalidateCode(0);
    return slot;
  }

  private growPool(need: number): void {
    let n = this.slotFrame.length;
    while (n < need) n *= 2;
    n = Math.min(n, this.maxPages + 1);
    const mem8 = new Uint8Array(n * PAGE_BYTES);
    mem8.set(this.mem8);
    this.mem8 = mem8;
    this.mem32 = new Int32Array(mem8.buffer);
    this.dv = new DataView(mem8.buffer);
    const frames = new Float64Array(n).fill(-1);
    frames.set(this.slotFrame);
    this.slotFrame = frames;
    const flags = new Uint8Array(n);
    flags.set(this.slotFlags);
    this.slotFlags = flags;
  }

  /** Reads 8 bytes at physical address `pa` (page-table entries are 8-byte aligned). */
  private physRead64(pa: number): number {
    const slot = this.slotOf(Math.floor(pa / PAGE_BYTES));
    const o = slot * PAGE_BYTES + (pa & 0xfff);
    this.vh = this.mem32[(o >> 2) + 1]!;
    return this.mem32[o >> 2]!;
  }

  /** Marks a slot written; reacts to writes into page tables and code. */
  noteWrite(slot: number): void {
    const f = this.slotFlags[slot]!;
    if ((f & (F_GUARDED | F_TOUCHED)) === F_TOUCHED) return;
    this.slotFlags[slot] = f | F_TOUCHED;
    if ((f & F_SYS) !== 0) this.sysGen = (this.sysGen + 1) | 0;
    if ((f & F_PT) !== 0) {
      this.flushTlb();
      this.blockEnd = true;
    }
    if ((f & F_CODE) !== 0) {
      this.invalidateCode(slot);
      this.blockEnd = true;
    }
  }

  /** Drops the decoded blocks of a slot (a write reached it). */
  invalidateCode(slot: number): void {
    const map = this.blocks[slot];
    if (map !== undefined) for (const b of map.values()) b.valid = false;
    this.blocks[slot] = undefined;
    this.slotFlags[slot] = this.slotFlags[slot]! & ~F_CODE;
  }

  /** Marks a slot as holding decoded code: writes to it must take the slow path from now on. */
  markCode(slot: number): void {
    const f = this.slotFlags[slot]!;
    if ((f & F_CODE) !== 0) return;
    this.slotFlags[slot] = f | F_CODE;
    this.flushTlb();
  }

  // =====================================================================================
  // A/D journal: the bytes walks changed since resetJournal(), so that a step that ends
  // `unsupported` (the machine unchanged) can undo the A/D bits its own walks set.
  // =====================================================================================

  /** Pool offset and previous value of each A/D byte written, in order. */
  private readonly journal = new Int32Array(2 * JOURNAL);
  /** Entries recorded (may exceed JOURNAL: then rollback is impossible and skipped). */
  jn = 0;

  resetJournal(): void {
    this.jn = 0;
  }

  /** Restores every journaled byte (newest first) and flushes the TLB (its entries assumed the
   *  bits set). Returns false when the journal overflowed. */
  rollbackJournal(): boolean {
    if (this.jn === 0) return true;
    if (this.jn > JOURNAL) {
      this.jn = 0;
      return false;
    }
    for (let k = this.jn - 1; k >= 0; k--) {
      const o = this.journal[2 * k]!;
      this.mem8[o] = this.journal[2 * k + 1]!;
      const slot = o >> PAGE_SHIFT;
      if ((this.slotFlags[slot]! & F_CODE) !== 0) {
        this.invalidateCode(slot);
        this.blockEnd = true;
      }
      if ((this.slotFlags[slot]! & F_SYS) !== 0) this.sysGen = (this.sysGen + 1) | 0;
    }
    this.jn = 0;
    this.flushTlb();
    return true;
  }

  // =====================================================================================
  // TLB and page walk
  // =====================================================================================

  flushTlb(): void {
    this.tlb.fill(-1);
    this.tlbGen = (this.tlbGen + 1) | 0;
    this.sysGen = (this.sysGen + 1) | 0;
  }

  /** Marks a slot as holding a cached system-table entry (see the file comment). */
  markSys(slot: number): void {
    const f = this.slotFlags[slot]!;
    if ((f & F_SYS) !== 0 || slot === 0) return;
    this.slotFlags[slot] = f | F_SYS;
    this.flushTlb();
  }

  /** Removes the entry for one linear page (INVLPG). */
  flushTlbPage(lo: number, hi: number): void {
    const e = ((lo >>> PAGE_SHIFT) & TLB_MASK) << 2;
    if (this.tlb[e] === lo >>> PAGE_SHIFT && this.tlb[e + 1] === hi) this.tlb[e] = -1;
    this.tlbGen = (this.tlbGen + 1) | 0;
  }

  /**
   * Translates the page of linear address (lo, hi) for one access class; returns the pool byte
   * offset of the page, or -1 with a #PF raised (CR2 written). The address must be canonical.
   * A TLB hit is used only when it grants `cls`; otherwise the page tables are walked.
   */
  page(lo: number, hi: number, cls: number): number {
    const tag = lo >>> PAGE_SHIFT;
    const t = this.tlb;
    const e = (tag & TLB_MASK) << 2;
    if (t[e] === tag && t[e + 1] === hi && (t[e + 2]! & cls) !== 0 && !this.uncached) return t[e + 3]!;
    const n = (tag & NP_MASK) * 3;
    const np = this.npCache;
    if (np[n] === tag && np[n + 1] === hi && np[n + 2] === this.tlbGen && !this.uncached) {
      return this.pageFault(lo, hi, this.faultBits(cls));
    }
    return this.walk(lo, hi, cls);
  }

  /** The #PF error-code bits an access class contributes (W/R, U/S, I/D). */
  private faultBits(cls: number): number {
    const fetch = (cls & C_FETCH) !== 0;
    return ((cls & C_WRITE) !== 0 ? 2 : 0) | ((cls & C_USER) !== 0 ? 4 : 0) |
      (fetch && ((this.efer & EFER_NXE) !== 0 || (this.cr4 & CR4_SMEP) !== 0) ? 16 : 0);
  }

  /**
   * A walk ended at a not-present entry of `level`: raises the #PF and records the page in the
   * not-present cache. The frames the walk read entries from become F_PT (writes to them flush the
   * TLB, which ends the record: it is valid while tlbGen is unchanged); unallocated frames need no
   * mark (allocating one flushes the TLB).
   */
  private notPresent(lo: number, hi: number, code: number, level: number): number {
    if (!this.uncached) {
      let newPt = false;
      for (let k = 0; k <= level; k++) {
        const slot = this.slotOf(Math.floor(this.walkAddr[k]! / PAGE_BYTES));
        const f = this.slotFlags[slot]!;
        if (slot !== 0 && (f & F_PT) === 0) {
          this.slotFlags[slot] = f | F_PT;
          newPt = true;
        }
      }
      if (newPt) this.flushTlb();
      const tag = lo >>> PAGE_SHIFT;
      const n = (tag & NP_MASK) * 3;
      this.npCache[n] = tag;
      this.npCache[n + 1] = hi;
      this.npCache[n + 2] = this.tlbGen;
    }
    return this.pageFault(lo, hi, code);
  }

  /** The 4-level walk (SDM Vol. 3A §4.5), setting A/D bits only when it succeeds. */
  private walk(lo: number, hi: number, cls: number): number {
    const nxe = (this.efer & EFER_NXE) !== 0;
    const user = (cls & C_USER) !== 0;
    const write = (cls & C_WRITE) !== 0;
    const fetch = (cls & C_FETCH) !== 0;
    const smap = (this.cr4 & CR4_SMAP) !== 0;
    const smep = (this.cr4 & CR4_SMEP) !== 0;
    const wp = (this.cr0 & CR0_WP) !== 0;
    let code = (write ? 2 : 0) | (user ? 4 : 0) | (fetch && (nxe || smep) ? 16 : 0);

    // Entry physical addresses and values, top-down (at most 4 levels).
    let tableLo = this.cr3Lo & ~0xfff;
    let tableHi = this.cr3Hi & 0x3fff;
    const idx0 = (hi >>> 7) & 0x1ff;
    const idx1 = ((hi & 0x7f) << 2) | (lo >>> 30);
    const idx2 = (lo >>> 21) & 0x1ff;
    const idx3 = (lo >>> 12) & 0x1ff;
    let allUser = true;
    let allWrite = true;
    let nx = false;
    let leafLevel = 3;
    const ea = this.walkAddr;
    const ev = this.walkVal;
    for (let level = 0; level < 4; level++) {
      const idx = level === 0 ? idx0 : level === 1 ? idx1 : level === 2 ? idx2 : idx3;
      const pa = tableHi * TWO32 + (tableLo >>> 0) + idx * 8;
      const elo = this.physRead64(pa);
      const ehi = this.vh;
      ea[level] = pa;
      ev[level] = elo;
      if ((elo & 1) === 0) return this.notPresent(lo, hi, code, level);
      // Reserved bits: 51:MAXPHYADDR(46), XD without NXE, PS in a PML4E, the low address bits of a
      // large-page leaf.
      let rsvd = (ehi & 0x000fc000) !== 0 || (!nxe && ehi < 0);
      const ps = (elo & 0x80) !== 0;
      if (level === 0 && ps) rsvd = true;
      if (level === 1 && ps && (elo & 0x3fffe000) !== 0) rsvd = true;
      if (level === 2 && ps && (elo & 0x001fe000) !== 0) rsvd = true;
      if (rsvd) return this.pageFault(lo, hi, code | 9);
      if ((elo & 4) === 0) allUser = false;
      if ((elo & 2) === 0) allWrite = false;
      if (ehi < 0) nx = true;
      if ((level === 1 || level === 2) && ps) {
        leafLevel = level;
        break;
      }
      tableLo = elo & ~0xfff;
      tableHi = ehi & 0x3fff;
    }
    // Access rights on the combined entries.
    code |= 1;
    if (user) {
      if (!allUser) return this.pageFault(lo, hi, code);
      if (write && !allWrite) return this.pageFault(lo, hi, code);
      if (fetch && nx && nxe) return this.pageFault(lo, hi, code);
    } else if (fetch) {
      if (nx && nxe) return this.pageFault(lo, hi, code);
      if (allUser && smep) return this.pageFault(lo, hi, code);
    } else {
      if (allUser && smap && (cls === C_SR || cls === C_SW)) return this.pageFault(lo, hi, code);
      if (write && !allWrite && wp) return this.pageFault(lo, hi, code);
    }
    // Frame of the 4 KiB page.
    const leafLo = ev[leafLevel]!;
    const leafHi = this.walkLeafHi(leafLevel, lo, hi);
    let frameLo: number;
    if (leafLevel === 1) frameLo = (leafLo & 0xc0000000) | (lo & 0x3ffff000);
    else if (leafLevel === 2) frameLo = (leafLo & 0xffe00000) | (lo & 0x001ff000);
    else frameLo = leafLo & ~0xfff;
    const frame = (leafHi & 0x3fff) * (TWO32 / PAGE_BYTES) + (frameLo >>> PAGE_SHIFT);

    // Success: set A in every entry used, D in the leaf for a write; note page-table frames.
    let newPt = false;
    for (let level = 0; level <= leafLevel; level++) {
      const pa = ea[level]!;
      const slot = this.slotOf(Math.floor(pa / PAGE_BYTES));
      const o = slot * PAGE_BYTES + (pa & 0xfff);
      let b = this.mem8[o]!;
      const want = b | 0x20 | (write && level === leafLevel ? 0x40 : 0);
      if (want !== b) {
        if (this.jn < JOURNAL) {
          this.journal[2 * this.jn] = o;
          this.journal[2 * this.jn + 1] = b;
        }
        this.jn++;
        this.mem8[o] = want;
        b = want;
        const f = this.slotFlags[slot]!;
        this.slotFlags[slot] = f | F_TOUCHED;
        if ((f & F_CODE) !== 0) {
          this.invalidateCode(slot);
          this.blockEnd = true;
        }
        if ((f & F_SYS) !== 0) this.sysGen = (this.sysGen + 1) | 0;
      }
      if ((this.slotFlags[slot]! & F_PT) === 0) {
        this.slotFlags[slot] = this.slotFlags[slot]! | F_PT;
        newPt = true;
      }
    }
    if (newPt) this.flushTlb();
    const dirty = (this.mem8[this.slotOf(Math.floor(ea[leafLevel]! / PAGE_BYTES)) * PAGE_BYTES + (ea[leafLevel]! & 0xfff)]! & 0x40) !== 0;

    let slot = this.slotOf(frame);
    if (slot === 0 && write) {
      slot = this.allocSlot(frame);
      if (slot < 0) {
        this.raise(VEC_MEMLIMIT, -1);
        return -1;
      }
    }
    // Classes this entry grants from now on (the rights above, evaluated for every class).
    const sf = this.slotFlags[slot]!;
    const writable = dirty && slot !== 0 && (sf & F_GUARDED) === 0;
    let perm = C_SRA;
    if (!(allUser && smap)) perm |= C_SR;
    if (allUser) perm |= C_UR;
    if (!(nx && nxe)) {
      if (allUser) perm |= C_UX;
      if (!(allUser && smep)) perm |= C_SX;
    }
    if (writable) {
      if (allUser && allWrite) perm |= C_UW;
      if (allWrite || !wp) {
        perm |= C_SWA;
        if (!(allUser && smap)) perm |= C_SW;
      }
    }
    const e = ((lo >>> PAGE_SHIFT) & TLB_MASK) << 2;
    this.tlb[e] = lo >>> PAGE_SHIFT;
    this.tlb[e + 1] = hi;
    this.tlb[e + 2] = perm;
    this.tlb[e + 3] = slot * PAGE_BYTES;
    if ((cls & C_WRITE) !== 0) this.slotFlags[slot] = this.slotFlags[slot]! | F_TOUCHED;
    return slot * PAGE_BYTES;
  }

  private readonly walkAddr = new Float64Array(4);
  private readonly walkVal = new Int32Array(4);
  private walkLeafHi(level: number, _lo: number, _hi: number): number {
    // High half of the leaf entry, re-read (walkVal keeps only low halves).
    this.physRead64(this.walkAddr[level]!);
    return this.vh;
  }

  private pageFault(lo: number, hi: number, code: number): number {
    this.cr2Lo = lo;
    this.cr2Hi = hi;
    this.raise(PF_VEC, code);
    return -1;
  }

  // =====================================================================================
  // Linear access (canonical addresses; paging). Values: lo returned, hi in `vh` for size 8.
  // On a fault the result is 0 and fVec >= 0.
  // =====================================================================================

  /** Reads `size` (1, 2, 4, 8) bytes at a linear address. */
  read(lo: number, hi: number, size: number, cls: number): number {
    const off = lo & 0xfff;
    if (off + size <= PAGE_BYTES) {
      const base = this.page(lo, hi, cls);
      if (base < 0) return 0;
      const o = base + off;
      switch (size) {
        case 1:
          return this.mem8[o]!;
        case 2:
          return this.mem8[o]! | (this.mem8[o + 1]! << 8);
        case 4:
          return (o & 3) === 0 ? this.mem32[o >> 2]! : this.dv.getInt32(o, true);
        default:
          if ((o & 3) === 0) {
            this.vh = this.mem32[(o >> 2) + 1]!;
            return this.mem32[o >> 2]!;
          }
          this.vh = this.dv.getInt32(o + 4, true);
          return this.dv.getInt32(o, true);
      }
    }
    // Crosses a page: translate both pages first (first page first), then gather bytes.
    const b0 = this.page(lo, hi, cls);
    if (b0 < 0) return 0;
    const nlo = (lo + (PAGE_BYTES - off)) | 0;
    const nhi = nlo === 0 && lo !== 0 ? (hi + 1) | 0 : hi;
    const b1 = this.page(nlo, nhi, cls);
    if (b1 < 0) return 0;
    let vlo = 0;
    let vhi = 0;
    for (let k = 0; k < size; k++) {
      const o = off + k < PAGE_BYTES ? b0 + off + k : b1 + off + k - PAGE_BYTES;
      const b = this.mem8[o]!;
      if (k < 4) vlo |= b << (8 * k);
      else vhi |= b << (8 * (k - 4));
    }
    this.vh = vhi;
    return vlo;
  }

  // Write translation: the page offsets a prepared write goes to (wPrep/wCommit).
  private wb0 = 0;
  private wb1 = 0;
  private woff = 0;
  private wsize = 0;

  /** Translates every page of a write (for read-modify-write: with write intent) without
   *  writing; returns false on a fault. */
  prepWrite(lo: number, hi: number, size: number, cls: number): boolean {
    const off = lo & 0xfff;
    this.woff = off;
    this.wsize = size;
    const b0 = this.page(lo, hi, cls);
    if (b0 < 0) return false;
    this.wb0 = b0;
    if (off + size > PAGE_BYTES) {
      const nlo = (lo + (PAGE_BYTES - off)) | 0;
      const nhi = nlo === 0 && lo !== 0 ? (hi + 1) | 0 : hi;
      const b1 = this.page(nlo, nhi, cls);
      if (b1 < 0) return false;
      this.wb1 = b1;
    } else this.wb1 = -1;
    return true;
  }

  /** Reads the bytes of a prepared write (read-modify-write). */
  readPrepared(): number {
    const size = this.wsize;
    const off = this.woff;
    if (this.wb1 < 0) {
      const o = this.wb0 + off;
      switch (size) {
        case 1:
          return this.mem8[o]!;
        case 2:
          return this.mem8[o]! | (this.mem8[o + 1]! << 8);
        case 4:
          return this.dv.getInt32(o, true);
        default:
          this.vh = this.dv.getInt32(o + 4, true);
          return this.dv.getInt32(o, true);
      }
    }
    let vlo = 0;
    let vhi = 0;
    for (let k = 0; k < size; k++) {
      const o = off + k < PAGE_BYTES ? this.wb0 + off + k : this.wb1 + off + k - PAGE_BYTES;
      const b = this.mem8[o]!;
      if (k < 4) vlo |= b << (8 * k);
      else vhi |= b << (8 * (k - 4));
    }
    this.vh = vhi;
    return vlo;
  }

  /** Stores into a prepared write. */
  commitWrite(vlo: number, vhi: number): void {
    const size = this.wsize;
    const off = this.woff;
    if (this.wb1 < 0) {
      const o = this.wb0 + off;
      switch (size) {
        case 1:
          this.mem8[o] = vlo;
          break;
        case 2:
          this.mem8[o] = vlo;
          this.mem8[o + 1] = vlo >> 8;
          break;
        case 4:
          this.dv.setInt32(o, vlo, true);
          break;
        default:
          this.dv.setInt32(o, vlo, true);
          this.dv.setInt32(o + 4, vhi, true);
      }
      this.noteWrite(this.wb0 >> PAGE_SHIFT);
      return;
    }
    for (let k = 0; k < size; k++) {
      const o = off + k < PAGE_BYTES ? this.wb0 + off + k : this.wb1 + off + k - PAGE_BYTES;
      this.mem8[o] = k < 4 ? vlo >> (8 * k) : vhi >> (8 * (k - 4));
    }
    this.noteWrite(this.wb0 >> PAGE_SHIFT);
    this.noteWrite(this.wb1 >> PAGE_SHIFT);
  }

  /** Writes `size` bytes at a linear address; false on a fault (nothing written). */
  write(lo: number, hi: number, size: number, vlo: number, vhi: number, cls: number): boolean {
    const off = lo & 0xfff;
    if (off + size <= PAGE_BYTES) {
      // Fast path: a TLB entry granting the write class (never a PT/code/zero frame).
      const tag = lo >>> PAGE_SHIFT;
      const t = this.tlb;
      const e = (tag & TLB_MASK) << 2;
      if (t[e] === tag && t[e + 1] === hi && (t[e + 2]! & cls) !== 0 && !this.uncached) {
        const o = t[e + 3]! + off;
        switch (size) {
          case 1:
            this.mem8[o] = vlo;
            return true;
          case 2:
            this.mem8[o] = vlo;
            this.mem8[o + 1] = vlo >> 8;
            return true;
          case 4:
            if ((o & 3) === 0) this.mem32[o >> 2] = vlo;
            else this.dv.setInt32(o, vlo, true);
            return true;
          default:
            if ((o & 3) === 0) {
              this.mem32[o >> 2] = vlo;
              this.mem32[(o >> 2) + 1] = vhi;
            } else {
              this.dv.setInt32(o, vlo, true);
              this.dv.setInt32(o + 4, vhi, true);
            }
            return true;
        }
      }
    }
    if (!this.prepWrite(lo, hi, size, cls)) return false;
    this.commitWrite(vlo, vhi);
    return true;
  }

  // =====================================================================================
  // 64-bit-mode data access for compiled blocks: TLB fast path inline, the general path otherwise.
  // `s` is the segment (only FS/GS add a base in 64-bit mode). ld: value (high half in vh), fault
  // when fVec >= 0. st/commit: 0 done, 1 fault, 2 done but the block must end (blockEnd).
  // =====================================================================================

  ld(s: number, lo: number, hi: number, size: number): number {
    let l = lo, h = hi;
    if (s >= FS) {
      const b = s * SEG_STRIDE;
      const blo = this.sg[b + BASE_LO]!;
      l = (lo + blo) | 0;
      h = (hi + this.sg[b + BASE_HI]! + ((l >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
    }
    const off = l & 0xfff;
    const tag = l >>> PAGE_SHIFT;
    const t = this.tlb;
    const e = (tag & TLB_MASK) << 2;
    if (t[e] === tag && t[e + 1] === h && (t[e + 2]! & this.rfast) !== 0 && off <= PAGE_BYTES - size) {
      const o = t[e + 3]! + off;
      if (size === 8) {
        if ((o & 3) === 0) {
          this.vh = this.mem32[(o >> 2) + 1]!;
          return this.mem32[o >> 2]!;
        }
        this.vh = this.dv.getInt32(o + 4, true);
        return this.dv.getInt32(o, true);
      }
      if (size === 4) return (o & 3) === 0 ? this.mem32[o >> 2]! : this.dv.getInt32(o, true);
      if (size === 2) return this.mem8[o]! | (this.mem8[o + 1]! << 8);
      return this.mem8[o]!;
    }
    return this.readSeg(s, lo, hi, size, this.rcls);
  }

  st(s: number, lo: number, hi: number, size: number, vlo: number, vhi: number): number {
    let l = lo, h = hi;
    if (s >= FS) {
      const b = s * SEG_STRIDE;
      const blo = this.sg[b + BASE_LO]!;
      l = (lo + blo) | 0;
      h = (hi + this.sg[b + BASE_HI]! + ((l >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
    }
    const off = l & 0xfff;
    const tag = l >>> PAGE_SHIFT;
    const t = this.tlb;
    const e = (tag & TLB_MASK) << 2;
    if (t[e] === tag && t[e + 1] === h && (t[e + 2]! & this.wfast) !== 0 && off <= PAGE_BYTES - size) {
      const o = t[e + 3]! + off;
      if (size === 8) {
        if ((o & 3) === 0) {
          this.mem32[o >> 2] = vlo;
          this.mem32[(o >> 2) + 1] = vhi;
        } else {
          this.dv.setInt32(o, vlo, true);
          this.dv.setInt32(o + 4, vhi, true);
        }
      } else if (size === 4) {
        if ((o & 3) === 0) this.mem32[o >> 2] = vlo;
        else this.dv.setInt32(o, vlo, true);
      } else if (size === 2) {
        this.mem8[o] = vlo;
        this.mem8[o + 1] = vlo >> 8;
      } else this.mem8[o] = vlo;
      return 0;
    }
    if (!this.writeSeg(s, lo, hi, size, vlo, vhi, this.wcls)) return 1;
    return this.blockEnd ? 2 : 0;
  }

  /** Read-modify-write: translates with write intent and returns the old value. */
  rmw(s: number, lo: number, hi: number, size: number): number {
    if (!this.linear(s, lo, hi, size, true)) return 0;
    if (!this.prepWrite(this.laLo, this.laHi, size, this.wcls)) return 0;
    return this.readPrepared();
  }

  /** Completes rmw(). */
  commit(vlo: number, vhi: number): number {
    this.commitWrite(vlo, vhi);
    return this.blockEnd ? 2 : 0;
  }

  // =====================================================================================
  // Segmented addresses → linear (SDM Vol. 3A §3.4, §5.3; 64-bit mode: GLOBAL-03)
  // =====================================================================================

  /**
   * Forms the linear address of an access of `size` bytes at offset (lo, hi) in segment `s` into
   * laLo/laHi. 64-bit mode: FS/GS bases only, canonical check of the first and last byte.
   * Compatibility mode: 32-bit offsets, base, limit and type checks. Faults: #SS(0) for SS, else
   * #GP(0). Returns false on a fault.
   */
  linear(s: number, lo: number, hi: number, size: number, write: boolean): boolean {
    const sg = this.sg;
    const b = s * SEG_STRIDE;
    if (this.mode64) {
      if (s === FS || s === GS) {
        const blo = sg[b + BASE_LO]!;
        const nlo = (lo + blo) | 0;
        const carry = (nlo >>> 0) < (lo >>> 0) ? 1 : 0;
        hi = (hi + sg[b + BASE_HI]! + carry) | 0;
        lo = nlo;
      }
      // canonical first byte and last byte
      const ehi = (lo >>> 0) + (size - 1) > 0xffffffff ? (hi + 1) | 0 : hi;
      if ((hi >> 15) !== (hi >> 31) || (ehi >> 15) !== (ehi >> 31) || (ehi !== hi && hi === 0x7fffffff)) {
        this.raise(s === SS ? SS_VEC : GP, 0);
        return false;
      }
      this.laLo = lo;
      this.laHi = hi;
      if (this.acCheck && size > 1 && size <= 8 && (lo & (size - 1)) !== 0) {
        this.raise(AC_VEC, 0);
        return false;
      }
      return true;
    }
    // Compatibility mode.
    const fault = s === SS ? SS_VEC : GP;
    const attr = sg[b + ATTR]!;
    if ((attr & A_UNUSABLE) !== 0) {
      this.raise(fault, 0);
      return false;
    }
    const type = attr & A_TYPE;
    const code = (type & 8) !== 0;
    if (write && (code || (type & 2) === 0)) {
      this.raise(fault, 0);
      return false;
    }
    if (!write && code && (type & 2) === 0 && s !== CS) {
      this.raise(fault, 0);
      return false;
    }
    const off = lo >>> 0;
    const last = off + size - 1;
    const limit = sg[b + LIMIT]! >>> 0;
    if (!code && (type & 4) !== 0) {
      // expand-down: valid offsets are limit+1 .. (B ? 0xffffffff : 0xffff)
      const top = (attr & A_DB) !== 0 ? 0xffffffff : 0xffff;
      if (off <= limit || last > top) {
        this.raise(fault, 0);
        return false;
      }
    } else if (last > limit) {
      this.raise(fault, 0);
      return false;
    }
    this.laLo = (off + (sg[b + BASE_LO]! >>> 0)) | 0;
    this.laHi = 0;
    if (this.acCheck && size > 1 && size <= 8 && (this.laLo & (size - 1)) !== 0) {
      this.raise(AC_VEC, 0);
      return false;
    }
    return true;
  }

  /** Segmented read (linear() then read()). */
  readSeg(s: number, lo: number, hi: number, size: number, cls: number): number {
    if (!this.linear(s, lo, hi, size, false)) return 0;
    return this.read(this.laLo, this.laHi, size, cls);
  }

  /** Segmented write. */
  writeSeg(s: number, lo: number, hi: number, size: number, vlo: number, vhi: number, cls: number): boolean {
    if (!this.linear(s, lo, hi, size, true)) return false;
    return this.write(this.laLo, this.laHi, size, vlo, vhi, cls);
  }

  /** Implicit supervisor read of a system table (GDT/LDT/IDT/TSS) at a linear address; #GP(0)
   *  for a non-canonical address. */
  readSystem(lo: number, hi: number, size: number): number {
    const ehi = (lo >>> 0) + (size - 1) > 0xffffffff ? (hi + 1) | 0 : hi;
    if ((this.efer & EFER_LMA) !== 0 && ((hi >> 15) !== (hi >> 31) || (ehi >> 15) !== (ehi >> 31))) {
      this.raise(GP, 0);
      return 0;
    }
    return this.read(lo, hi, size, C_SR);
  }

  // =====================================================================================
  // Segment registers
  // =====================================================================================

  /** Loads the hidden part of segment `s` from a descriptor (dlo = bytes 0–3, dhi = bytes 4–7). */
  loadDescriptor(s: number, selector: number, dlo: number, dhi: number, baseHi: number): void {
    const b = s * SEG_STRIDE;
    const sg = this.sg;
    const g = (dhi >>> 23) & 1;
    const rawLimit = (dlo & 0xffff) | (dhi & 0x000f0000);
    sg[b + SEL] = selector;
    sg[b + BASE_LO] = (dlo >>> 16) | ((dhi & 0xff) << 16) | (dhi & 0xff000000);
    sg[b + BASE_HI] = baseHi;
    sg[b + LIMIT] = g === 1 ? (rawLimit << 12) | 0xfff : rawLimit;
    sg[b + ATTR] = (dhi >>> 8) & 0xf0ff;
  }


  /** Reads the descriptor a selector names into descLo/descHi (and descAddr*); false with #GP(sel)
   *  (or the fault of the implicit read) when it cannot. `ext` is OR'ed into the error code. */
  fetchDescriptor(selector: number, ext: number): boolean {
    const c = this.descCache;
    const e = ((selector >> 3) & (DESC_ENTRIES - 1)) * 8;
    if (c[e] === (selector & 0xfffc) && c[e + 1] === this.sysGen && !this.uncached) {
      this.descLo = c[e + 2]!;
      this.descHi = c[e + 3]!;
      this.descAddrLo = c[e + 4]!;
      this.descAddrHi = c[e + 5]!;
      return true;
    }
    const index = selector & 0xfff8;
    let baseLo: number;
    let baseHi: number;
    let limit: number;
    if ((selector & 4) !== 0) {
      const b = LDTR * SEG_STRIDE;
      if ((this.sg[b + ATTR]! & A_UNUSABLE) !== 0 || (this.sg[b + SEL]! & 0xfffc) === 0) {
        this.raise(GP, (selector & 0xfffc) | ext);
        return false;
      }
      baseLo = this.sg[b + BASE_LO]!;
      baseHi = this.sg[b + BASE_HI]!;
      limit = this.sg[b + LIMIT]! >>> 0;
    } else {
      baseLo = this.gdtrLo;
      baseHi = this.gdtrHi;
      limit = this.gdtrLimit;
    }
    if (index + 7 > limit) {
      this.raise(GP, (selector & 0xfffc) | ext);
      return false;
    }
    const lo = (baseLo + index) | 0;
    const hi = (lo >>> 0) < (baseLo >>> 0) ? (baseHi + 1) | 0 : baseHi;
    this.descAddrLo = lo;
    this.descAddrHi = hi;
    const endHi = (lo >>> 0) + 7 > 0xffffffff ? (hi + 1) | 0 : hi;
    if (hi >> 15 !== hi >> 31 || endHi >> 15 !== endHi >> 31) {
      this.raise(GP, (selector & 0xfffc) | ext);
      return false;
    }
    const d = this.readSystem(lo, hi, 8);
    if (this.fVec >= 0) return false;
    this.descLo = d;
    this.descHi = this.vh;
    // Cache it when the 8 bytes lie in one allocated frame (now F_SYS).
    if ((lo & 0xfff) <= PAGE_BYTES - 8) {
      const base = this.page(lo, hi, C_SR);
      if (base > 0) {
        this.markSys(base >> PAGE_SHIFT);
        const e = ((selector >> 3) & (DESC_ENTRIES - 1)) * 8;
        const c = this.descCache;
        c[e] = selector & 0xfffc;
        c[e + 1] = this.sysGen;
        c[e + 2] = d;
        c[e + 3] = this.descHi;
        c[e + 4] = lo;
        c[e + 5] = hi;
      }
    }
    return true;
  }
  descLo = 0;
  descHi = 0;
  descAddrLo = 0;
  descAddrHi = 0;

  /** True when the descriptor of `selector` is in the descriptor cache (current generation). */
  cachedDescriptor(selector: number): boolean {
    const e = ((selector >> 3) & (DESC_ENTRIES - 1)) * 8;
    return this.descCache[e] === (selector & 0xfffc) && this.descCache[e + 1] === this.sysGen;
  }

  /**
   * Translates the byte holding the accessed bit of the descriptor at (addrLo, addrHi) for an
   * implicit supervisor write: its pool offset, -2 when the bit is already set (nothing to
   * write), or -1 with the fault raised. commitAccessed() then writes it — so a transition that
   * sets two accessed bits can check both before writing either.
   */
  prepAccessed(addrLo: number, addrHi: number, dhi: number): number {
    if ((dhi & 0x100) !== 0) return -2;
    const lo = (addrLo + 5) | 0;
    const hi = (lo >>> 0) < (addrLo >>> 0) ? (addrHi + 1) | 0 : addrHi;
    const base = this.page(lo, hi, C_SW);
    if (base < 0) return -1;
    return base + (lo & 0xfff);
  }

  commitAccessed(off: number): void {
    if (off < 0) return;
    this.mem8[off] = this.mem8[off]! | 1;
    this.noteWrite(off >> PAGE_SHIFT);
  }

  /** Sets the accessed bit (type bit 0) of the descriptor at descAddr* if clear: an implicit
   *  supervisor write. Returns false on a fault. */
  setAccessed(addrLo: number, addrHi: number, dhi: number): boolean {
    if ((dhi & 0x100) !== 0) return true;
    const lo = (addrLo + 5) | 0;
    const hi = (lo >>> 0) < (addrLo >>> 0) ? (addrHi + 1) | 0 : addrHi;
    return this.write(lo, hi, 1, ((dhi >>> 8) & 0xff) | 1, 0, C_SW);
  }

  /** True if the segment currently in CS is 64-bit code of a canonical RIP etc. (helper for
   *  fetch): canonical test of a 64-bit value's high half. */
  static canonical(hi: number): boolean {
    return hi >> 15 === hi >> 31;
  }

  /** Current instruction pointer as a double (for diagnostics only). */
  ripNumber(): number {
    return (this.r[RIP_HI]! >>> 0) * TWO32 + (this.r[RIP_LO]! >>> 0);
  }
}

export { C_UR, C_UW, C_UX, C_SR, C_SW, C_SRA, C_SWA, C_SX };
