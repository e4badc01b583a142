// Memory operands in generated code: effective addresses from the register locals, and data
// reads/writes with their fast path inline.
//
// The block page caches (locals pageTag/pageTagHi: linear page, pageClasses: access classes,
// pageBase: pool byte offset; stackTag/... the same for accesses through SS): each a copy of the
// TLB entry its accesses used last, so that a run of accesses to one page costs one compare each
// — two, because kernel entry code alternates stack pushes and pops with per-CPU data. The fast path takes it when the entry grants the
// current fast class (Machine.readFastClass / writeFastClass, or a trace's copy: BlockWriter) and the access is aligned (so it
// stays in the page); otherwise the access calls memory/compiled-access.ts (LD/ST/RMW/COMMIT).
//
// Both invalidated (RELOAD: emptied) after every Machine call the block makes — slow-path accesses,
// interpreter handlers, read-modify-write commits — the only places the TLB (or the pool arrays,
// or Machine.blockEnd) can change while a block runs. Between such calls the copy equals the TLB
// entry, which memory/tlb.ts keeps invisible. It lives only as long as one block call.
import type { Insn } from "../insn.ts";
import * as I from "../insn.ts";
import * as constsModule from "../consts.ts";
import * as tlbModule from "../memory/tlb.ts";
import { STORE_FAULT } from "../memory/compiled-access.ts";
import { type BlockWriter, faultExit, lit, readReg, regHi, regLo } from "./writer.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BASE_HI, BASE_LO, FS, GS, SEG_STRIDE, SS, PAGE_SHIFT, PAGE_OFFSET_MASK } = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

/** After any Machine call: the pool arrays again (the pool may have grown), an empty block page
 *  cache, and `blockEnd`, the local copy of Machine.blockEnd the generated code tests. */
export const RELOAD = "M = m.pool32; M8 = m.pool8; pageTag = -1; pageClasses = 0; stackTag = -1; stackClasses = 0; blockEnd = m.blockEnd;";

/** The page cache's locals for accesses through segment `seg`: the stack's own (stack*) for SS —
 *  pushes and pops alternate with other data accesses in kernel entry code, and one shared copy
 *  would be refilled at each switch —, the block page cache (page*) for the others. */
function cacheOf(seg: number): { tag: string; tagHi: string; classes: string; base: string } {
  return seg === SS ? { tag: "stackTag", tagHi: "stackTagHi", classes: "stackClasses", base: "stackBase" }
    : { tag: "pageTag", tagHi: "pageTagHi", classes: "pageClasses", base: "pageBase" };
}

/** `array[index + offset]` as source, without a `+ 0`. */
function at(index: string, offset: number): string {
  return offset === 0 ? `T[${index}]` : `T[${index} + ${offset}]`;
}

/** Statements that leave the operand's offset in `el`/`eh`. */
export function effectiveAddress(w: BlockWriter, i: Insn): string {
  let s: string;
  if (i.base === I.BASE_RIP) {
    // RIP-relative: next RIP + displacement, known now.
    const lo = (i.nextLo + i.dispLo) | 0;
    const hi = (i.nextHi + i.dispHi + ((lo >>> 0) < (i.nextLo >>> 0) ? 1 : 0)) | 0;
    s = `let el = ${lo}, eh = ${hi};`;
  } else if (i.base >= 0) {
    const bl = regLo(w, i.base), bh = regHi(w, i.base);
    if (i.dispLo === 0 && i.dispHi === 0) s = `let el = ${bl}, eh = ${bh};`;
    else s = `let el = (${bl} + ${lit(i.dispLo)}) | 0, eh = (${bh} + ${lit(i.dispHi)} + ((el >>> 0) < (${bl} >>> 0) ? 1 : 0)) | 0;`;
  } else s = `let el = ${lit(i.dispLo)}, eh = ${lit(i.dispHi)};`;
  if (i.index >= 0) {
    const xl = regLo(w, i.index), xh = regHi(w, i.index);
    const sc = i.scale;
    const xlo = sc === 0 ? xl : `(${xl} << ${sc})`;
    const xhi = sc === 0 ? xh : `((${xh} << ${sc}) | (${xl} >>> ${32 - sc}))`;
    s += ` { const xl = ${xlo}, t = (el + xl) | 0; eh = (eh + ${xhi} + ((t >>> 0) < (el >>> 0) ? 1 : 0)) | 0; el = t; }`;
  }
  if (i.addressSize === 4) s += " eh = 0;";
  return s;
}

/** Reads instruction k's r/m operand into vl/vh (declared here). */
export function readRm(w: BlockWriter, i: Insn, k: number, size: number): string {
  if (i.mod === 3) {
    const [lo, hi] = readReg(w, i.rm, size);
    return `const vl = ${lo}, vh = ${hi};`;
  }
  return `${effectiveAddress(w, i)} ${load(w, i.seg, size, "el", "eh", k)}`;
}

/** Linear address of offset (lo, hi) in segment `seg` into ll/lh (64-bit mode: FS/GS base; a
 *  trace's copy of GS's: BlockWriter.gsBase). */
function linear(w: BlockWriter, seg: number, lo: string, hi: string): string {
  if (seg !== FS && seg !== GS) return `const ll = ${lo}, lh = ${hi};`;
  const b = seg * SEG_STRIDE;
  const [bl, bh] = seg === GS && w.gsBase !== null ? w.gsBase : [`m.segments[${b + BASE_LO}]`, `m.segments[${b + BASE_HI}]`];
  return `const ll = (${lo} + ${bl}) | 0, lh = (${hi} + ${bh} + ((ll >>> 0) < ((${lo}) >>> 0) ? 1 : 0)) | 0;`;
}

/** Makes the page cache of segment `seg` (cacheOf) hold the TLB entry of the page of ll/lh (classes 0
 *  when the TLB has none): the probe memory/tlb.ts describes. */
function probePage(seg: number): string {
  const c = cacheOf(seg);
  return `const tg = ll >>> ${PAGE_SHIFT}; if (tg !== ${c.tag} || lh !== ${c.tagHi}) { const te = (tg & ${TLB_INDEX_MASK}) << ${TLB_STRIDE_SHIFT};` +
    ` if (${at("te", TLB_TAG)} === tg && ${at("te", TLB_TAG_HI)} === lh) { ${c.tag} = tg; ${c.tagHi} = lh; ${c.classes} = ${at("te", TLB_CLASSES)}; ${c.base} = ${at("te", TLB_POOL_OFFSET)}; } else { ${c.tag} = -1; ${c.classes} = 0; } }`;
}

/**
 * A data read of `size` bytes at offset (lo, hi) of `seg` into `let vl, vh`: the block page cache
 * when it grants the read, compiledLoad otherwise (a fault exits the block as instruction k).
 */
export function load(w: BlockWriter, seg: number, size: number, lo: string, hi: string, k: number): string {
  const align = size - 1;
  const { base: pageBase, classes: pageClasses } = cacheOf(seg);
  const off = `(ll & ${PAGE_OFFSET_MASK})`;
  let fast: string;
  if (size === 8) fast = `const o = (${pageBase} + ${off}) >> 2; vl = M[o]; vh = M[o + 1];`;
  else if (size === 4) fast = `vl = M[(${pageBase} + ${off}) >> 2]; vh = 0;`;
  else if (size === 2) fast = `const o = ${pageBase} + ${off}; vl = M8[o] | (M8[o + 1] << 8); vh = 0;`;
  else fast = `vl = M8[${pageBase} + ${off}]; vh = 0;`;
  return `let vl = 0, vh = 0; { ${linear(w, seg, lo, hi)} ${probePage(seg)}` +
    ` if ((${pageClasses} & ${w.readFast}) !== 0${align ? ` && (ll & ${align}) === 0` : ""}) { ${fast} }` +
    ` else { ${w.beforeAccessCall} vl = LD(m, ${seg}, ${lo}, ${hi}, ${size}); if (m.faultVector >= 0) ${faultExit(w, k)} vh = ${size === 8 ? "m.valueHi" : "0"}; ${RELOAD} } }`;
}

/** A data write (see load); the caller checks `blockEnd` after the instruction. */
export function store(w: BlockWriter, seg: number, size: number, lo: string, hi: string, vlo: string, vhi: string,
  k: number): string {
  const align = size - 1;
  const { base: pageBase, classes: pageClasses } = cacheOf(seg);
  const off = `(ll & ${PAGE_OFFSET_MASK})`;
  let fast: string;
  if (size === 8) fast = `const o = (${pageBase} + ${off}) >> 2; M[o] = ${vlo}; M[o + 1] = ${vhi};`;
  else if (size === 4) fast = `M[(${pageBase} + ${off}) >> 2] = ${vlo};`;
  else if (size === 2) fast = `const o = ${pageBase} + ${off}; M8[o] = ${vlo}; M8[o + 1] = (${vlo}) >> 8;`;
  else fast = `M8[${pageBase} + ${off}] = ${vlo};`;
  return `{ ${linear(w, seg, lo, hi)} ${probePage(seg)}` +
    ` if ((${pageClasses} & ${w.writeFast}) !== 0${align ? ` && (ll & ${align}) === 0` : ""}) { ${fast} }` +
    ` else { ${w.beforeAccessCall} if (ST(m, ${seg}, ${lo}, ${hi}, ${size}, ${vlo}, ${vhi}) === ${STORE_FAULT}) ${faultExit(w, k)} ${RELOAD} } }`;
}

/** Statements starting a read-modify-write of instruction k's memory operand: vl/vh (declared
 *  here) hold the old value. */
export function rmwRead(w: BlockWriter, i: Insn, k: number, size: number): string {
  return `${effectiveAddress(w, i)} ${w.beforeAccessCall} const vl = RMW(m, ${i.seg}, el, eh, ${size}); if (m.faultVector >= 0) ${faultExit(w, k)} const vh = ${size === 8 ? "m.valueHi" : "0"};`;
}

/** Statements completing the read-modify-write with the value (lo, hi). */
export function rmwCommit(lo: string, hi: string): string {
  return `COMMIT(m, ${lo}, ${hi}); ${RELOAD}`;
}
