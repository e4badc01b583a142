// The machine impl/ runs, as data: architectural registers in typed arrays and small-integer
// fields, the derived mode, the fault and event reports of the operation in progress, and the
// storage of the physical memory pool and of every cache. One object of one shape: every module
// reads and writes it through module-level functions (so V8 sees one monomorphic receiver).
//
// 64-bit values are pairs of int32 halves (lo, hi); nothing here allocates per access.
//
// Where the tricks live (each file's header says what it is and what invalidates it):
//   memory/pool.ts          physical memory pool, slot flags, the reactions to a write
//   memory/tlb.ts           software TLB
//   memory/not-present.ts   not-present page cache
//   memory/translate.ts     the page walk and translate() (TLB → not-present cache → walk)
//   memory/ad-journal.ts    undo of A/D bits for steps that end unsupported
//   memory/linear.ts, memory/segmented.ts, memory/compiled-access.ts: the access paths
//   tables/system-tables.ts the system-table generation (shared by the next three)
//   tables/descriptor-cache.ts, tables/gate-cache.ts, tables/iret-cache.ts
//   blocks/block-cache.ts   decoded blocks; compile/ the block compiler
import * as constsModule from "./consts.ts";
import { INTEL, type Profile } from "../contract/profile.ts";
import type { Insn } from "./insn.ts";
import type { Block } from "./blocks/block-cache.ts";
import { newBlockBudget } from "./blocks/block-budget.ts";
import { newTlb } from "./memory/tlb.ts";
import { newNotPresentCache } from "./memory/not-present.ts";
import { newAdJournal } from "./memory/ad-journal.ts";
import { newDescriptorCache } from "./tables/descriptor-cache.ts";
import { newGateCache } from "./tables/gate-cache.ts";
import { newIretCache } from "./tables/iret-cache.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AC, C_SR, C_SRA, C_SW, C_SWA, C_SX, C_UR, C_UW, C_UX, CR0_AM, CS, EFER_LMA, SEG_STRIDE, SEL, RIP_LO, RIP_HI,
  ATTR, A_L, PAGE_BYTES, MSR_SLOTS, DEBUG_SLOTS,
} = constsModule;

/** Pool slots allocated up front (the pool doubles as frames are allocated). */
const INITIAL_SLOTS = 64;

export interface MachineOptions {
  /** Cap on allocated guest physical pages (4 KiB each). */
  readonly maxPages: number;
  /** Reference mode: no TLB hits, no not-present or system-table cache (every access walks, every
   *  table entry is read). The engine also decodes every instruction afresh and compiles nothing. */
  readonly uncached?: boolean;
}

export class Machine {
  // ---------------- architectural registers ----------------
  /** GPRs as lo/hi int32 pairs (regs[2n], regs[2n + 1]), RIP at regs[RIP_LO], regs[RIP_HI]. */
  readonly regs = new Int32Array(34);
  /** RFLAGS; the arithmetic bits are valid only when `lazyOp` is LAZY_NONE (see impl/flags.ts). */
  flags = 2;
  // The lazy arithmetic flags: the last flag-setting operation, its operand size, its DEST and SRC
  // operands and its result (impl/flags.ts computes CF PF AF ZF SF OF from them when read).
  lazyOp = 0;
  lazySize = 0;
  lazyResultLo = 0;
  lazyResultHi = 0;
  lazyDestLo = 0;
  lazyDestHi = 0;
  lazySrcLo = 0;
  lazySrcHi = 0;
  /** Carry-in of ADC/SBB; the CF that INC/DEC preserve. */
  lazyCarry = 0;
  /** Segment registers ES CS SS DS FS GS TR LDTR, SEG_STRIDE int32 fields each (consts.ts SEL..ATTR). */
  readonly segments = new Int32Array(8 * SEG_STRIDE);
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
  /** STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE as lo/hi pairs (consts.ts STAR_LO..). */
  readonly msr = new Int32Array(MSR_SLOTS);
  /** DR0–DR3, DR6, DR7 as lo/hi pairs (consts.ts DR0_LO..). */
  readonly debug = new Int32Array(DEBUG_SLOTS);
  // Run-time CPU state (the contract's `cpu` block).
  pendingIrq = -1;
  pendingNmi = false;
  nmiBlocked = false;
  /** Interrupt shadow in force (consts.ts SHADOW_*). */
  shadow = 0;
  halted = false;
  shutdown = false;
  pendingDebugTrap = false;
  profile: Profile = INTEL;
  // The devices (docs/devices.md; impl/devices.ts): the timer's registers, whether it is counting
  // (period ≠ 0 and no tick waiting for its EOI: the one test the run loop makes), the exit value
  // (-1 until the exit port is written), and the console bytes not yet taken.
  timerPeriod = 0;
  timerVector = 0x20;
  timerCountdown = 0;
  timerWaitingEoi = false;
  timerCounting = false;
  exitValue = -1;
  console = new Uint8Array(256);
  consoleLength = 0;

  // ---------------- derived mode (updateMode) ----------------
  cpl = 0;
  /** 64-bit mode: EFER.LMA = 1 and CS.L = 1. */
  mode64 = true;
  /** CPL 3 with CR0.AM = RFLAGS.AC = 1: misaligned data accesses raise #AC(0) (SMAP-06). */
  alignmentCheck = false;
  /** Access classes (consts.ts C_*) of explicit data reads and writes and of instruction fetches
   *  at the current CPL and RFLAGS.AC. */
  readClass = C_SR;
  writeClass = C_SW;
  fetchClass = C_SX;
  /** The classes compiled fast paths may use: 0 while #AC checks are on (forces the slow path). */
  readFastClass = C_SR;
  writeFastClass = C_SW;

  // ---------------- the operation in progress: results and reports ----------------
  /** Vector of the exception the current operation raised, or -1 (none). */
  faultVector = -1;
  /** Its error code, or -1 for none. */
  faultErrorCode = -1;
  /** High half of the last 8-byte value read (reads return the low half). */
  valueHi = 0;
  /** The linear address toLinear() produced. */
  linearLo = 0;
  linearHi = 0;
  /** Set when a write reached a page-table or code frame: the running block must stop after this
   *  instruction (its caches or its own bytes may have changed). */
  blockEnd = false;
  /** The event deliver() finally delivered: vector, error code (-1 none), source (consts.ts EV_*). */
  deliveredVector = 0;
  deliveredErrorCode = -1;
  deliveredSource = 0;
  /** Source (EV_*) of the event an INT-type instruction raised (ST_SWINT). */
  softIntSource = 0;
  /** Interrupt shadow the current instruction creates (STI 0→1, MOV SS, POP SS). */
  nextShadow = 0;
  /** The last IN/OUT (ST_IO): direction (0 in, 1 out), port, size, value. */
  ioDirection = 0;
  ioPort = 0;
  ioSize = 1;
  ioValue = 0;
  /** Exit status (ST_*) of the last compiled block, and the instruction it stopped before
   *  (ST_STOP: left to the engine). */
  blockExit = 0;
  blockStopInsn: Insn | null = null;
  /** String instructions (strings.ts): iterations a REP instruction may run in this call (the
   *  engine's batching; 1 outside it), and the iterations it ran beyond the first (each a step). */
  repBudget = 1;
  repExtra = 0;
  /** Why the current instruction is unsupported (ST_UNSUP). */
  unsupportedReason = "";
  /** The descriptor readDescriptor() read: its two dwords and its linear address. */
  descriptorLo = 0;
  descriptorHi = 0;
  descriptorAddrLo = 0;
  descriptorAddrHi = 0;

  // ---------------- physical memory pool (memory/pool.ts) ----------------
  /** Pool of 4 KiB slots; slot 0 is the zero page standing for every unallocated frame. */
  pool8: Uint8Array;
  pool32: Int32Array;
  poolView: DataView;
  /** Frame held by each slot (-1 free) and its slot flags (memory/pool.ts F_*). */
  slotFrame: Float64Array;
  slotFlags: Uint8Array;
  /** Slots in use (slot 0 included). */
  slotCount = 1;
  /** All allocated frames → slot (iteration order = allocation order). */
  readonly frameSlot = new Map<number, number>();
  /** The same map as a two-level table for lookups (memory/pool.ts slotOf). */
  readonly slotDirectory: (Int32Array | undefined)[] = [];
  readonly maxPages: number;
  /** Pending translation of a prepared write (memory/linear.ts prepareWrite): pool offset of the
   *  first page and of the second (-1 when the write stays in one page), page offset, size. */
  preparedPage0 = 0;
  preparedPage1 = 0;
  preparedOffset = 0;
  preparedSize = 0;
  /** The last page walk: physical address and low dword of each level's entry. */
  readonly walkEntryAddr = new Float64Array(4);
  readonly walkEntryLo = new Int32Array(4);

  // ---------------- caches (each owned by the file named) ----------------
  /** memory/tlb.ts */
  readonly tlb = newTlb();
  /** Incremented by every TLB flush (memory/tlb.ts); the not-present cache is valid within one. */
  tlbGeneration = 0;
  /** memory/not-present.ts */
  readonly notPresentCache = newNotPresentCache();
  /** memory/ad-journal.ts: pool offset and previous value of each A/D byte the step's walks set. */
  readonly adJournal = newAdJournal();
  /** Entries recorded in adJournal (may exceed its capacity: then no rollback is possible). */
  adJournalLength = 0;
  /** tables/system-tables.ts: the generation the three system-table caches are valid in. */
  systemTableGeneration = 0;
  /** tables/descriptor-cache.ts */
  readonly descriptorCache = newDescriptorCache();
  /** tables/gate-cache.ts */
  readonly gateCache = newGateCache();
  /** tables/iret-cache.ts */
  readonly iretCache = newIretCache();
  /** blocks/block-cache.ts: decoded blocks per pool slot; undefined when none. */
  blocksBySlot: (Map<number, Block> | undefined)[] = [];

  /** See MachineOptions.uncached. */
  readonly uncached: boolean;
  /** blocks/block-cache.ts: its budget's bookkeeping (last: off the hot fields' layout). */
  readonly blockBudget = newBlockBudget();

  constructor(opts: MachineOptions) {
    this.uncached = opts.uncached ?? false;
    this.maxPages = Math.max(16, Math.min(opts.maxPages, 1 << 18));
    this.pool8 = new Uint8Array(INITIAL_SLOTS * PAGE_BYTES);
    this.pool32 = new Int32Array(this.pool8.buffer);
    this.poolView = new DataView(this.pool8.buffer);
    this.slotFrame = new Float64Array(INITIAL_SLOTS).fill(-1);
    this.slotFlags = new Uint8Array(INITIAL_SLOTS);
  }

  /** The 16-bit selector of segment register `s`. */
  selector(s: number): number {
    return this.segments[s * SEG_STRIDE + SEL]!;
  }

  /** Recomputes CPL, 64-bit mode and the current access classes (after CS, AC, CR0/CR4 changes). */
  updateMode(): void {
    const segments = this.segments;
    const cpl = segments[CS * SEG_STRIDE + SEL]! & 3;
    this.cpl = cpl;
    this.mode64 = (this.efer & EFER_LMA) !== 0 && (segments[CS * SEG_STRIDE + ATTR]! & A_L) !== 0;
    const ac = (this.flags & AC) !== 0;
    if (cpl === 3) this.userAccess(ac);
    else this.supervisorAccess(ac);
  }

  /** The access classes at CPL 3 (#AC checks when CR0.AM = RFLAGS.AC = 1): part of updateMode,
   *  and all of it SYSRETQ in a trace needs (engine/trace-transitions.ts). */
  userAccess(ac: boolean): void {
    const check = ac && (this.cr0 & CR0_AM) !== 0;
    this.alignmentCheck = check;
    this.readClass = C_UR;
    this.writeClass = C_UW;
    this.fetchClass = C_UX;
    this.readFastClass = check ? 0 : C_UR;
    this.writeFastClass = check ? 0 : C_UW;
  }

  /** The access classes at CPL 0–2 (no alignment checks; SMAP's explicit-access override by
   *  RFLAGS.AC): part of updateMode, and all of it SYSCALL in a trace needs (engine/trace-transitions.ts). */
  supervisorAccess(ac: boolean): void {
    const rc = ac ? C_SRA : C_SR, wc = ac ? C_SWA : C_SW;
    this.alignmentCheck = false;
    this.readClass = rc;
    this.writeClass = wc;
    this.fetchClass = C_SX;
    this.readFastClass = rc;
    this.writeFastClass = wc;
  }

  setRip(lo: number, hi: number): void {
    this.regs[RIP_LO] = lo;
    this.regs[RIP_HI] = hi;
  }

  /** Reports an exception (vector, error code or -1) for the operation in progress. */
  raise(vector: number, errorCode: number): void {
    this.faultVector = vector;
    this.faultErrorCode = errorCode;
  }
}
