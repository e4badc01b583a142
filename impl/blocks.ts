// The decoded-block cache. A block is a run of decoded instructions that starts at one RIP and
// lies wholly inside one 4 KiB physical frame; it ends at the first instruction that changes
// control flow, privilege, mode, flags that gate events, or caches (handlers.ts endsBlock), at
// the page end, or after MAX_BLOCK instructions — except that a direct JMP to an address in the
// same frame that does not start an instruction already in the block is followed (the block goes
// on at its target; the JMP stays in the block as an instruction that retires). Blocks are keyed by (frame, page offset, decode
// mode) and remember the RIP they were decoded at (RIP-relative operands and branch targets are
// resolved at decode time).
//
// Invalidation: decoding marks the frame F_CODE (machine.ts), so no TLB entry grants writes to it;
// every write that reaches an F_CODE frame (guest stores, delivery frame pushes, A/D updates)
// drops all blocks of that frame and ends the running block (Machine.blockEnd). Allocating a frame
// that read as zeros drops the zero page's blocks. The translation from RIP to frame is redone at
// every block entry through the TLB, so CR3/paging changes need nothing here.
import type { Machine, CachedBlock } from "./machine.ts";
import { PAGE_BYTES } from "./machine.ts";
import { decode } from "./decode.ts";
import type { Insn } from "./insn.ts";
import { MODE_64, OP_JMP } from "./insn.ts";
import { endsBlock } from "./handlers.ts";

export const MAX_BLOCK = 64;

/** A compiled block body (impl/compile.ts): runs at most `budget` instructions; returns the number
 *  retired and leaves the exit status in Machine.bstat. */
export type BlockFn = (m: Machine, budget: number) => number;

export class Block implements CachedBlock {
  valid = true;
  /** The block that last followed this one (a hint: the engine re-validates it, see
   *  ImplEngine.successor). */
  succ: Block | null = null;
  /** Executions so far (compiled after COMPILE_AFTER runs). */
  runs = 0;
  fn: BlockFn | null = null;
  /** True when the compiler declined this block (keeps interpreting it). */
  noCompile = false;
  constructor(
    readonly key: number,
    readonly ripLo: number,
    readonly ripHi: number,
    readonly insns: readonly Insn[],
    /** Last byte's EIP (compatibility mode: checked against the CS limit at entry). */
    readonly endEip: number,
    /** Pool byte offset of the frame holding the block. */
    readonly pageOff: number,
    readonly mode: number,
  ) {}
}

/**
 * The cached block at (slot, page offset, mode) decoded at this RIP, building it if needed.
 * Returns null when the first instruction crosses the page end or the CS limit (the caller
 * executes it on the uncached path).
 */
export function blockAt(m: Machine, pageBase: number, off: number, mode: number, ripLo: number, ripHi: number,
  csLimit: number): Block | null {
  const slot = pageBase >> 12;
  const key = off * 4 + mode;
  let map = m.blocks[slot];
  const cached = map?.get(key) as Block | undefined;
  if (cached !== undefined && cached.valid && cached.ripLo === ripLo && cached.ripHi === ripHi &&
    (mode === MODE_64 || cached.endEip >>> 0 <= csLimit >>> 0)) return cached;
  const insns: Insn[] = [];
  let o = off;
  let lo = ripLo, hi = ripHi;
  let endEip = 0;
  while (insns.length < MAX_BLOCK) {
    const i = decode(m.mem8, pageBase + o, PAGE_BYTES - o, mode, lo, hi);
    if (i === null) break;
    if (mode !== MODE_64 && ((lo >>> 0) + i.len - 1 > csLimit >>> 0 || (lo >>> 0) + i.len - 1 > 0xffffffff)) break;
    insns.push(i);
    endEip = (lo + i.len - 1) | 0;
    if (i.op === OP_JMP && mode === MODE_64 && i.tgtHi === hi && (i.tgtLo & ~0xfff) === (lo & ~0xfff) &&
      insns.length < MAX_BLOCK && !insns.some((x) => x.ripLo === i.tgtLo)) {
      // Follow a direct jump inside the frame to code not yet in the block.
      o = i.tgtLo & 0xfff;
      lo = i.tgtLo;
      continue;
    }
    o += i.len;
    lo = i.nextLo;
    hi = i.nextHi;
    if (endsBlock(i.op) || o >= PAGE_BYTES) break;
  }
  if (insns.length === 0) return null;
  const b = new Block(key, ripLo, ripHi, insns, endEip, pageBase, mode);
  m.markCode(slot);
  map = m.blocks[slot];
  if (map === undefined) {
    map = new Map<number, CachedBlock>();
    m.blocks[slot] = map;
  }
  map.set(key, b);
  return b;
}
