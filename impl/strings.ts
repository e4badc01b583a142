// String instructions: MOVS, STOS, LODS, CMPS, SCAS, with REP / REPE / REPNE (SDM Vol. 2B; the rows
// "String instructions" and "REP string instructions: step granularity" of docs/model-choices.md).
//
// One iteration is one step: a repeated instruction that has not finished leaves RIP at itself and
// sets RF, so that events are taken between iterations, TF traps after each, and the timer counts
// each (docs/devices.md). A count of 0 completes the instruction without an iteration.
//
// Batching (the speed trick here): the engine's run loop may allow several iterations in one
// call (Machine.repBudget, only where no event can become deliverable between them: no TF, no
// shadow, within the step budget and the timer's countdown). The handler then reports the extra
// iterations (Machine.repExtra), each a retired step. It stops early when a write reaches a code
// or page-table frame (Machine.blockEnd: the next iteration must be fetched and translated anew),
// and it never reports a fault after a completed iteration: it stops before the faulting one
// (which changed nothing but A/D bits a walk sets again), and the next step repeats it and
// delivers the fault exactly as a one-iteration step would. Within a batch, REP MOVS / REP STOS
// move whole runs of elements inside one page at once when the TLB already grants them (chunk).
// Not a cache (the TLB says what invalidates it).
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import * as insnModule from "./insn.ts";
import { alu, getReg, setReg } from "./exec.ts";
import { readSegmented, writeSegmented } from "./memory/segmented.ts";
import * as tlbModule from "./memory/tlb.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  BASE_HI, BASE_LO, DF, ES, FS, GS, PAGE_BYTES, PAGE_OFFSET_MASK, PAGE_SHIFT, RAX, RCX, RDI, RF, RIP_HI, RIP_LO, RSI,
  SEG_STRIDE, ST_FAULT, ST_OK,
} = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;
const { ALU_CMP, OP_CMPS, OP_LODS, OP_MOVS, OP_SCAS } = insnModule;

/** Runs one iteration (or, with REP, up to Machine.repBudget iterations) of a string instruction. */
export function execString(m: Machine, i: Insn): number {
  const op = i.op;
  const size = i.operandSize;
  const asz = i.addressSize;
  const rep = i.rep !== 0;
  const r = m.regs;
  const budget = rep ? m.repBudget : 1;
  const delta = (m.flags & DF) !== 0 ? -size : size;
  let done = 0;
  const fast = rep && (op === OP_MOVS || op === insnModule.OP_STOS) && m.mode64 && !m.alignmentCheck && !m.uncached;
  for (;;) {
    if (rep && countIsZero(r, asz)) break;
    if (fast && budget - done > 1) {
      // Several iterations in one page at once (see chunk); at least one is left for the checks
      // below, which end the instruction or the batch.
      const n = chunk(m, i, op, size, asz, Math.min(budget - done - 1, countBelow(r, asz)), delta);
      if (n > 0) {
        done += n;
        if (op === OP_MOVS) advance(r, RSI, asz, delta * n);
        advance(r, RDI, asz, delta * n);
        advance(r, RCX, asz, -n);
        continue;
      }
    }
    if (!iterate(m, i, op, size, asz)) {
      if (done === 0) return ST_FAULT;
      // Stop before the faulting iteration; the next step repeats it (see the header).
      m.faultVector = -1;
      return suspend(m, i, done);
    }
    done++;
    // RSI / RDI advance at the address size.
    if (op !== insnModule.OP_STOS && op !== OP_SCAS) advance(r, RSI, asz, delta);
    if (op !== OP_LODS) advance(r, RDI, asz, delta);
    if (!rep) break;
    advance(r, RCX, asz, -1);
    if (countIsZero(r, asz)) break;
    if ((op === OP_CMPS || op === OP_SCAS) && zeroResult(m, size) !== (i.rep === 0xf3)) break;
    if (done >= budget || m.blockEnd) return suspend(m, i, done);
  }
  m.repExtra = done > 1 ? done - 1 : 0;
  return ST_OK;
}

/** The repetition goes on at the next step: RIP stays at the instruction, RF = 1. */
function suspend(m: Machine, i: Insn, done: number): number {
  m.regs[RIP_LO] = i.ripLo;
  m.regs[RIP_HI] = i.ripHi;
  m.flags |= RF;
  m.repExtra = done - 1;
  return ST_OK;
}

/** The element accesses of one iteration; false on a fault (nothing changed but A/D bits). */
function iterate(m: Machine, i: Insn, op: number, size: number, asz: number): boolean {
  const r = m.regs;
  const siLo = r[2 * RSI]!, siHi = asz === 8 ? r[2 * RSI + 1]! : 0;
  const diLo = r[2 * RDI]!, diHi = asz === 8 ? r[2 * RDI + 1]! : 0;
  if (op === OP_MOVS) {
    const lo = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    return writeSegmented(m, ES, diLo, diHi, size, lo, m.valueHi, m.writeClass);
  }
  if (op === OP_LODS) {
    const lo = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    setReg(m, RAX, size, lo, size === 8 ? m.valueHi : 0);
    return true;
  }
  if (op === OP_CMPS) {
    const al = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    const ah = size === 8 ? m.valueHi : 0;
    const bl = readSegmented(m, ES, diLo, diHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    alu(m, ALU_CMP, size, al, ah, bl, size === 8 ? m.valueHi : 0);
    return true;
  }
  if (op === OP_SCAS) {
    const bl = readSegmented(m, ES, diLo, diHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    const bh = size === 8 ? m.valueHi : 0;
    const al = getReg(m, RAX, size);
    alu(m, ALU_CMP, size, al, size === 8 ? m.valueHi : 0, bl, bh);
    return true;
  }
  // STOS
  const lo = getReg(m, RAX, size);
  return writeSegmented(m, ES, diLo, diHi, size, lo, size === 8 ? m.valueHi : 0, m.writeClass);
}

/**
 * The speed path of REP MOVS / REP STOS: up to `limit` iterations (fewer than the count, so the
 * last iteration still takes the exact path) whose elements all lie in one page of the destination
 * (and of the source), when the TLB already grants the accesses — so no walk, no A/D change, no
 * fault, and no guarded frame (a write-class TLB entry never maps a code, page-table or
 * system-table frame: memory/tlb.ts). Elements are copied one at a time in iteration order, each
 * read whole before it is written, so overlapping moves come out as the one-by-one iterations
 * would. Returns the iterations done (0: take the exact path).
 */
function chunk(m: Machine, i: Insn, op: number, size: number, asz: number, limit: number, delta: number): number {
  const r = m.regs;
  const dLo = r[2 * RDI]!, dHi = asz === 8 ? r[2 * RDI + 1]! : 0;
  let n = Math.min(limit, room(dLo, size, delta));
  if (n < 2) return 0;
  const dBase = tlbPage(m, dLo, dHi, m.writeClass);
  if (dBase < 0) return 0;
  const pool = m.pool8;
  let d = dBase + (dLo & PAGE_OFFSET_MASK);
  if (op === insnModule.OP_STOS) {
    const lo = r[2 * RAX]!, hi = r[2 * RAX + 1]!;
    if (size === 1) {
      if (delta > 0) pool.fill(lo, d, d + n);
      else pool.fill(lo, d - n + 1, d + 1);
      return n;
    }
    const v = m.poolView;
    for (let k = 0; k < n; k++, d += delta) {
      if (size === 2) v.setUint16(d, lo, true);
      else {
        v.setInt32(d, lo, true);
        if (size === 8) v.setInt32(d + 4, hi, true);
      }
    }
    return n;
  }
  // MOVS: the source segment's base (only FS/GS have one in 64-bit mode).
  let sLo = r[2 * RSI]!, sHi = asz === 8 ? r[2 * RSI + 1]! : 0;
  if (i.seg === FS || i.seg === GS) {
    const b = i.seg * SEG_STRIDE;
    const lo = (sLo + m.segments[b + BASE_LO]!) | 0;
    sHi = (sHi + m.segments[b + BASE_HI]! + ((lo >>> 0) < (sLo >>> 0) ? 1 : 0)) | 0;
    sLo = lo;
  }
  n = Math.min(n, room(sLo, size, delta));
  if (n < 2) return 0;
  const sBase = tlbPage(m, sLo, sHi, m.readClass);
  if (sBase < 0) return 0;
  let s = sBase + (sLo & PAGE_OFFSET_MASK);
  if (size === 1) {
    for (let k = 0; k < n; k++, d += delta, s += delta) pool[d] = pool[s]!;
    return n;
  }
  const v = m.poolView;
  for (let k = 0; k < n; k++, d += delta, s += delta) {
    if (size === 2) v.setUint16(d, v.getUint16(s, true), true);
    else if (size === 4) v.setInt32(d, v.getInt32(s, true), true);
    else {
      const lo = v.getInt32(s, true), hi = v.getInt32(s + 4, true);
      v.setInt32(d, lo, true);
      v.setInt32(d + 4, hi, true);
    }
  }
  return n;
}

/** Elements of `size` bytes, starting at linear `lo` and going in the direction of `delta`, that
 *  lie wholly in lo's page. */
function room(lo: number, size: number, delta: number): number {
  const off = lo & PAGE_OFFSET_MASK;
  return delta > 0 ? Math.floor((PAGE_BYTES - off) / size) : off + size > PAGE_BYTES ? 0 : Math.floor(off / size) + 1;
}

/** The pool offset of the page of (lo, hi) when the TLB grants `cls` there, else -1 (memory/tlb.ts
 *  describes the probe). */
function tlbPage(m: Machine, lo: number, hi: number, cls: number): number {
  const tag = lo >>> PAGE_SHIFT;
  const t = m.tlb;
  const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
  return t[e + TLB_TAG] === tag && t[e + TLB_TAG_HI] === hi && (t[e + TLB_CLASSES]! & cls) !== 0 ? t[e + TLB_POOL_OFFSET]! : -1;
}

/** The count register as a number, capped (the batch is far shorter anyway). */
function countBelow(r: Int32Array, asz: number): number {
  if (asz === 8 && r[2 * RCX + 1] !== 0) return 0x40000000;
  return Math.min(r[2 * RCX]! >>> 0, 0x40000000);
}

/** Adds `delta` to register n at the address size (a 32-bit write zero-extends). */
function advance(r: Int32Array, n: number, asz: number, delta: number): void {
  const lo = r[2 * n]!;
  const nl = (lo + delta) | 0;
  if (asz === 8) {
    const hi = r[2 * n + 1]!;
    r[2 * n + 1] = delta >= 0 ? ((nl >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi) : ((nl >>> 0) > (lo >>> 0) ? (hi - 1) | 0 : hi);
  } else r[2 * n + 1] = 0;
  r[2 * n] = nl;
}

function countIsZero(r: Int32Array, asz: number): boolean {
  return asz === 8 ? (r[2 * RCX]! | r[2 * RCX + 1]!) === 0 : r[2 * RCX] === 0;
}

/** ZF of the CMP the iteration just recorded (the lazy result is kept masked to the size). */
function zeroResult(m: Machine, size: number): boolean {
  return size === 8 ? (m.lazyResultLo | m.lazyResultHi) === 0 : m.lazyResultLo === 0;
}
