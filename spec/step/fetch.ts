// The instruction fetch: the bytes at RIP, fetched for the decoder one at a time, with the fetch
// faults (CANON-FETCH, #PF) of exactly the bytes the instruction needs.
import { decode } from "../decode/decode.ts";
import type { Instruction, Mnemonic, Unsupported } from "../decode/instruction.ts";
import { SEMANTICS } from "../semantics-table.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { rememberedInstruction, rememberInstruction } from "../decode/memo.ts";
import { GP, isFault, type Fault } from "../fault.ts";
import type { MachineRegisters } from "../machine/machine.ts";
import { canonical, cpl, in64BitMode, RFLAGS, smallBigInt, split64, splitHigh, splitLow } from "../machine/registers.ts";
import type { MemoryDraft } from "../machine/physical-memory.ts";
import { walkIsRemembered } from "../paging/walk-memo.ts";
import { accessOf, type AccessMode } from "../paging/access.ts";
import type { Transaction } from "../transaction/transaction.ts";

/** Linear address of the instruction pointer: CS.base applies outside 64-bit mode. */
function fetchAddress(m: MachineRegisters, offset: number): bigint {
  return in64BitMode(m) ? BigInt.asUintN(64, m.rip + smallBigInt(offset)) : BigInt.asUintN(32, m.cs.base + BigInt.asUintN(32, m.rip + smallBigInt(offset)));
}

/**
 * The bytes of the instruction at RIP, fetched for the decoder one at a time. Each page they come
 * from is checked and translated once, when its first byte is needed: the bytes after it up to the
 * end of the page are at consecutive linear addresses, canonical exactly when it is (the canonical
 * boundary is a page boundary), and walk the same entries (nothing is written between the fetches
 * of one instruction, and the first walk already set their A bits).
 */
class InstructionBytes {
  private readonly mode: AccessMode;
  /** SEG-CHECK-FETCH: in compatibility mode, bytes 0..limitEnd−1 lie within the CS limit (EIP + i
   *  ≤ CS.limit); in 64-bit mode there is no limit. */
  readonly limitEnd: number;
  /** Bytes first..end−1 are in physical page `page`, byte i at offset `i + shift`. */
  private first = 0;
  private end = 0;
  page = 0;
  shift = 0;

  constructor(private readonly t: Transaction, private readonly m: MachineRegisters) {
    this.mode = cpl(m) === 3 ? "user" : "supervisor";
    this.limitEnd = in64BitMode(m) ? Infinity : m.cs.limit - Number(m.rip & 0xffff_ffffn) + 1;
  }

  byte(i: number): number | Fault {
    if (i >= this.limitEnd) return this.t.fault("SEG-CHECK-FETCH", GP, 0);
    if (i < this.first || i >= this.end) {
      const address = fetchAddress(this.m, i);
      if (!canonical(address)) return this.t.fault("CANON-FETCH", GP, 0);
      const physical = this.t.translateFetch(address, this.mode);
      if (isFault(physical)) return physical;
      const offset = Number(address & 0xfffn);
      this.first = i;
      this.end = i + 4096 - offset;
      this.page = Number(physical >> 12n);
      this.shift = offset - i;
    }
    return this.t.physicalByte(this.page, i + this.shift);
  }
}

/**
 * A code page fetched from in 64-bit mode, and under what it was: while the draft is the same and
 * its generation stands (no page object replaced), and the registers a walk depends on and the
 * fetch's privilege are the same, a fetch from the same linear page makes the walk it made then —
 * one the walk memo remembers, so its table pages are frozen and it sets no A/D bit — and reads
 * the same frozen page object. The instructions decoded there are kept with it. Exact, as the walk
 * memo is (spec/paging/walk-memo.ts): it skips the work, not a check whose answer could differ.
 */
interface CodePage {
  /** The draft's serial (MemoryDraft.serial), not the draft: the cache outlives runs. */
  readonly memory: number;
  readonly generation: number;
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  readonly ac: bigint;
  /** A walk epoch of these registers (spec/paging/walk-memo.ts `walkEpoch`): a machine of that
   *  epoch has them all, and is not compared with them one by one. */
  epoch: number;
  readonly mode: AccessMode;
  /** The linear page number (addresses below 2^53 only: exact as Numbers). */
  readonly linearPage: number;
  /** By offset in the page: the instruction there (wholly inside the page), with its semantics. */
  readonly decoded: (Fetched | undefined)[];
}

/** Direct-mapped by linear page number: user and kernel code pages of a loop each keep theirs. */
const CODE_PAGES = 16;
const codePages: (CodePage | undefined)[] = new Array<CodePage | undefined>(CODE_PAGES).fill(undefined);

/** Whether a fetch on `m` (walk epoch `epoch`) at privilege `mode` may use `c`. */
function sameCodePage(c: CodePage, m: MachineRegisters, epoch: number, memory: MemoryDraft, mode: AccessMode): boolean {
  if (c.memory !== memory.serial || c.generation !== memory.generation || c.mode !== mode) return false;
  if (c.epoch === epoch) return true;
  // RFLAGS.AC (bit 18): clear in any RFLAGS below 2^18, without a BigInt operation.
  const rflags = m.rflags;
  if (c.cr3 !== m.cr3 || c.cr0 !== m.cr0 || c.cr4 !== m.cr4 || c.efer !== m.efer || c.ac !== (rflags < RFLAGS.AC ? 0n : rflags & RFLAGS.AC)) return false;
  c.epoch = epoch;
  return true;
}

/** An instruction fetched and decoded, with its semantics from the table. */
export interface Fetched {
  readonly kind: "fetched";
  readonly instruction: Instruction;
  readonly semantics: Semantics;
}

/** The semantics table as a Map, built once: a Map finds a mnemonic by its string's cached hash,
 *  where a keyed load from the ~130-property table object takes V8's slow megamorphic path. The
 *  code pages keep each instruction with its semantics, so the usual step looks up neither. */
const SEMANTICS_BY_MNEMONIC: ReadonlyMap<Mnemonic, Semantics> = new Map(Object.entries(SEMANTICS) as [Mnemonic, Semantics][]);

function fetched(instruction: Instruction): Fetched {
  return { kind: "fetched", instruction, semantics: SEMANTICS_BY_MNEMONIC.get(instruction.mnemonic)! };
}

/** Decodes at RIP; fetch faults (#PF, #GP for non-canonical RIP) come back as faults. */
export function fetchAndDecode(t: Transaction): Fetched | Unsupported | Fault {
  // Read, not handed out (`t.now`): nothing is updated while an instruction is fetched.
  const m = t.now;
  const mode64 = in64BitMode(m);
  // 64-bit mode, RIP below 2^53 (canonical): first the code pages fetched from before. (RIP split
  // into exact Numbers, its page number and offset.)
  split64(m.rip);
  if (mode64 && splitHigh() < 0x20_0000) {
    const offset = splitLow() & 0xfff;
    const linearPage = splitHigh() * 0x10_0000 + (splitLow() >>> 12);
    const c = codePages[linearPage % CODE_PAGES];
    const mode = cpl(m) === 3 ? "user" : "supervisor";
    if (c !== undefined && c.linearPage === linearPage && sameCodePage(c, m, t.walkEpoch(), t.workingMemory, mode)) {
      const known = c.decoded[offset];
      if (known !== undefined) {
        // What the fetch's successful walk records (Transaction.translateOrFault).
        t.hit("PF-ACCESSED");
        return known;
      }
    }
    const decoded = fetchAndDecodeWalking(t, m, mode64);
    if (isFault(decoded) || decoded.kind !== "instruction") return decoded;
    const f = fetched(decoded);
    if (offset + decoded.length <= 4096) rememberCodePage(t, m, linearPage, offset, mode, f);
    return f;
  }
  const decoded = fetchAndDecodeWalking(t, m, mode64);
  return isFault(decoded) || decoded.kind !== "instruction" ? decoded : fetched(decoded);
}

/** Keeps `insn` with its code page, if the page's walk is one the walk memo remembers. */
function rememberCodePage(t: Transaction, m: MachineRegisters, linearPage: number, offset: number, mode: AccessMode, insn: Fetched): void {
  const memory = t.workingMemory;
  const slot = linearPage % CODE_PAGES;
  const c = codePages[slot];
  if (c !== undefined && c.linearPage === linearPage && sameCodePage(c, m, t.walkEpoch(), memory, mode)) {
    c.decoded[offset] = insn;
    return;
  }
  if (!walkIsRemembered(m, memory, m.rip, accessOf("execute", mode))) return;
  // Indexed by offset (an array, not a Map: one load on every instruction fetched).
  const decoded = new Array<Fetched | undefined>(4096).fill(undefined);
  decoded[offset] = insn;
  codePages[slot] = {
    memory: memory.serial, generation: memory.generation, cr0: m.cr0, cr3: m.cr3, cr4: m.cr4, efer: m.efer, ac: m.rflags & RFLAGS.AC, epoch: t.walkEpoch(), mode,
    linearPage, decoded,
  };
}

/** The fetch itself: byte by byte through the walk, or the decode memo. */
function fetchAndDecodeWalking(t: Transaction, m: MachineRegisters, mode64: boolean): Instruction | Unsupported | Fault {
  const bytes = new InstructionBytes(t, m);
  // The first byte's fetch (its checks and walk) always happens; the bytes from there may have
  // been decoded before (spec/decode/memo.ts).
  const byte0 = bytes.byte(0);
  if (isFault(byte0)) return byte0;
  const fixed = t.fixedPage(bytes.page);
  const known = rememberedInstruction(fixed, bytes.shift, mode64);
  // A remembered instruction lies in byte 0's page, so only the CS limit can stop its later bytes.
  if (known !== undefined) return known.length <= bytes.limitEnd ? known : t.fault("SEG-CHECK-FETCH", GP, 0);
  const decoded = decode((i) => bytes.byte(i), mode64);
  if (decoded.kind === "instruction") rememberInstruction(fixed, bytes.shift, mode64, decoded);
  return decoded;
}

/** The code pages kept (for tests of what the cache holds on to between runs). */
export function keptCodePages(): readonly object[] {
  return codePages.filter((c): c is CodePage => c !== undefined);
}
