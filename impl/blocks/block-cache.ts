// The decoded-block cache. A block is a run of decoded instructions that starts at one RIP and
// lies wholly inside one 4 KiB physical frame; it ends at the first instruction that changes
// control flow, privilege, mode, flags that gate events, or caches (endsBlock below), at the page
// end, or after MAX_BLOCK instructions — except that a direct JMP to an address in the same frame
// that does not start an instruction already in the block is followed (the block goes on at its
// target; the JMP stays in the block as an instruction that retires). Blocks are kept per pool slot
// (Machine.blocksBySlot), keyed by page offset and decode mode, and remember the RIP they were
// decoded at (RIP-relative operands and branch targets are resolved at decode time). A block also
// carries its compiled function (compile/) and its successor link (engine/chain.ts).
//
// Invalidated (invalidateCode: all blocks of one slot) by: any write that reaches an F_CODE frame
// (guest stores, delivery frame pushes, A/D updates, the A/D journal's rollback) — decoding marks
// the frame F_CODE, so no TLB entry grants writes to it and every write passes noteWrite
// (memory/pool.ts), which drops the frame's blocks and ends the running block (Machine.blockEnd).
// Allocating a frame drops the zero page's blocks (they were decoded from zeros). A dropped block
// is marked invalid, so links to it are not followed. RIP → frame is translated through the TLB
// at every block entry, so CR3 and paging changes need nothing here; load() starts a new Machine.
//
// Bounded: an untrusted guest can make a block of every two bytes of its memory (and each of them
// hot enough to compile), so the cache holds at most MAX_CACHED_BLOCKS blocks, of which at most
// MAX_COMPILED_BLOCKS compiled. Decoding a block beyond the first cap, or compiling one beyond the
// second, first empties the whole cache (flushBlockCache: every block dropped as by a write to its
// frame, Machine.blockBudget.flushes counts it) — the eviction QEMU uses for its translation cache:
// no bookkeeping on the hot path, and a guest whose code fits runs as before. Being a cache, a
// flush changes nothing the guest can see.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import { decode } from "../decode.ts";
import * as I from "../insn.ts";
import type { Insn } from "../insn.ts";
import { flushTlb } from "../memory/tlb.ts";
import type { Trace } from "../engine/trace.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { PAGE_BYTES, PAGE_SHIFT, PAGE_OFFSET_MASK, F_CODE } = constsModule;
const { MODE_64, OP_JMP } = I;

/** Most instructions in one block. */
export const MAX_BLOCK = 64;

/** Most blocks held at once (all frames). About 16 MiB of decoded instructions at worst. */
export const MAX_CACHED_BLOCKS = 16_384;
/** Most compiled blocks held at once: a compiled block (its source, bytecode and optimized code)
 *  costs kilobytes, so this is the cap that bounds the host memory a guest can make impl use. */
export const MAX_COMPILED_BLOCKS = 2_048;

/** A compiled block body (compile/compile.ts): runs at most `budget` instructions; returns the
 *  number retired and leaves the exit status in Machine.blockExit. */
export type BlockFn = (m: Machine, budget: number) => number;

export class Block {
  /** Cleared when the block's frame is written: links to it (`successor`) must not be followed. */
  valid = true;
  /** The block that last followed this one (a hint: engine/chain.ts re-validates it). */
  successor: Block | null = null;
  /** Executions so far (compiled after COMPILE_AFTER runs). */
  runs = 0;
  compiled: BlockFn | null = null;
  /** True when the compiler declined this block (it stays interpreted). */
  compileDeclined = false;
  /** Runs while compiled (a trace is tried after engine/trace.ts TRACE_AFTER). */
  compiledRuns = 0;
  /** The trace headed by this block (engine/trace.ts), run in place of `compiled`. */
  trace: Trace | null = null;
  /** A trace was tried (at most once). */
  traceTried = false;
  /** The instruction whose fault ended the block's last compiled run, or -1 (engine/trace.ts
   *  continues a trace through that fault's delivery). */
  exitFault = -1;
  constructor(
    /** Key within its slot's map: page offset · 4 + decode mode. */
    readonly key: number,
    readonly ripLo: number,
    readonly ripHi: number,
    readonly insns: readonly Insn[],
    /** Last byte's EIP (compatibility mode: checked against the CS limit at entry). */
    readonly endEip: number,
    /** Pool byte offset of the frame holding the block. */
    readonly poolOffset: number,
    readonly mode: number,
  ) {}
}

/**
 * The cached block at (pool page, page offset, mode) decoded at this RIP, building it if needed.
 * Returns null when the first instruction crosses the page end or the CS limit (the caller
 * executes it on the uncached path).
 */
export function blockAt(m: Machine, poolPage: number, off: number, mode: number, ripLo: number, ripHi: number,
  csLimit: number): Block | null {
  return cachedBlockAt(m, poolPage, off, mode, ripLo, ripHi, csLimit) ?? decodeBlock(m, poolPage, off, mode, ripLo, ripHi, csLimit);
}

/** blockAt's hit, or null: never decodes (a single step, engine/fetch.ts, decodes only the one
 *  instruction it executes). */
export function cachedBlockAt(m: Machine, poolPage: number, off: number, mode: number, ripLo: number, ripHi: number,
  csLimit: number): Block | null {
  const cached = m.blocksBySlot[poolPage >> PAGE_SHIFT]?.get(off * 4 + mode);
  return cached !== undefined && cached.valid && cached.ripLo === ripLo && cached.ripHi === ripHi &&
    (mode === MODE_64 || cached.endEip >>> 0 <= csLimit >>> 0) ? cached : null;
}

/** Decodes and caches the block at (pool page, page offset, mode, RIP): blockAt's miss path, a
 *  function of its own so that the hit path stays small. */
function decodeBlock(m: Machine, poolPage: number, off: number, mode: number, ripLo: number, ripHi: number,
  csLimit: number): Block | null {
  const slot = poolPage >> PAGE_SHIFT;
  const key = off * 4 + mode;
  const insns: Insn[] = [];
  let o = off;
  let lo = ripLo, hi = ripHi;
  let endEip = 0;
  while (insns.length < MAX_BLOCK) {
    const i = decode(m.pool8, poolPage + o, PAGE_BYTES - o, mode, lo, hi);
    if (i === null) break;
    if (mode !== MODE_64 && ((lo >>> 0) + i.len - 1 > csLimit >>> 0 || (lo >>> 0) + i.len - 1 > 0xffffffff)) break;
    insns.push(i);
    endEip = (lo + i.len - 1) | 0;
    if (i.op === OP_JMP && mode === MODE_64 && i.targetHi === hi && (i.targetLo & ~PAGE_OFFSET_MASK) === (lo & ~PAGE_OFFSET_MASK) &&
      insns.length < MAX_BLOCK && !insns.some((x) => x.ripLo === i.targetLo)) {
      // Follow a direct jump inside the frame to code not yet in the block.
      o = i.targetLo & PAGE_OFFSET_MASK;
      lo = i.targetLo;
      continue;
    }
    o += i.len;
    lo = i.nextLo;
    hi = i.nextHi;
    if (endsBlock(i.op) || o >= PAGE_BYTES) break;
  }
  if (insns.length === 0) return null;
  const b = new Block(key, ripLo, ripHi, insns, endEip, poolPage, mode);
  if (m.blockBudget.blocks >= MAX_CACHED_BLOCKS) flushBlockCache(m);
  markCode(m, slot);
  let map = m.blocksBySlot[slot];
  if (map === undefined) {
    map = new Map<number, Block>();
    m.blocksBySlot[slot] = map;
    m.blockBudget.slots.add(slot);
  }
  const replaced = map.get(key);
  if (replaced !== undefined) dropBlock(m, replaced);
  map.set(key, b);
  m.blockBudget.blocks++;
  return b;
}

/** Counts a block just compiled; false when the compiled cap is reached (the caller flushes). */
export function mayCompile(m: Machine): boolean {
  return m.blockBudget.compiled < MAX_COMPILED_BLOCKS;
}

/** Empties the block cache (it is full): every block is dropped as a write to its frame would. */
export function flushBlockCache(m: Machine): void {
  for (const slot of [...m.blockBudget.slots]) invalidateCode(m, slot);
  m.blockBudget.blocks = 0;
  m.blockBudget.compiled = 0;
  m.blockBudget.flushes++;
}

function dropBlock(m: Machine, b: Block): void {
  b.valid = false;
  b.successor = null;
  m.blockBudget.blocks--;
  if (b.compiled !== null) m.blockBudget.compiled--;
  if (b.trace !== null) m.blockBudget.compiled--;
  b.trace = null;
}

/** Marks a slot as holding decoded code: writes to it must take the slow path from now on. */
export function markCode(m: Machine, slot: number): void {
  const f = m.slotFlags[slot]!;
  if ((f & F_CODE) !== 0) return;
  m.slotFlags[slot] = f | F_CODE;
  // Withdraw the write classes TLB entries may grant to this frame.
  flushTlb(m);
}

/** Drops the decoded blocks of a slot (a write reached it). */
export function invalidateCode(m: Machine, slot: number): void {
  const map = m.blocksBySlot[slot];
  if (map !== undefined) {
    for (const b of map.values()) dropBlock(m, b);
    m.blockBudget.slots.delete(slot);
  }
  m.blocksBySlot[slot] = undefined;
  m.slotFlags[slot] = m.slotFlags[slot]! & ~F_CODE;
}

/** Operations after which a block must end (endsBlockBySwitch, made into a table once). */
export function endsBlock(op: number): boolean {
  return ENDS_BLOCK[op] === 1;
}

/** Operations after which a block must end: they change control flow, privilege, mode,
 *  RFLAGS.TF/IF/AC, interrupt shadows, caches (TLB, CR3/CR4, LDTR), raise events or halt, or may
 *  stop `unsupported` (MOV DR7, XSETBV, WRMSR: a mid-block interpreter call cannot). A block may
 *  hold them only last. (Looked up in ENDS_BLOCK: each case reads a name of the insn.ts namespace,
 *  which is a property load per case where an importer sees the module's bindings as an object's
 *  properties, as under vitest.) */
function endsBlockBySwitch(op: number): boolean {
  switch (op) {
    case I.OP_UNSUP: case I.OP_UD: case I.OP_GP0:
    case I.OP_JMP: case I.OP_JCC: case I.OP_CALL: case I.OP_CALL_RM: case I.OP_JMP_RM: case I.OP_RET:
    case I.OP_RETF: case I.OP_JMPF: case I.OP_POPF: case I.OP_CLI: case I.OP_STI: case I.OP_HLT:
    case I.OP_IN: case I.OP_OUT: case I.OP_INT: case I.OP_INT3: case I.OP_INT1: case I.OP_INTO:
    case I.OP_IRET: case I.OP_SYSCALL: case I.OP_SYSRET: case I.OP_RDMSR: case I.OP_WRMSR:
    case I.OP_MOV_FROM_CR: case I.OP_MOV_TO_CR: case I.OP_LGDT: case I.OP_LIDT: case I.OP_SGDT:
    case I.OP_SIDT: case I.OP_LTR: case I.OP_MOV_TO_SREG: case I.OP_POP_SREG: case I.OP_STAC:
    case I.OP_CLAC: case I.OP_CLTS: case I.OP_WBINVD: case I.OP_INVD: case I.OP_INVLPG: case I.OP_RDTSC:
    case I.OP_SYSEXIT: case I.OP_SYSENTER: case I.OP_LLDT: case I.OP_LMSW: case I.OP_MOV_TO_DR: case I.OP_MOV_FROM_DR:
    case I.OP_RDTSCP: case I.OP_XSETBV:
    case I.OP_SYSEXIT:
    // LOOP/JrCXZ branch; a string instruction may repeat (one iteration per step: RIP stays).
    case I.OP_LOOP: case I.OP_JRCXZ:
    case I.OP_MOVS: case I.OP_STOS: case I.OP_LODS: case I.OP_CMPS: case I.OP_SCAS:
      return true;
    default:
      return false;
  }
}

/** endsBlockBySwitch's answer for every operation (1: the block ends after it). */
const ENDS_BLOCK = Uint8Array.from({ length: I.OP_COUNT }, (_, op) => (endsBlockBySwitch(op) ? 1 : 0));
