// One step's working record. Semantics read the machine through it and record their updates on
// it; nothing reaches the caller's Machine. If the step faults, only the accessed/dirty bits set by
// successful page walks survive (hardware does not undo them), and the few updates the SDM says a
// fault does not undo (`updateKeptOnFault`); everything else is dropped.
import { AC, fault, GP, isFault, SS, type Fault } from "../fault.ts";
import { assignRegisters, copyRegisters, cpuRunState, exchangeField, patchRegisters, withMemory, type Machine, type MachineRegisters, type MutableRegisters } from "../machine/machine.ts";
import type { CpuRunState, InterruptShadow } from "../../contract/state.ts";
import type { MemoryDraft } from "../machine/physical-memory.ts";
import { accessOf, type Access, type AccessKind, type AccessMode } from "../paging/access.ts";
import { alignmentCheckFails, naturalAlignment } from "../paging/alignment.ts";
import { walk } from "../paging/translate.ts";
import { rememberedFrame, walkEpoch, walkRemembered, type WalkRegisters } from "../paging/walk-memo.ts";
import type { Profile } from "../../contract/profile.ts";
import type { RuleId } from "../rules/rule.ts";
import type { MemOperand, Operand, OperandSize, SregName } from "../decode/instruction.ts";
import { canonical, cpl, in64BitMode, MASK64, RFLAGS, RSP, sizeMask, smallBigInt, split64, splitHigh, splitLow, truncate } from "../machine/registers.ts";
import { compatibilityLinear, segmentCheckFailure, stackWidthMask, withStackPointer } from "./segment-checks.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";
import type { RegisterJournal } from "./register-journal.ts";

/** The explicit data reads and writes, user and supervisor (Transaction.dataAccess). */
const DATA_READ = [accessOf("read", "user"), accessOf("read", "supervisor")] as const;
const DATA_WRITE = [accessOf("write", "user"), accessOf("write", "supervisor")] as const;

export class Transaction {
  /**
   * The machine's fields as updated so far, except `gpr`: the step keeps a working copy of the
   * registers (`registers`) and writes it in place, so a register write does not copy the record.
   * `m` puts the working copy into the record it hands out; after that both count as shared and
   * are copied again before the next write, so a record handed out never changes.
   *
   * A transaction given a RegisterJournal owns its start record (the run's working record) and
   * writes it and its register array in place, logging each write, instead of copying them
   * first: `rollBackRegisters` takes the writes back when the step faults.
   */
  private current: MutableRegisters;
  /** Whether `current` is this step's own copy, not handed out by `m` since it was made: then an
   *  update writes its fields in place. Otherwise the next update copies it first (one copy, not
   *  one per update). */
  private owned: boolean;
  private registers: bigint[];
  /** Whether `registers` may be referenced by a record handed out (copy before writing). */
  private registersShared: boolean;
  /** The record this transaction began on, its register array, RIP and RFLAGS then. RIP and
   *  RFLAGS, which every step writes, are taken back from here rather than logged. A write is
   *  logged exactly when it goes to `start` or `startRegisters` in place: only a transaction given
   *  a journal ever owns them unshared (a transaction without one copies them before its first
   *  write), and a copy is never the start record again. */
  private readonly start: MachineRegisters;
  private readonly startRegisters: readonly bigint[];
  private readonly startRip: bigint;
  private readonly startRflags: bigint;
  /** The undo log of in-place writes (null: the start record is never written), and where it
   *  stood when this transaction began. */
  private readonly journal: RegisterJournal | null;
  private readonly journalMark: number;
  /** The memory this transaction reads and writes: its own draft, or the one of the step or run
   *  it is part of (shared by the delivery attempts of a step). */
  private readonly memory: MemoryDraft;
  /** Where the draft's journal stood when this transaction began (`rollBackMemory`). */
  private readonly memoryMark: number;
  /** The walks that set accessed/dirty bits, with the registers they walked under: a fault keeps
   *  their bits (`rollBackMemory` sets them again); null for none (the usual case). */
  private accessedDirtyWalks: { readonly m: WalkRegisters; readonly linear: bigint; readonly access: Access }[] | null = null;
  /** Updates a fault does not undo (`updateKeptOnFault`), in order; null for none (the usual case). */
  private keptOnFault: ((m: MachineRegisters) => Partial<MachineRegisters>)[] | null = null;
  /** The walk epoch of `current` (spec/paging/walk-memo.ts `walkEpoch`), or −1 when not known:
   *  computed when first needed, forgotten by every update that may change a walk register. */
  private epoch = -1;
  /** The single-step trap the instruction decided to leave (`setSingleStepTrap`), if it did. */
  singleStepTrap: boolean | undefined = undefined;
  /** The interrupt shadow in force when this step began (the step clears it in `m`); a MOV SS
   *  right after a MOV SS must not re-arm it (SHADOW-07). */
  readonly startShadow: InterruptShadow;

  /** A transaction on its own copy of `start` (its memory a draft of `start.memory`). */
  constructor(start: Machine, profile: Profile, coverage: Set<RuleId> | null);
  /** A transaction on `start`'s registers and `memory`, the draft of the step or run it is part
   *  of; with `journal`, `start` is owned by that run and written in place (logged in `journal`). */
  constructor(start: MachineRegisters, profile: Profile, coverage: Set<RuleId> | null, memory: MemoryDraft, journal?: RegisterJournal);
  constructor(
    start: MachineRegisters,
    readonly profile: Profile,
    /** When not null, every rule hit is recorded here (coverage reports). */
    readonly coverage: Set<RuleId> | null,
    memory?: MemoryDraft,
    journal?: RegisterJournal,
  ) {
    const inPlace = journal !== undefined;
    this.current = start as MutableRegisters;
    this.owned = inPlace;
    this.registers = start.gpr as bigint[];
    this.registersShared = !inPlace;
    this.start = start;
    this.startRegisters = start.gpr;
    this.startRip = start.rip;
    this.startRflags = start.rflags;
    this.journal = journal ?? null;
    this.journalMark = inPlace ? journal.mark() : 0;
    this.memory = memory ?? (start as Machine).memory.draft();
    this.memoryMark = this.memory.mark();
    this.startShadow = start.cpu.shadow;
  }

  /** The machine as updated so far in this step (every field but memory, which is read and
   *  written through the transaction). Handed out: it never changes afterwards (the next update
   *  copies it first). */
  get m(): MachineRegisters {
    const m = this.now;
    this.owned = false;
    this.registersShared = true;
    return m;
  }

  /**
   * The machine as updated so far, not handed out: the transaction goes on writing it, so it
   * changes with the next update. For reading fields at once (a body reads what it needs before
   * its updates, as the checks-then-updates form does); a body that reads a field after updating
   * it, or keeps the machine, uses `m`.
   */
  get now(): MachineRegisters {
    if (this.current.gpr !== this.registers) this.assign("gpr", this.registers);
    return this.current;
  }

  /** RIP as updated so far (the next instruction's during an instruction's semantics). Unlike
   *  reading `t.m.rip`, this hands nothing out, so the next update writes the step's record in
   *  place instead of copying it first. */
  get rip(): bigint {
    return this.current.rip;
  }

  /** RFLAGS as updated so far; like `rip`, read without handing the machine out. */
  get rflags(): bigint {
    return this.current.rflags;
  }

  /** The machine so far with a snapshot of its memory (for callers outside the step loop). */
  snapshot(): Machine {
    return withMemory(this.m, this.memory.snapshot());
  }

  /** The memory draft, for the machinery that runs further transactions on it in the same step
   *  (delivery attempts, spec/transitions/double-fault.ts). */
  get workingMemory(): MemoryDraft {
    return this.memory;
  }

  /** `current`, copied first unless this step owns it (it may be written in place then). */
  private own(): MutableRegisters {
    if (!this.owned) {
      this.current = copyRegisters(this.current);
      this.owned = true;
    }
    return this.current;
  }

  /** Writes one field of the record (logged when written in place on the start record). */
  private assign<K extends keyof MutableRegisters>(key: K, value: MutableRegisters[K]): void {
    if (key !== "gpr") this.epoch = -1;
    const m = this.own();
    if (m === this.start) this.journal!.log(m, key, m[key]);
    m[key] = value;
  }

  // ---- rules: every check that fails and every update is tagged with its rule ---------------

  /** Records that `rule` was exercised (a check passed, a value was read or computed by it). */
  hit(rule: RuleId): void {
    this.coverage?.add(rule);
    recordExecuted(rule);
  }

  /** Applies an update tagged with its rule. */
  update(rule: RuleId, patch: Partial<MachineRegisters>): void {
    this.hit(rule);
    this.epoch = -1;
    const m = this.own();
    if (m === this.start) assignLogged(m, patch, this.journal!);
    else assignRegisters(m, patch);
    if (patch.gpr !== undefined) {
      this.registers = patch.gpr as bigint[];
      this.registersShared = true;
    }
  }

  /** `update(rule, { cpu: { ...cpu, ...changes } })`; when the run state already holds every
   *  change (the usual delivery: not halted, no shadow) the rule is recorded and nothing copied. */
  updateCpu(rule: RuleId, changes: Partial<CpuRunState>): void {
    const cpu = this.now.cpu;
    let key: keyof CpuRunState;
    for (key in changes) {
      if (changes[key] !== cpu[key]) {
        this.update(rule, { cpu: cpuRunState({ ...cpu, ...changes }) });
        return;
      }
    }
    this.hit(rule);
  }

  /** `update(rule, { rip, rflags })` without building the patch: the step makes this update
   *  (RF-01) before every instruction. */
  updateRipAndRflags(rule: RuleId, rip: bigint, rflags: bigint): void {
    this.hit(rule);
    // Not logged: a roll-back takes RIP and RFLAGS back from startRip/startRflags.
    const m = this.own();
    // The walk epoch stands when RFLAGS.AC stays 0 (both values below bit 18).
    if (rflags >= RFLAGS.AC || m.rflags >= RFLAGS.AC) this.epoch = -1;
    m.rip = rip;
    m.rflags = rflags;
  }

  /** Writes one general register (all 64 bits), tagged with its rule. */
  writeGpr(rule: RuleId, reg: number, value: bigint): void {
    this.hit(rule);
    this.setGpr(reg, value);
  }

  /**
   * An update that a fault later in the step does not undo (IRET's NMI unblocking, IRETQ-00; CR2
   * before #PF delivery, PF-01). `patch` is applied to the machine as it stands now and, if the step
   * faults, to the machine the fault is delivered on (`keptOnFaultFrom`).
   */
  updateKeptOnFault(rule: RuleId, patch: (m: MachineRegisters) => Partial<MachineRegisters>): void {
    this.update(rule, patch(this.current));
    (this.keptOnFault ??= []).push(patch);
  }

  /**
   * TF-01 says a completed instruction leaves a single-step trap exactly when TF was 1 as it began;
   * an instruction whose own rule decides otherwise (SYSCALL-10, SYSRET-09) says so here. The step
   * reads `singleStepTrap` once the instruction has completed.
   */
  setSingleStepTrap(rule: RuleId, trap: boolean): void {
    this.hit(rule);
    this.singleStepTrap = trap;
  }

  /** An instruction whose effect lies outside the modelled state: records the rule and returns the
   *  outcome that stops the step as `unsupported` (spec/transaction/semantics.ts). */
  unsupported(rule: RuleId, reason: string): { readonly kind: "unsupported"; readonly reason: string } {
    this.hit(rule);
    return { kind: "unsupported", reason };
  }

  /** A failed check: records the rule and returns the fault as data. */
  fault(rule: RuleId, vector: number, errorCode?: number, address?: bigint): Fault {
    this.hit(rule);
    return fault(rule, vector, errorCode, address);
  }

  // ---- what a fault keeps (GLOBAL-05) ------------------------------------------------------

  /**
   * Takes back this transaction's memory writes, all but the accessed/dirty bits its successful
   * walks set: those are set again, walk by walk, on the memory as it was (each walk under the
   * registers it was made with; one that no longer succeeds there — the transaction had rewritten
   * its page tables — sets nothing).
   */
  rollBackMemory(): void {
    this.memory.rollBack(this.memoryMark);
    if (this.accessedDirtyWalks === null) return;
    for (const { m, linear, access } of this.accessedDirtyWalks) {
      const w = walk(m, this.memory, linear, access);
      if (!("kind" in w)) for (const { address, entry } of w.accessedDirty) this.memory.write(address, 8, entry);
    }
  }

  /** Takes back every memory write of this transaction, accessed/dirty bits included (a step
   *  that stops as `unsupported` leaves the machine exactly as it was). */
  discardMemory(): void {
    this.memory.rollBack(this.memoryMark);
  }

  /** Takes back this transaction's in-place writes to its start record (and those of any
   *  transaction begun after it): the start record is again as this one began. Nothing is
   *  written through this transaction afterwards. */
  rollBackRegisters(): void {
    if (this.journal === null) return;
    this.journal.rollBackRecord(this.journalMark, this.start, this.startRip, this.startRflags);
    this.epoch = -1;
    this.current = this.start as MutableRegisters;
    this.owned = false;
    this.registers = this.start.gpr as bigint[];
    this.registersShared = true;
  }

  /** The machine as this transaction began, as a record nothing writes in place (its start
   *  record, or a copy of it taken back to how it began when it is written in place). */
  startMachine(): MachineRegisters {
    if (this.journal === null) return this.start;
    const copy = this.journal.copyAsAt(this.journalMark, this.start, this.startRegisters) as MutableRegisters;
    copy.rip = this.startRip;
    copy.rflags = this.startRflags;
    return copy;
  }

  /** The registers to keep when the step faults: `start` with the updates kept on a fault. */
  keptOnFaultFrom(start: MachineRegisters): MachineRegisters {
    let m = start;
    if (this.keptOnFault !== null) for (const patch of this.keptOnFault) m = patchRegisters(m, patch(m));
    return m;
  }

  /** The machine to keep when the step faults, for callers outside the step loop: `start` with
   *  the A/D bits the step's successful walks set and the updates kept on a fault. */
  machineAfterFault(start: Machine): Machine {
    this.rollBackMemory();
    return withMemory(this.keptOnFaultFrom(start), this.memory.snapshot());
  }

  // ---- registers ---------------------------------------------------------------------------

  gpr(reg: number): bigint {
    return this.registers[reg]!;
  }

  setGpr(reg: number, value: bigint): void {
    if (this.registersShared) {
      this.registers = this.registers.slice();
      this.registersShared = false;
    }
    const registers = this.registers;
    if (registers === this.startRegisters) this.journal!.log(registers, reg, registers[reg]);
    // asUintN(64, …), not `& MASK64`: V8 computes it without allocating an intermediate BigInt.
    registers[reg] = BigInt.asUintN(64, value);
  }

  /** Register read at an operand size (AH/CH/DH/BH with `high8`). */
  readReg(reg: number, size: OperandSize, high8 = false): bigint {
    if (high8) return (this.gpr(reg - 4) >> 8n) & 0xffn;
    return size === 8 ? this.gpr(reg) : truncate(this.gpr(reg), size);
  }

  /** Register write at an operand size: 32-bit writes zero-extend, 8/16-bit writes merge. */
  writeReg(reg: number, size: OperandSize, value: bigint, high8 = false): void {
    if (high8) {
      const full = this.gpr(reg - 4);
      this.setGpr(reg - 4, (full & ~0xff00n) | ((value & 0xffn) << 8n));
    } else if (size === 8) {
      this.setGpr(reg, value);
    } else if (size === 4) {
      this.setGpr(reg, BigInt.asUintN(32, value));
    } else {
      const mask = sizeMask(size);
      this.setGpr(reg, (this.gpr(reg) & ~mask) | (value & mask));
    }
  }

  /** The walk epoch of the machine as updated so far (spec/paging/walk-memo.ts). */
  walkEpoch(): number {
    const epoch = this.epoch;
    return epoch >= 0 ? epoch : (this.epoch = walkEpoch(this.current));
  }

  cpl(): number {
    return cpl(this.current);
  }

  /** GLOBAL-02 on the machine as updated so far (read without handing it out, like `rip`). */
  in64BitMode(): boolean {
    return in64BitMode(this.current);
  }

  /** An explicit data access at the current CPL: `pair[0]` at CPL 3, else `pair[1]`. */
  private dataAccess(pair: readonly [Access, Access]): Access {
    return this.cpl() === 3 ? pair[0] : pair[1];
  }

  /** The mode of an explicit data access at the current CPL. */
  dataMode(): AccessMode {
    return this.cpl() === 3 ? "user" : "supervisor";
  }

  // ---- physical and linear memory ----------------------------------------------------------

  /**
   * One page's translation; A/D bits go to both the working memory and the fault-surviving copy.
   * The walk's result is told from a fault with `"kind" in w` rather than `isFault`: this runs on
   * every memory access, and isFault's one property load, shared by all its callers, has seen
   * every kind of object and is slow (about 2 % of the benchmark loops). The walk code does the same.
   */
  private translateOrFault(linear: bigint, access: Access): bigint | Fault {
    const w = walkRemembered(this.current, this.memory, linear, access);
    if ("kind" in w) {
      // PF-03: U/S follows the access, not the CPL — an implicit access or a delivery push made at
      // CPL 3 reports U/S = 0.
      if (access.mode !== "user" && this.cpl() === 3) this.hit("PF-03");
      this.hit(w.rule);
      this.hit("PF-01");
      this.hit("PF-02");
      return w;
    }
    this.hit("PF-ACCESSED");
    if (access.kind === "write") this.hit("PF-DIRTY");
    if (w.accessedDirty.length > 0) {
      for (const { address, entry } of w.accessedDirty) this.memory.write(address, 8, entry);
      const m = this.current;
      (this.accessedDirtyWalks ??= []).push({ m: { cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer, rflags: m.rflags }, linear, access });
    }
    return w.physical;
  }

  /** The physical page number of `linear`, in linear page `linearPage` (`translateOrFault`), or
   *  the #PF. */
  private frameOrFault(linear: bigint, linearPage: number, access: Access): number | Fault {
    // A walk the memo remembers: the rules translateOrFault records on success, nothing to set.
    const frame = rememberedFrame(this.current, this.walkEpoch(), this.memory, linearPage, access);
    if (frame >= 0) {
      this.hit("PF-ACCESSED");
      if (access.kind === "write") this.hit("PF-DIRTY");
      return frame;
    }
    const physical = this.translateOrFault(linear, access);
    return typeof physical === "bigint" ? Number(physical >> 12n) : physical;
  }

  /**
   * The checks every linear access makes before paging, in this order: canonical first and last
   * byte (CANON table; PF-05: never a #PF), then #AC at CPL 3 (SMAP-06).
   */
  private checkLinear(linear: bigint, size: number, access: Access, stack: boolean, alignment: number, onePage: boolean): Fault | undefined {
    // Within one page the last byte is canonical exactly when the first is: the canonical
    // boundaries (2^47, 2^64 − 2^47) are page boundaries.
    if (!canonical(linear) || (!onePage && !canonical((linear + BigInt(size - 1)) & MASK64))) {
      this.hit("CANON-01");
      this.hit("PF-05");
      if (access.kind === "execute") return this.fault("CANON-FETCH", GP, 0);
      return stack ? this.fault("CANON-SS", SS, 0) : this.fault("CANON-GP", GP, 0);
    }
    if (alignmentCheckFails(this.current, linear, alignment, access)) return this.fault("SMAP-06", AC, 0);
    return undefined;
  }

  /** Physical addresses of each byte's page piece; every page is translated before any access. */
  private translateRange(linear: bigint, size: number, access: Access, stack: boolean, alignment: number): { physical: bigint; length: number }[] | Fault {
    const f = this.checkLinear(linear, size, access, stack, alignment, false);
    if (isFault(f)) return f;
    const pieces: { physical: bigint; length: number }[] = [];
    let address = linear;
    let remaining = size;
    while (remaining > 0) {
      const inPage = Math.min(remaining, 4096 - Number(address & 0xfffn));
      // PF-01: a fault in a later page reports that page's first byte (`address`), the first
      // byte of the access that faulted.
      const physical = this.translateOrFault(address, access);
      if (isFault(physical)) return physical;
      pieces.push({ physical, length: inPage });
      address = (address + BigInt(inPage)) & MASK64;
      remaining -= inPage;
    }
    return pieces;
  }

  /** The translation for an instruction fetch at a canonical linear address (the caller checks
   *  CANON-FETCH): the physical address, or the #PF. */
  translateFetch(linear: bigint, mode: AccessMode): bigint | Fault {
    return this.translateOrFault(linear, accessOf("execute", mode));
  }

  /** Physical page `pageNumber`, whose bytes never change from now on (a later write to that page
   *  writes a new copy), so a memo may key on the page object (spec/decode/memo.ts). */
  fixedPage(pageNumber: number): Uint8Array {
    return this.memory.frozenPage(pageNumber);
  }

  /** The byte at `offset` in physical page `pageNumber`. */
  physicalByte(pageNumber: number, offset: number): number {
    return this.memory.page(pageNumber)[offset]!;
  }

  readPhysical(address: bigint, size: number): bigint {
    return this.memory.read(address, size);
  }

  writePhysical(address: bigint, size: number, value: bigint): void {
    this.memory.write(address, size, value);
  }

  /**
   * Little-endian read of `size` bytes at a linear address. `alignment` (default: the size for 2, 4
   * and 8 bytes, else none) is what #AC checks at CPL 3 (SDM Table 6-7).
   */
  readLinear(linear: bigint, size: number, mode: AccessMode, opts: { kind?: AccessKind; stack?: boolean; alignment?: number } = {}): bigint | Fault {
    return this.readAt(linear, size, accessOf(opts.kind ?? "read", mode), opts.stack ?? false, opts.alignment ?? naturalAlignment(size));
  }

  private readAt(linear: bigint, size: number, access: Access, stack: boolean, alignment: number): bigint | Fault {
    // Common case first: the access lies in one page. (The address is split into exact Numbers
    // once: its offset and page number.)
    split64(linear);
    const offset = splitLow() & 0xfff;
    if (offset + size <= 4096 && size <= 8) {
      const linearPage = splitHigh() * 0x10_0000 + (splitLow() >>> 12);
      const f = this.checkLinear(linear, size, access, stack, alignment, true);
      if (f !== undefined) return f;
      const frame = this.frameOrFault(linear, linearPage, access);
      return typeof frame !== "number" ? frame : this.memory.readIn(frame, offset, size);
    }
    const pieces = this.translateRange(linear, size, access, stack, alignment);
    if (isFault(pieces)) return pieces;
    let value = 0n;
    let shift = 0n;
    for (const piece of pieces) {
      value |= this.memory.read(piece.physical, piece.length) << shift;
      shift += BigInt(8 * piece.length);
    }
    return value;
  }

  /** Little-endian write; all pages are translated (and may fault) before any byte is written. */
  writeLinear(linear: bigint, size: number, value: bigint, mode: AccessMode, opts: { stack?: boolean; alignment?: number } = {}): undefined | Fault {
    return this.writeAt(linear, size, value, accessOf("write", mode), opts.stack ?? false, opts.alignment ?? naturalAlignment(size));
  }

  private writeAt(linear: bigint, size: number, value: bigint, access: Access, stack: boolean, alignment: number): undefined | Fault {
    split64(linear);
    const offset = splitLow() & 0xfff;
    if (offset + size <= 4096 && size <= 8) {
      const linearPage = splitHigh() * 0x10_0000 + (splitLow() >>> 12);
      const f = this.checkLinear(linear, size, access, stack, alignment, true);
      if (f !== undefined) return f;
      const frame = this.frameOrFault(linear, linearPage, access);
      if (typeof frame !== "number") return frame;
      this.memory.writeIn(frame, offset, size, value);
      return undefined;
    }
    const pieces = this.translateRange(linear, size, access, stack, alignment);
    if (isFault(pieces)) return pieces;
    let rest = value;
    for (const piece of pieces) {
      this.memory.write(piece.physical, piece.length, rest);
      rest >>= BigInt(8 * piece.length);
    }
    return undefined;
  }

  // ---- operands ----------------------------------------------------------------------------

  /** Effective address (offset within the segment), SDM Vol. 1 §3.7.5; RIP-relative uses next RIP. */
  effectiveAddress(op: MemOperand, nextRip: bigint): bigint {
    let ea = op.ripRelative ? nextRip : 0n;
    if (op.base !== null) ea += this.gpr(op.base);
    if (op.index !== null) ea += this.gpr(op.index) * smallBigInt(op.scale);
    ea += op.disp;
    return op.addressSize === 4 ? BigInt.asUintN(32, ea) : BigInt.asUintN(64, ea);
  }

  /**
   * The linear address of a memory operand, without any access check (INVLPG names an address and
   * accesses nothing). GLOBAL-03: in 64-bit mode only FS and GS contribute a base; in compatibility
   * mode every segment does, modulo 2^32 (SEG-CHECK-LINEAR).
   */
  linearAddress(op: MemOperand, nextRip: bigint): bigint {
    const ea = this.effectiveAddress(op, nextRip);
    const segment = this.current[op.segment];
    if (!in64BitMode(this.current)) return compatibilityLinear(segment, ea);
    return op.segment === "fs" || op.segment === "gs" ? BigInt.asUintN(64, segment.base + ea) : ea;
  }

  /**
   * The linear address of an access of `size` bytes to a memory operand (`kind`: a read-modify-write
   * asks for "write"), after the segment checks compatibility mode makes (SEG-CHECK-*: #GP(0), or
   * #SS(0) through SS), or the fault. In 64-bit mode there are none (GLOBAL-03).
   */
  memoryLinear(op: MemOperand, nextRip: bigint, kind: AccessKind, size: number = op.size): bigint | Fault {
    const ea = this.effectiveAddress(op, nextRip);
    const m = this.current;
    if (in64BitMode(m)) return op.segment === "fs" || op.segment === "gs" ? BigInt.asUintN(64, m[op.segment].base + ea) : ea;
    return this.compatibilityAccess(op.segment, ea, size, kind, op.stackSegment);
  }

  /** SEG-CHECK-*: one compatibility-mode access of `size` bytes at offset `ea` in `sreg`. */
  private compatibilityAccess(sreg: SregName, ea: bigint, size: number, kind: AccessKind, stack: boolean): bigint | Fault {
    const segment = this.current[sreg];
    const failed = segmentCheckFailure(segment, ea, size, kind);
    if (failed !== null) return stack ? this.fault(failed, SS, 0) : this.fault(failed, GP, 0);
    this.hit("SEG-CHECK-LINEAR");
    return compatibilityLinear(segment, ea);
  }

  /** Reads a register, memory or immediate operand at its own size. */
  read(op: Operand, nextRip: bigint, kind: AccessKind = "read"): bigint | Fault {
    switch (op.kind) {
      case "reg":
        return this.readReg(op.reg, op.size, op.high8);
      case "imm":
        return op.value;
      case "mem": {
        const linear = this.memoryLinear(op, nextRip, kind);
        if (typeof linear !== "bigint") return linear;
        return this.readAt(linear, op.size, accessOf(kind, this.dataMode()), op.stackSegment, naturalAlignment(op.size));
      }
      default:
        throw new Error(`read: operand kind ${op.kind} is not a value operand`);
    }
  }

  /** Writes a register or memory operand at its own size; `rule`, when given, tags the write (it is
   *  recorded once the write is done). */
  write(op: Operand, value: bigint, nextRip: bigint, rule?: RuleId): undefined | Fault {
    switch (op.kind) {
      case "reg":
        this.writeReg(op.reg, op.size, value, op.high8);
        if (rule !== undefined) this.hit(rule);
        return undefined;
      case "mem": {
        const linear = this.memoryLinear(op, nextRip, "write");
        if (typeof linear !== "bigint") return linear;
        const f = this.writeAt(linear, op.size, truncate(value, op.size), this.dataAccess(DATA_WRITE), op.stackSegment, naturalAlignment(op.size));
        if (f === undefined && rule !== undefined) this.hit(rule);
        return f;
      }
      default:
        throw new Error(`write: operand kind ${op.kind} is not writable`);
    }
  }

  // ---- stack -------------------------------------------------------------------------------

  /** PUSH of `size` bytes at the current privilege (stack reference: #SS on non-canonical, and
   *  through SS's checks in compatibility mode); `rule`, when given, tags the push (recorded once
   *  it is done). */
  push(value: bigint, size: OperandSize = 8, rule?: RuleId): undefined | Fault {
    if (!in64BitMode(this.current)) return this.pushCompatibility(value, size, rule);
    const rsp = BigInt.asUintN(64, this.gpr(RSP) - smallBigInt(size));
    const f = this.writeAt(rsp, size, truncate(value, size), this.dataAccess(DATA_WRITE), true, naturalAlignment(size));
    if (isFault(f)) return f;
    this.setGpr(RSP, rsp);
    if (rule !== undefined) this.hit(rule);
    return undefined;
  }

  /** POP of `size` bytes; RSP moves only if the read succeeds. */
  pop(size: OperandSize = 8): bigint | Fault {
    if (!in64BitMode(this.current)) return this.popCompatibility(size);
    const rsp = this.gpr(RSP);
    const value = this.readAt(rsp, size, this.dataAccess(DATA_READ), true, naturalAlignment(size));
    if (isFault(value)) return value;
    this.setGpr(RSP, BigInt.asUintN(64, rsp + smallBigInt(size)));
    return value;
  }

  /** SEG-CHECK-STACK: PUSH in compatibility mode, SS:ESP or SS:SP by SS.B. */
  private pushCompatibility(value: bigint, size: OperandSize, rule?: RuleId): undefined | Fault {
    const width = stackWidthMask(this.current.ss);
    const rsp = this.gpr(RSP);
    const sp = (rsp - BigInt(size)) & width;
    const linear = this.compatibilityAccess("ss", sp, size, "write", true);
    if (typeof linear !== "bigint") return linear;
    const f = this.writeLinear(linear, size, value & sizeMask(size), this.dataMode(), { stack: true });
    if (isFault(f)) return f;
    this.writeGpr("SEG-CHECK-STACK", RSP, withStackPointer(rsp, sp, width));
    if (rule !== undefined) this.hit(rule);
    return undefined;
  }

  /** SEG-CHECK-STACK: POP in compatibility mode. */
  private popCompatibility(size: OperandSize): bigint | Fault {
    const width = stackWidthMask(this.current.ss);
    const rsp = this.gpr(RSP);
    const sp = rsp & width;
    const linear = this.compatibilityAccess("ss", sp, size, "read", true);
    if (typeof linear !== "bigint") return linear;
    const value = this.readLinear(linear, size, this.dataMode(), { stack: true });
    if (isFault(value)) return value;
    this.writeGpr("SEG-CHECK-STACK", RSP, withStackPointer(rsp, sp + BigInt(size), width));
    return value;
  }

  /**
   * The linear address of the `size`-byte stack slot `offset` bytes above the stack pointer, for
   * instructions that read their frame before moving the stack pointer (IRET, far RET): RSP + offset
   * in 64-bit mode; SS:(SP + offset) at the SS.B width in compatibility mode, after SS's checks.
   */
  stackSlot(offset: bigint, size: number, kind: AccessKind = "read"): bigint | Fault {
    const rsp = this.gpr(RSP);
    if (in64BitMode(this.current)) return BigInt.asUintN(64, rsp + offset);
    const width = stackWidthMask(this.current.ss);
    return this.compatibilityAccess("ss", (rsp + offset) & width, size, kind, true);
  }

  /** Reads the stack slot `offset` bytes above the stack pointer (`stackSlot`) at the current privilege. */
  readStack(offset: bigint, size: number): bigint | Fault {
    const linear = this.stackSlot(offset, size);
    if (typeof linear !== "bigint") return linear;
    return this.readAt(linear, size, this.dataAccess(DATA_READ), true, naturalAlignment(size));
  }

  /** The stack pointer moved by `delta` bytes at the stack's width (64 bits in 64-bit mode,
   *  SS.B's in compatibility mode, SEG-CHECK-STACK), under `rule`. */
  moveStackPointer(rule: RuleId, delta: bigint): void {
    const rsp = this.gpr(RSP);
    if (in64BitMode(this.current)) {
      this.writeGpr(rule, RSP, BigInt.asUintN(64, rsp + delta));
      return;
    }
    const width = stackWidthMask(this.current.ss);
    this.hit("SEG-CHECK-STACK");
    this.writeGpr(rule, RSP, withStackPointer(rsp, rsp + delta, width));
  }
}

/** `assignRegisters`, logging in `journal` the value each write overwrites — but RIP's and
 *  RFLAGS', which the transaction takes back from the values it began with. */
function assignLogged(m: MutableRegisters, patch: Partial<MachineRegisters>, journal: RegisterJournal): void {
  for (const key in patch) {
    const field = key as keyof MachineRegisters;
    const value = patch[field];
    if (value === undefined) continue;
    const old = exchangeField(m, field, value);
    if (field !== "rip" && field !== "rflags") journal.log(m, field, old);
  }
}
