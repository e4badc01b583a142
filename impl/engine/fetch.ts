// Instruction fetch: RIP → the cached block at that frame (blocks/block-cache.ts), or the single
// instruction that crosses a page end or the CS limit (decoded from its bytes each time, never
// cached), or a fetch fault (#GP(0) for a non-canonical RIP or one beyond the CS limit, #PF from
// the translation). In compatibility mode 32-bit code is assumed (docs/model-choices.md).
// Not a cache (the block cache and the TLB say what invalidates them).
import * as constsModule from "../consts.ts";
import * as insnModule from "../insn.ts";
import { decode, MAX_INSN } from "../decode.ts";
import { type Block, blockAt, cachedBlockAt } from "../blocks/block-cache.ts";
import { translate } from "../memory/translate.ts";
import { resetAdJournal } from "../memory/ad-journal.ts";
import type { StepContext } from "./context.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BASE_LO, CS, GP, LIMIT, RIP_HI, RIP_LO, SEG_STRIDE, PAGE_BYTES, PAGE_OFFSET_MASK } = constsModule;
const { MODE_32, MODE_64 } = insnModule;

/**
 * What to execute at RIP: a cached block (returned), or null with either a fault raised
 * (m.faultVector >= 0) or the single instruction in ctx.crossingInsn. Starts the step's A/D journal (the
 * walks of this fetch belong to the first instruction, undone if it is unsupported).
 * `decodeBlocks` false (a single step): a block already cached at RIP is used, but a miss decodes
 * only the instruction at RIP, as the uncached engine does, instead of a block of up to MAX_BLOCK
 * instructions of which the step runs one (stepping through code decoded each block again from
 * every instruction in it).
 */
export function fetch(ctx: StepContext, decodeBlocks = true): Block | null {
  const m = ctx.m;
  const ripLo = m.regs[RIP_LO]!, ripHi = m.regs[RIP_HI]!;
  m.faultVector = -1;
  ctx.crossingInsn = null;
  resetAdJournal(m);
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
    mode = MODE_32;
    csLimit = m.segments[b + LIMIT]!;
    if (ripLo >>> 0 > csLimit >>> 0) {
      m.raise(GP, 0);
      return null;
    }
    linLo = (ripLo + m.segments[b + BASE_LO]!) | 0;
    linHi = 0;
  }
  const base = translate(m, linLo, linHi, m.fetchClass);
  if (base < 0) return null;
  const off = linLo & PAGE_OFFSET_MASK;
  if (!ctx.uncached) {
    const block = decodeBlocks ? blockAt(m, base, off, mode, ripLo, ripHi, csLimit) : cachedBlockAt(m, base, off, mode, ripLo, ripHi, csLimit);
    if (block !== null) return block;
  }
  // The first instruction crosses the page end or the CS limit: fetch its bytes one page at a
  // time (the second page only if the instruction needs it).
  const first = PAGE_BYTES - off;
  let avail = Math.min(first, MAX_INSN);
  const limitAvail = mode === MODE_64 ? MAX_INSN : Math.min(MAX_INSN, (csLimit >>> 0) - (ripLo >>> 0) + 1);
  const buf = ctx.crossBuf;
  buf.set(m.pool8.subarray(base + off, base + off + Math.min(avail, limitAvail)));
  let insn = decode(buf, 0, Math.min(avail, limitAvail), mode, ripLo, ripHi);
  if (insn === null && Math.min(avail, limitAvail) < limitAvail) {
    const nLo = (linLo + first) | 0;
    const nHi = mode === MODE_64 ? ((nLo >>> 0) < (linLo >>> 0) ? (linHi + 1) | 0 : linHi) : 0;
    if (mode === MODE_64 && nHi >> 15 !== nHi >> 31) {
      m.raise(GP, 0);
      return null;
    }
    const base2 = translate(m, nLo, nHi, m.fetchClass);
    if (base2 < 0) return null;
    avail = limitAvail;
    buf.set(m.pool8.subarray(base2, base2 + (avail - first)), first);
    insn = decode(buf, 0, avail, mode, ripLo, ripHi);
  }
  if (insn === null) {
    // Runs past the CS limit.
    m.raise(GP, 0);
    return null;
  }
  ctx.crossingInsn = insn;
  return null;
}
