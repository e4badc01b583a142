// Event delivery through the IDT in IA-32e mode (reference digest §5 DELIVER, §7 EXC, §8 DF):
// every check first, then the frame writes and the register commit. A fault detected while
// delivering becomes the next event (or #DF by the class table, or shutdown during #DF).
import type { Machine } from "./machine.ts";
import { getFlags, setFlags } from "./flags.ts";
import * as constsModule from "./consts.ts";
import { commitWrite, prepareWrite } from "./memory/linear.ts";
import { translate } from "./memory/translate.ts";
import { noteWrite } from "./memory/pool.ts";
import { markSystemTableFrame, readSystemTable } from "./tables/system-tables.ts";
import { descriptorCached } from "./tables/descriptor-cache.ts";
import * as gateCacheModule from "./tables/gate-cache.ts";
import { gateKey, lookupGate, storeGate } from "./tables/gate-cache.ts";
import { loadHiddenPart, readDescriptor } from "./tables/descriptors.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AC, BASE_HI, BASE_LO, C_SW, C_SWA, C_UW, CS, DF_VEC, EV_FAULT, EV_NMI, EV_SOFT, GP, IF, LIMIT, NP, NT, RF,
  RIP_HI, RIP_LO, RSP, SEG_STRIDE, SEL, SS, SS_VEC, TF, TR, TS, VEC_MEMLIMIT, VM, ATTR, A_UNUSABLE, C_SR,
  PAGE_BYTES, PAGE_OFFSET_MASK, PAGE_SHIFT, F_PT,
} = constsModule;
const {
  G_CS, G_CS_HI, G_CS_LO, G_NEW_CPL, G_RSP_HI, G_RSP_LO, G_STACK_FROM_TSS, G_TARGET_HI, G_TARGET_LO, G_TYPE,
} = gateCacheModule;

/** Results of deliver(). */
export const DELIVERED = 0, SHUTDOWN = 1, MEMLIMIT = 2;

const BENIGN = 0, CONTRIBUTORY = 1, PAGE_FAULT = 2;

/** DF-01 classes; interrupts and software interrupts are benign first events. */
function classOf(vector: number, source: number): number {
  if (source !== EV_FAULT) return BENIGN;
  if (vector === 0 || (vector >= 10 && vector <= 13)) return CONTRIBUTORY;
  if (vector === 14) return PAGE_FAULT;
  return BENIGN;
}

/** EXC-02: vectors that push an error code when raised as that exception. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}

/** Pool offsets of the frame slots being pushed (at most 6). */
const frameOff = new Int32Array(6);

/**
 * Delivers an event. `source` is EV_*; `err` is the error code or -1; (retLo, retHi) is the RIP to
 * push; (restartLo, restartHi) the RIP pushed for an exception raised while delivering (the
 * instruction that started it, or the boundary RIP). Sets m.deliveredVector/lastErr/lastSource to the
 * event finally delivered.
 */
export function deliver(m: Machine, vector: number, source: number, err: number, retLo: number, retHi: number,
  restartLo: number, restartHi: number): number {
  let isDF = false;
  for (;;) {
    m.faultVector = -1;
    if (tryDeliver(m, vector, source, err, retLo, retHi)) {
      m.deliveredVector = vector;
      m.deliveredErrorCode = err;
      m.deliveredSource = source;
      return DELIVERED;
    }
    if (m.faultVector === VEC_MEMLIMIT) return MEMLIMIT;
    if (isDF) {
      // DF-05: any exception while delivering #DF is a triple fault.
      m.shutdown = true;
      m.halted = false;
      return SHUTDOWN;
    }
    const second = m.faultVector;
    const secondErr = m.faultErrorCode;
    const c1 = classOf(vector, source);
    const c2 = classOf(second, EV_FAULT);
    if ((c1 === CONTRIBUTORY && c2 === CONTRIBUTORY) || (c1 === PAGE_FAULT && c2 !== BENIGN)) {
      vector = DF_VEC;
      err = 0;
      isDF = true;
    } else {
      vector = second;
      err = hasErrorCode(second) ? secondErr : -1;
    }
    source = EV_FAULT;
    retLo = restartLo;
    retHi = restartHi;
  }
}

/**
 * INT n / INT3 delivered from compiled code (compile/block-end.ts): one attempt of deliver() for a software
 * interrupt. True when delivered; false when the attempt raised an exception (machine unchanged
 * but A/D bits, m.faultVector set): the caller leaves the instruction to the engine, whose deliver() makes
 * the same attempt again (finding the same state) and handles the nested exception.
 */
export function deliverSoft(m: Machine, vector: number, retLo: number, retHi: number): boolean {
  m.faultVector = -1;
  if (!tryDeliver(m, vector, EV_SOFT, -1, retLo, retHi)) return false;
  m.deliveredVector = vector;
  m.deliveredErrorCode = -1;
  m.deliveredSource = EV_SOFT;
  return true;
}

/** One delivery attempt (DELIVER-01..21). On failure m.faultVector/m.faultErrorCode hold the new exception and
 *  nothing but A/D bits has changed. */
function tryDeliver(m: Machine, v: number, source: number, err: number, retLo: number, retHi: number): boolean {
  const ext = source === EV_SOFT ? 0 : 1;
  const cpl = m.cpl;
  const r = m.regs;
  // The gate cache (tables/gate-cache.ts): DELIVER-01..14 as last evaluated for this vector at
  // this CPL and event class, while no table, TLB or descriptor-register change happened.
  const key = gateKey(cpl, source === EV_SOFT);
  const ge = lookupGate(m, v, key);
  let sel: number, dlo: number, dhi: number, daLo = 0, daHi = 0, gType: number, newCpl: number;
  let tgtLo: number, tgtHi: number, rspLo: number, rspHi: number;
  if (ge >= 0) {
    const gc = m.gateCache;
    tgtLo = gc[ge + G_TARGET_LO]!;
    tgtHi = gc[ge + G_TARGET_HI]!;
    sel = gc[ge + G_CS]!;
    dlo = gc[ge + G_CS_LO]!;
    dhi = gc[ge + G_CS_HI]!;
    gType = gc[ge + G_TYPE]!;
    newCpl = gc[ge + G_NEW_CPL]!;
    if (gc[ge + G_STACK_FROM_TSS] === 1) {
      rspLo = gc[ge + G_RSP_LO]!;
      rspHi = gc[ge + G_RSP_HI]!;
    } else {
      rspLo = r[2 * RSP]!;
      rspHi = r[2 * RSP + 1]!;
      if (rspHi >> 15 !== rspHi >> 31) {
        m.raise(SS_VEC, ext);
        return false;
      }
    }
  } else {
    const idtEc = (v << 3) | 2 | ext;
    // DELIVER-01
    if (v * 16 + 15 > m.idtrLimit) {
      m.raise(GP, idtEc);
      return false;
    }
    // DELIVER-02: the 16-byte gate (implicit supervisor reads).
    const gLo = (m.idtrLo + v * 16) | 0;
    const gHi = (gLo >>> 0) < (m.idtrLo >>> 0) ? (m.idtrHi + 1) | 0 : m.idtrHi;
    const gEndHi = (gLo >>> 0) + 15 > 0xffffffff ? (gHi + 1) | 0 : gHi;
    if (gHi >> 15 !== gHi >> 31 || gEndHi >> 15 !== gEndHi >> 31) {
      m.raise(GP, idtEc);
      return false;
    }
    const g0 = readSystemTable(m, gLo, gHi, 8);
    if (m.faultVector >= 0) return false;
    const g1 = m.valueHi;
    const g8Lo = (gLo + 8) | 0;
    const g2 = readSystemTable(m, g8Lo, (g8Lo >>> 0) < (gLo >>> 0) ? (gHi + 1) | 0 : gHi, 8);
    if (m.faultVector >= 0) return false;
    // DELIVER-03
    gType = (g1 >>> 8) & 15;
    if (((g1 >>> 12) & 1) !== 0 || (gType !== 14 && gType !== 15)) {
      m.raise(GP, idtEc);
      return false;
    }
    // DELIVER-04: software interrupts only.
    if (source === EV_SOFT && ((g1 >>> 13) & 3) < cpl) {
      m.raise(GP, (v << 3) | 2);
      return false;
    }
    // DELIVER-05
    if (((g1 >>> 15) & 1) === 0) {
      m.raise(NP, idtEc);
      return false;
    }
    // DELIVER-06..10: the target code segment.
    sel = g0 >>> 16;
    const selEc = (sel & 0xfffc) | ext;
    if ((sel & 0xfffc) === 0) {
      m.raise(GP, ext);
      return false;
    }
    if (!readDescriptor(m, sel, ext)) return false;
    dlo = m.descriptorLo;
    dhi = m.descriptorHi;
    daLo = m.descriptorAddrLo;
    daHi = m.descriptorAddrHi;
    const dType = (dhi >>> 8) & 15;
    const dDpl = (dhi >>> 13) & 3;
    if (((dhi >>> 12) & 1) === 0 || (dType & 8) === 0 || dDpl > cpl) {
      m.raise(GP, selEc);
      return false;
    }
    if (((dhi >>> 15) & 1) === 0) {
      m.raise(NP, selEc);
      return false;
    }
    if (((dhi >>> 21) & 1) === 0 || ((dhi >>> 22) & 1) !== 0) {
      m.raise(GP, selEc);
      return false;
    }
    // DELIVER-11
    const conforming = (dType & 4) !== 0;
    newCpl = !conforming && dDpl < cpl ? dDpl : cpl;
    // DELIVER-12: the new RSP.
    const ist = g1 & 7;
    const fromTss = ist !== 0 || newCpl !== cpl;
    let tLo = 0, tHi = 0;
    if (fromTss) {
      const off = ist !== 0 ? 36 + 8 * (ist - 1) : 4 + 8 * newCpl;
      const tb = TR * SEG_STRIDE;
      if (off + 7 > m.segments[tb + LIMIT]! >>> 0 || (m.segments[tb + ATTR]! & A_UNUSABLE) !== 0) {
        m.raise(TS, (m.segments[tb + SEL]! & 0xfffc) | ext);
        return false;
      }
      tLo = (m.segments[tb + BASE_LO]! + off) | 0;
      tHi = (tLo >>> 0) < (m.segments[tb + BASE_LO]! >>> 0) ? (m.segments[tb + BASE_HI]! + 1) | 0 : m.segments[tb + BASE_HI]!;
      rspLo = readSystemTable(m, tLo, tHi, 8);
      if (m.faultVector >= 0) return false;
      rspHi = m.valueHi;
    } else {
      rspLo = r[2 * RSP]!;
      rspHi = r[2 * RSP + 1]!;
    }
    // DELIVER-13, 14
    if (rspHi >> 15 !== rspHi >> 31) {
      m.raise(SS_VEC, ext);
      return false;
    }
    tgtLo = (g1 & 0xffff0000) | (g0 & 0xffff);
    tgtHi = g2;
    if (tgtHi >> 15 !== tgtHi >> 31) {
      m.raise(GP, ext);
      return false;
    }
    // Fill the cache when every table entry lies in one allocated frame and the code
    // descriptor needs no accessed-bit write.
    if ((dhi & 0x100) !== 0 && (gLo & PAGE_OFFSET_MASK) <= PAGE_BYTES - 16 &&
      (!fromTss || (tLo & PAGE_OFFSET_MASK) <= PAGE_BYTES - 8) &&
      descriptorCached(m, sel)) {
      const gBase = translate(m, gLo, gHi, C_SR);
      const tBase = fromTss ? translate(m, tLo, tHi, C_SR) : 1;
      if (gBase > 0 && tBase > 0) {
        markSystemTableFrame(m, gBase >> PAGE_SHIFT);
        if (fromTss) markSystemTableFrame(m, tBase >> PAGE_SHIFT);
        storeGate(m, v, key, tgtLo, tgtHi, sel, dlo, dhi, gType, newCpl, fromTss, rspLo, rspHi);
      }
    }
  }
  // DELIVER-15, 16: translate every frame slot (first push first) before writing any.
  const alignedLo = rspLo & ~15;
  const withErr = err >= 0;
  const slots = withErr ? 6 : 5;
  const cls = newCpl === 3 ? C_UW : (m.flags & AC) !== 0 ? C_SWA : C_SW;
  /** Pool offset of the first slot when the frame lies in one page (else frameOff holds them). */
  let top = -1;
  // A frame slot in a frame that holds paging entries: a push may change the translation of the
  // slots below it (every access walks: docs/model-choices.md "TLB"), so push in order, walking
  // each slot after the pushes above it (pushInOrder). Otherwise no push can change another
  // slot's walk (every frame those walks read is F_PT), and the translations just made stand.
  let inOrder = false;
  const topLo = (alignedLo - 8) | 0;
  const topHi = (topLo >>> 0) > (alignedLo >>> 0) ? (rspHi - 1) | 0 : rspHi;
  if ((topLo & PAGE_OFFSET_MASK) >= 8 * (slots - 1) && topHi >> 15 === topHi >> 31) {
    // The whole frame lies in the (canonical) page of its first slot: one translation, the same
    // one translateFrame would make first.
    const base = translate(m, topLo, topHi, cls);
    if (base < 0) return false;
    top = base + (topLo & PAGE_OFFSET_MASK);
    if ((m.slotFlags[base >> PAGE_SHIFT]! & F_PT) !== 0) inOrder = true;
  } else {
    if (!translateFrame(m, alignedLo, rspHi, slots, cls, ext)) return false;
    inOrder = ((m.slotFlags[frameOff[0]! >> PAGE_SHIFT]! | m.slotFlags[frameOff[slots - 1]! >> PAGE_SHIFT]!) & F_PT) !== 0;
  }
  const flagsNow = getFlags(m);
  const pushedFlags = source === EV_FAULT ? flagsNow | RF : flagsNow;
  if (inOrder && !pushInOrder(m, alignedLo, rspHi, slots, cls, pushedFlags, retLo, retHi, err)) return false;
  // The accessed bit of the code descriptor (implicit supervisor write) must be writable too.
  if ((dhi & 0x100) === 0) {
    const aLo = (daLo + 5) | 0;
    const aHi = (aLo >>> 0) < (daLo >>> 0) ? (daHi + 1) | 0 : daHi;
    if (!prepareWrite(m, aLo, aHi, 1, C_SW)) {
      if (inOrder) undoPushes(m, slots);
      return false;
    }
  }

  // ---- commit (DELIVER-16..21) ----
  const sg = m.segments;
  const mem = m.pool32;
  if (inOrder) {
    // Pushed already.
  } else if (top >= 0) {
    // One page: slot k at top - 8k (8-byte aligned).
    const w = top >> 2;
    mem[w] = sg[SS * SEG_STRIDE + SEL]!;
    mem[w + 1] = 0;
    mem[w - 2] = r[2 * RSP]!;
    mem[w - 1] = r[2 * RSP + 1]!;
    mem[w - 4] = pushedFlags & ~VM;
    mem[w - 3] = 0;
    mem[w - 6] = sg[CS * SEG_STRIDE + SEL]!;
    mem[w - 5] = 0;
    mem[w - 8] = retLo;
    mem[w - 7] = retHi;
    if (withErr) {
      mem[w - 10] = err;
      mem[w - 9] = 0;
    }
    noteWrite(m, top >> PAGE_SHIFT);
  } else {
    pushFrame(m, pushedFlags, retLo, retHi, err, slots);
  }
  if ((dhi & 0x100) === 0) commitWrite(m, ((dhi >>> 8) & 0xff) | 1, 0);
  const gt = gType;
  if (newCpl !== cpl) nullSegment(m, SS, newCpl, false);
  const newRspLo = (alignedLo - 8 * slots) | 0;
  r[2 * RSP] = newRspLo;
  r[2 * RSP + 1] = (newRspLo >>> 0) > (alignedLo >>> 0) ? (rspHi - 1) | 0 : rspHi;
  loadHiddenPart(m, CS, (sel & 0xfffc) | newCpl, dlo, dhi | 0x100, 0);
  r[RIP_LO] = tgtLo;
  r[RIP_HI] = tgtHi;
  // The flags as read above (lazy arithmetic flags now materialized).
  let f = flagsNow & ~(TF | NT | RF | VM);
  if (gt === 14) f &= ~IF;
  setFlags(m, f);
  if (source === EV_NMI) m.nmiBlocked = true;
  // A single-step trap held by a MOV SS shadow survives (docs/model-choices.md "Single-step").
  m.halted = false;
  m.shadow = 0;
  m.updateMode();
  return true;
}

/** DELIVER-15/16 for a frame that may cross a page or leave the canonical range: every slot
 *  address canonical first (#SS(EXT)), then the slots translated from the top (the first push
 *  first); slots are 8-byte aligned, so each lies in one page: a page is translated once. Fills
 *  frameOff; false with the fault raised. */
function translateFrame(m: Machine, alignedLo: number, rspHi: number, slots: number, cls: number, ext: number): boolean {
  for (let k = 0; k < slots; k++) {
    const aLo = (alignedLo - 8 * (k + 1)) | 0;
    const aHi = (aLo >>> 0) > (alignedLo >>> 0) ? (rspHi - 1) | 0 : rspHi;
    if (aHi >> 15 !== aHi >> 31) {
      m.raise(SS_VEC, ext);
      return false;
    }
  }
  let pageLo = 1, pageHi = 0, pageBase = 0;
  for (let k = 0; k < slots; k++) {
    const aLo = (alignedLo - 8 * (k + 1)) | 0;
    const aHi = (aLo >>> 0) > (alignedLo >>> 0) ? (rspHi - 1) | 0 : rspHi;
    if ((aLo & ~PAGE_OFFSET_MASK) !== pageLo || aHi !== pageHi) {
      pageBase = translate(m, aLo, aHi, cls);
      if (pageBase < 0) return false;
      pageLo = aLo & ~PAGE_OFFSET_MASK;
      pageHi = aHi;
    }
    frameOff[k] = pageBase + (aLo & PAGE_OFFSET_MASK);
  }
  return true;
}

/** What the in-order pushes overwrote (slot k: pool offset, then the two dwords), for undoPushes. */
const pushedOff = new Int32Array(6);
const pushedOld = new Int32Array(12);
let pushedCount = 0;

/**
 * DELIVER-16 for a frame whose pushes may change the translation of later slots: each slot, from
 * the top, is translated (walked with the memory as the pushes above it left it) and then written.
 * On a fault the slots already written get their old bytes back (A/D bits the walks set stay) and
 * false is returned with the fault raised. Slots are canonical (checked by the caller's
 * translations).
 */
function pushInOrder(m: Machine, alignedLo: number, rspHi: number, slots: number, cls: number, pushedFlags: number,
  retLo: number, retHi: number, err: number): boolean {
  const r = m.regs;
  const sg = m.segments;
  pushedCount = 0;
  for (let k = 0; k < slots; k++) {
    const aLo = (alignedLo - 8 * (k + 1)) | 0;
    const aHi = (aLo >>> 0) > (alignedLo >>> 0) ? (rspHi - 1) | 0 : rspHi;
    const base = translate(m, aLo, aHi, cls);
    if (base < 0) {
      undoPushes(m, k);
      return false;
    }
    let lo: number, hi = 0;
    switch (k) {
      case 0: lo = sg[SS * SEG_STRIDE + SEL]!; break;
      case 1: lo = r[2 * RSP]!; hi = r[2 * RSP + 1]!; break;
      case 2: lo = pushedFlags & ~VM; break;
      case 3: lo = sg[CS * SEG_STRIDE + SEL]!; break;
      case 4: lo = retLo; hi = retHi; break;
      default: lo = err;
    }
    const o = base + (aLo & PAGE_OFFSET_MASK);
    const mem = m.pool32;
    pushedOff[k] = o;
    pushedOld[2 * k] = mem[o >> 2]!;
    pushedOld[2 * k + 1] = mem[(o >> 2) + 1]!;
    pushedCount = k + 1;
    mem[o >> 2] = lo;
    mem[(o >> 2) + 1] = hi;
    noteWrite(m, o >> PAGE_SHIFT);
  }
  return true;
}

/** Puts back what the first `count` in-order pushes overwrote, last first. */
function undoPushes(m: Machine, count: number): void {
  for (let k = Math.min(count, pushedCount) - 1; k >= 0; k--) {
    const o = pushedOff[k]!;
    m.pool32[o >> 2] = pushedOld[2 * k]!;
    m.pool32[(o >> 2) + 1] = pushedOld[2 * k + 1]!;
    noteWrite(m, o >> PAGE_SHIFT);
  }
  pushedCount = 0;
}

/** The frame writes of DELIVER-16 at the translated slots in frameOff (translateFrame). */
function pushFrame(m: Machine, pushedFlags: number, retLo: number, retHi: number, err: number, slots: number): void {
  const sg = m.segments;
  const r = m.regs;
  const mem = m.pool32;
  const withErr = err >= 0;
  let o = frameOff[0]! >> 2;
  mem[o] = sg[SS * SEG_STRIDE + SEL]!;
  mem[o + 1] = 0;
  o = frameOff[1]! >> 2;
  mem[o] = r[2 * RSP]!;
  mem[o + 1] = r[2 * RSP + 1]!;
  o = frameOff[2]! >> 2;
  mem[o] = pushedFlags & ~VM;
  mem[o + 1] = 0;
  o = frameOff[3]! >> 2;
  mem[o] = sg[CS * SEG_STRIDE + SEL]!;
  mem[o + 1] = 0;
  o = frameOff[4]! >> 2;
  mem[o] = retLo;
  mem[o + 1] = retHi;
  if (withErr) {
    o = frameOff[5]! >> 2;
    mem[o] = err;
    mem[o + 1] = 0;
  }
  noteWrite(m, frameOff[0]! >> PAGE_SHIFT);
  noteWrite(m, frameOff[slots - 1]! >> PAGE_SHIFT);
}

/**
 * A segment register holding a NULL selector after a hardware load (DELIVER-17 SS, IRET's NULL SS,
 * IRETQ-16): selector as given, limit 0, attributes 0, unusable. The base is cleared for a NULL
 * SS (delivery, IRET, far RET: as Bochs and QEMU load it) and kept when IRETQ-16 nulls a data
 * segment register on a return to an outer level (64-bit FS/GS bases survive).
 */
export function nullSegment(m: Machine, s: number, selector: number, keepBase: boolean): void {
  const b = s * SEG_STRIDE;
  m.segments[b + SEL] = selector;
  if (!keepBase) {
    m.segments[b + BASE_LO] = 0;
    m.segments[b + BASE_HI] = 0;
  }
  m.segments[b + LIMIT] = 0;
  m.segments[b + ATTR] = A_UNUSABLE;
}
