// The IRET return cache: what IRETQ-03..11 and the accessed-bit step concluded for one (CS, SS,
// CPL) in 64-bit mode — both selectors pass their checks, the target is 64-bit code, neither
// accessed bit needs writing — and the hidden parts CS and SS then get. A kernel returning to the
// same user CS:SS over and over then reads its five stack slots and commits, without reading or
// checking the two descriptors. Direct-mapped on CS bits 5:3, IRET_ENTRIES entries of IRET_STRIDE
// int32 fields in Machine.iretCache: generation, CS, SS, CPL, then base low / limit / attributes
// of CS and of SS (the base high halves are 0).
//
// Filled by system.ts execIret after a general-path IRETQ that wrote nothing, only from
// descriptors the descriptor cache holds (so from F_SYS frames). Invalidated, like every
// system-table cache, by a new system-table generation (tables/system-tables.ts: any TLB flush,
// LGDT/LIDT/LTR, a write to an F_SYS frame). What depends on live state is evaluated on every IRET:
// the slots' translation (through a TLB entry granting the read, else the general path), the
// return RIP's canonical check (IRETQ-12), RFLAGS, RSP and the data-segment nulling.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import * as tlbModule from "../memory/tlb.ts";
import { iretFlags, nullInaccessibleSegments } from "../system.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  ATTR, BASE_HI, BASE_LO, CS, LIMIT, RIP_HI, RIP_LO, RSP, SEG_STRIDE, SEL, SS, ST_END, PAGE_BYTES,
  PAGE_OFFSET_MASK, PAGE_SHIFT,
} = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

export const IRET_ENTRIES = 8;
export const IRET_STRIDE = 10;
/** Entry fields (engine/trace-transitions.ts reads them by these names). */
export const R_GENERATION = 0, R_CS = 1, R_SS = 2, R_CPL = 3, R_CS_BASE = 4, R_CS_LIMIT = 5, R_CS_ATTR = 6,
  R_SS_BASE = 7, R_SS_LIMIT = 8, R_SS_ATTR = 9;

export function newIretCache(): Int32Array {
  return new Int32Array(IRET_ENTRIES * IRET_STRIDE).fill(-1);
}

/** The entry of return CS selector `cs` (written out in engine/trace-transitions.ts too). */
function entryOf(cs: number): number {
  return ((cs >> 3) & (IRET_ENTRIES - 1)) * IRET_STRIDE;
}

/** IRETQ from 64-bit mode through the cache: ST_END when done, -1 when the general path must run
 *  (nothing changed). Same reads and results as the general path. */
export function iretThroughCache(m: Machine): number {
  const r = m.regs;
  const lo = r[2 * RSP]!, hi = r[2 * RSP + 1]!;
  // IRETQ-02/10: five 8-byte slots in one page, read through a TLB entry granting the read.
  if ((lo & PAGE_OFFSET_MASK) > PAGE_BYTES - 40 || m.alignmentCheck || m.uncached) return -1;
  // The TLB probe (memory/tlb.ts), inline.
  const t = m.tlb;
  const tag = lo >>> PAGE_SHIFT;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  if (t[e + TLB_TAG] !== tag || t[e + TLB_TAG_HI] !== hi || (t[e + TLB_CLASSES]! & m.readClass) === 0) return -1;
  const o = t[e + TLB_POOL_OFFSET]! + (lo & PAGE_OFFSET_MASK);
  if ((o & 3) !== 0) return -1;
  const mem = m.pool32;
  const w = o >> 2;
  const cs = mem[w + 2]! & 0xffff;
  const ss = mem[w + 8]! & 0xffff;
  const cpl = m.cpl;
  const c = m.iretCache;
  const ce = entryOf(cs);
  if (c[ce + R_GENERATION] !== m.systemTableGeneration || c[ce + R_CS] !== cs || c[ce + R_SS] !== ss ||
    c[ce + R_CPL] !== cpl) return -1;
  const ripLo = mem[w]!, ripHi = mem[w + 1]!;
  // IRETQ-12: a 64-bit target must be canonical (the general path raises the #GP).
  if (ripHi >> 15 !== ripHi >> 31) return -1;
  // ---- commit (IRETQ-13..16), as the general path ----
  iretFlags(m, cpl, 8, mem[w + 4]!);
  const segments = m.segments;
  let b = CS * SEG_STRIDE;
  segments[b + SEL] = cs;
  segments[b + BASE_LO] = c[ce + R_CS_BASE]!;
  segments[b + BASE_HI] = 0;
  segments[b + LIMIT] = c[ce + R_CS_LIMIT]!;
  segments[b + ATTR] = c[ce + R_CS_ATTR]!;
  r[RIP_LO] = ripLo;
  r[RIP_HI] = ripHi;
  b = SS * SEG_STRIDE;
  segments[b + SEL] = ss;
  segments[b + BASE_LO] = c[ce + R_SS_BASE]!;
  segments[b + BASE_HI] = 0;
  segments[b + LIMIT] = c[ce + R_SS_LIMIT]!;
  segments[b + ATTR] = c[ce + R_SS_ATTR]!;
  r[2 * RSP] = mem[w + 6]!;
  r[2 * RSP + 1] = mem[w + 7]!;
  if ((cs & 3) > cpl) nullInaccessibleSegments(m, cs & 3, true);
  m.updateMode();
  return ST_END;
}

/** Records the IRETQ just committed (CS and SS hidden parts as loaded) for (cs, ss, cpl). */
export function storeIretReturn(m: Machine, cs: number, ss: number, cpl: number): void {
  const c = m.iretCache;
  const ce = entryOf(cs);
  const segments = m.segments;
  c[ce + R_GENERATION] = m.systemTableGeneration;
  c[ce + R_CS] = cs;
  c[ce + R_SS] = ss;
  c[ce + R_CPL] = cpl;
  c[ce + R_CS_BASE] = segments[CS * SEG_STRIDE + BASE_LO]!;
  c[ce + R_CS_LIMIT] = segments[CS * SEG_STRIDE + LIMIT]!;
  c[ce + R_CS_ATTR] = segments[CS * SEG_STRIDE + ATTR]!;
  c[ce + R_SS_BASE] = segments[SS * SEG_STRIDE + BASE_LO]!;
  c[ce + R_SS_LIMIT] = segments[SS * SEG_STRIDE + LIMIT]!;
  c[ce + R_SS_ATTR] = segments[SS * SEG_STRIDE + ATTR]!;
}
