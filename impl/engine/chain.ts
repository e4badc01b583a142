// Block chaining: each block remembers the block that ran after it last (Block.successor), so the
// run loop can go from block to block without a full fetch (translate RIP, look up the slot's
// block map) when control flows the same way again.
//
// A link is only a hint, re-validated at every use against what a full fetch would find: the
// successor is still valid (its frame not written: blocks/block-cache.ts invalidation), the
// machine is in 64-bit mode, RIP equals the successor's start, and the TLB translates RIP's page
// for an instruction fetch at the current CPL to the successor's frame. So it needs no
// invalidation of its own; a stale link is simply not followed (and replaced by the next fetch).
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import * as insnModule from "../insn.ts";
import type { Block } from "../blocks/block-cache.ts";
import * as tlbModule from "../memory/tlb.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { RIP_HI, RIP_LO, PAGE_SHIFT } = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;
const { MODE_64 } = insnModule;

/** The block `prev` last handed over to, if fetching at RIP now would find it; otherwise null. */
export function chainedSuccessor(m: Machine, prev: Block): Block | null {
  const b: Block | null = prev.successor;
  if (b === null || !b.valid || b.mode !== MODE_64) return null;
  const lo = m.regs[RIP_LO]!, hi = m.regs[RIP_HI]!;
  if (lo !== b.ripLo || hi !== b.ripHi || !m.mode64) return null;
  // The TLB probe (memory/tlb.ts), inline: the entry for RIP's page grants a fetch and names the
  // successor's frame.
  const t = m.tlb;
  const tag = lo >>> PAGE_SHIFT;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  if (t[e + TLB_TAG] !== tag || t[e + TLB_TAG_HI] !== hi || (t[e + TLB_CLASSES]! & m.fetchClass) === 0 ||
    t[e + TLB_POOL_OFFSET] !== b.poolOffset) return null;
  return b;
}

/** Records that `next` ran after `prev` (a full fetch found it). */
export function linkSuccessor(prev: Block, next: Block): void {
  prev.successor = next;
}
