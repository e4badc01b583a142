// The privileged and UMIP-guarded system instructions of issue 9 that are not transitions: SLDT,
// STR, SMSW (UMIP), LLDT, LMSW, VERR/VERW, MOV to/from DR, RDTSC, RDTSCP, RDPMC, XGETBV, XSETBV,
// RDFSBASE…WRGSBASE, INVPCID. Written from their SDM pages and docs/model-choices.md (rows
// "Privileged instructions at CPL > 0" and "at CPL 0", "SLDT, STR, SMSW", "LLDT", "LMSW",
// "VERR, VERW", "MOV DR", "RDTSC, RDTSCP, RDPMC", "XGETBV, XSETBV", "FSGSBASE", "PCID, INVPCID").
// Fault order: the #UD conditions (decode.ts and the CR4 ones here), then the privilege check
// (CPL, or UMIP / TSD / PCE), then the operand; every check before any change (GLOBAL-05).
//
// Not a cache. LLDT starts a new system-table generation (the descriptor cache holds LDT entries).
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import { getFlags, setFlags } from "./flags.ts";
import { effectiveAddress, eaHi, eaLo, getReg, readRM, setReg, writeRM } from "./exec.ts";
import { toLinear } from "./memory/segmented.ts";
import { readLinear } from "./memory/linear.ts";
import { invalidateSystemTables, readSystemTable } from "./tables/system-tables.ts";
import { canonical, gp, ud } from "./system.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  A_UNUSABLE, ATTR, BASE_HI, BASE_LO, CR0_PE, GP, LDTR, LIMIT, NP, RAX, RCX, RDX, SEG_STRIDE, SEL, ST_END,
  ST_FAULT, ST_OK, ST_UNSUP, TR, UD, ZF, DR0_LO, DR6_LO, DR7_LO, A_L, A_DB,
} = constsModule;

/** CR4 bits read here. */
const CR4_DE = 1 << 3, CR4_PCE = 1 << 8, CR4_UMIP = 1 << 11, CR4_FSGSBASE = 1 << 16, CR4_PCIDE = 1 << 17,
  CR4_OSXSAVE = 1 << 18, CR4_TSD = 1 << 2;


/** UMIP: SGDT, SIDT, SLDT, STR, SMSW at CPL > 0 with CR4.UMIP = 1 → #GP(0) (SDM Vol. 3A §2.5). */
export function umipBlocks(m: Machine): boolean {
  return m.cpl !== 0 && (m.cr4 & CR4_UMIP) !== 0;
}

/** Stores a system value to the r/m operand: memory 2 bytes (bits 15:0); a register at the operand
 *  size (16: bits 15:0 merged; 32 and 64: bits 31:0 zero-extended — CR0 has no bits above 31). */
function storeSystemValue(m: Machine, i: Insn, lo: number): number {
  if (i.mod === 3) {
    const size = i.operandSize;
    setReg(m, i.rm, size, size === 2 ? lo & 0xffff : lo, 0);
    return ST_OK;
  }
  return writeRM(m, i, 2, lo & 0xffff, 0) ? ST_OK : ST_FAULT;
}

// ============================================================================================
// SLDT, STR, SMSW (UMIP-guarded stores), LMSW
// ============================================================================================

/** SLDT (sub 0) / STR (sub 1): the LDTR / TR selector. */
export function execSldtStr(m: Machine, i: Insn): number {
  if (umipBlocks(m)) return gp(m, 0);
  return storeSystemValue(m, i, m.selector(i.sub === 0 ? LDTR : TR));
}

/** SMSW: CR0 bits 15:0 (16-bit operand, memory), CR0[31:0] zero-extended (32/64-bit register). */
export function execSmsw(m: Machine, i: Insn): number {
  if (umipBlocks(m)) return gp(m, 0);
  return storeSystemValue(m, i, m.cr0);
}

/** LMSW: CR0[3:0] ← source[3:0], PE never cleared; nothing else changes, no value faults. */
export function execLmsw(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  const v = readRM(m, i, 2);
  if (m.faultVector >= 0) return ST_FAULT;
  m.cr0 = (m.cr0 & ~0xf) | (v & 0xf) | (m.cr0 & CR0_PE);
  return ST_END;
}

// ============================================================================================
// LLDT
// ============================================================================================

export function execLldt(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  const sel = readRM(m, i, 2) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  const sg = m.segments;
  const b = LDTR * SEG_STRIDE;
  if ((sel & 0xfffc) === 0) {
    // NULL: LDTR unusable, nothing read.
    sg[b + SEL] = sel;
    sg[b + BASE_LO] = 0;
    sg[b + BASE_HI] = 0;
    sg[b + LIMIT] = 0;
    sg[b + ATTR] = A_UNUSABLE;
    invalidateSystemTables(m);
    return ST_END;
  }
  const ec = sel & 0xfffc;
  if ((sel & 4) !== 0) return gp(m, ec);
  const index = sel & 0xfff8;
  if (index + 15 > m.gdtrLimit) return gp(m, ec);
  // The 16-byte system descriptor (implicit reads).
  const aLo = (m.gdtrLo + index) | 0;
  const aHi = (aLo >>> 0) < (m.gdtrLo >>> 0) ? (m.gdtrHi + 1) | 0 : m.gdtrHi;
  const dlo = readSystemTable(m, aLo, aHi, 8);
  if (m.faultVector >= 0) return ST_FAULT;
  const dhi = m.valueHi;
  const uLo = (aLo + 8) | 0;
  const uHi = (uLo >>> 0) < (aLo >>> 0) ? (aHi + 1) | 0 : aHi;
  const baseHi = readSystemTable(m, uLo, uHi, 8);
  if (m.faultVector >= 0) return ST_FAULT;
  const upper = m.valueHi;
  if (((dhi >>> 12) & 1) !== 0 || ((dhi >>> 8) & 15) !== 2) return gp(m, ec);
  if (((upper >>> 8) & 0x1f) !== 0) return gp(m, ec);
  if (((dhi >>> 15) & 1) === 0) {
    m.raise(NP, ec);
    return ST_FAULT;
  }
  const g = (dhi >>> 23) & 1;
  const rawLimit = (dlo & 0xffff) | (dhi & 0x000f0000);
  sg[b + SEL] = sel;
  sg[b + BASE_LO] = (dlo >>> 16) | ((dhi & 0xff) << 16) | (dhi & 0xff000000);
  sg[b + BASE_HI] = baseHi;
  sg[b + LIMIT] = g === 1 ? (rawLimit << 12) | 0xfff : rawLimit;
  // The attributes as the descriptor holds them (SDM LLDT: "LDTR(Attributes) := descriptor"; as
  // LTR loads TR): type, S, DPL, P, AVL, L, D/B, G.
  sg[b + ATTR] = (dhi >>> 8) & 0xf0ff;
  invalidateSystemTables(m);
  return ST_END;
}

// ============================================================================================
// VERR, VERW
// ============================================================================================

/** VERR (sub 0) / VERW (sub 1): ZF ← whether the segment is readable / writable at CPL and RPL. */
export function execVerrVerw(m: Machine, i: Insn): number {
  const sel = readRM(m, i, 2) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  const ok = verifiable(m, sel, i.sub === 1);
  if (m.faultVector >= 0) return ST_FAULT;
  const f = getFlags(m);
  setFlags(m, ok ? f | ZF : f & ~ZF);
  return ST_OK;
}

/** The VERR/VERW decision; a fault of the descriptor read is left in m.faultVector. */
function verifiable(m: Machine, sel: number, write: boolean): boolean {
  if ((sel & 0xfffc) === 0) return false;
  let baseLo: number, baseHi: number, limit: number;
  if ((sel & 4) !== 0) {
    const b = LDTR * SEG_STRIDE;
    // No LDT: LDTR unusable or holding a NULL selector (as for every TI = 1 reference).
    if ((m.segments[b + ATTR]! & A_UNUSABLE) !== 0 || (m.segments[b + SEL]! & 0xfffc) === 0) return false;
    baseLo = m.segments[b + BASE_LO]!;
    baseHi = m.segments[b + BASE_HI]!;
    limit = m.segments[b + LIMIT]! >>> 0;
  } else {
    baseLo = m.gdtrLo;
    baseHi = m.gdtrHi;
    limit = m.gdtrLimit;
  }
  const index = sel & 0xfff8;
  if (index + 7 > limit) return false;
  const lo = (baseLo + index) | 0;
  const hi = (lo >>> 0) < (baseLo >>> 0) ? (baseHi + 1) | 0 : baseHi;
  readSystemTable(m, lo, hi, 8);
  if (m.faultVector >= 0) return false;
  const dhi = m.valueHi;
  if (((dhi >>> 12) & 1) === 0) return false;
  const type = (dhi >>> 8) & 15;
  const dpl = (dhi >>> 13) & 3;
  const code = (type & 8) !== 0;
  const conforming = code && (type & 4) !== 0;
  if (!conforming && (dpl < m.cpl || dpl < (sel & 3))) return false;
  return write ? !code && (type & 2) !== 0 : !code || (type & 2) !== 0;
}

// ============================================================================================
// MOV to/from debug registers
// ============================================================================================

/** Machine.debug slot of DRn (DR4/DR5 alias DR6/DR7 when CR4.DE = 0); -1: #UD (DR4/DR5 with DE). */
function debugSlot(m: Machine, n: number): number {
  if (n < 4) return DR0_LO + 2 * n;
  if (n === 4 || n === 5) {
    if ((m.cr4 & CR4_DE) !== 0) return -1;
    return n === 4 ? DR6_LO : DR7_LO;
  }
  return n === 6 ? DR6_LO : DR7_LO;
}

export function execMovFromDr(m: Machine, i: Insn): number {
  const slot = debugSlot(m, i.reg);
  if (slot < 0) return ud(m);
  if (m.cpl !== 0) return gp(m, 0);
  setReg(m, i.rm, i.operandSize, m.debug[slot]!, m.debug[slot + 1]!);
  return ST_OK;
}

export function execMovToDr(m: Machine, i: Insn): number {
  const slot = debugSlot(m, i.reg);
  if (slot < 0) return ud(m);
  if (m.cpl !== 0) return gp(m, 0);
  const lo = getReg(m, i.rm, i.operandSize);
  const hi = i.operandSize === 8 ? m.valueHi : 0;
  const d = m.debug;
  if (slot === DR6_LO || slot === DR7_LO) {
    if (hi !== 0) return gp(m, 0);
    if (slot === DR6_LO) {
      d[slot] = (lo & 0xe00f) | 0xffff0ff0;
    } else {
      if ((lo & 0x20ff) !== 0) {
        m.unsupportedReason = "MOV DR7 arming a breakpoint (L0–L3, G0–G3) or GD: debug exceptions are not modelled";
        return ST_UNSUP;
      }
      d[slot] = (lo & 0xffff23ff) | 0x400;
    }
    d[slot + 1] = 0;
    return ST_OK;
  }
  d[slot] = lo;
  d[slot + 1] = hi;
  return ST_OK;
}

// ============================================================================================
// RDTSC, RDTSCP, RDPMC, XGETBV, XSETBV
// ============================================================================================

/** The time-stamp counter reads 0 and never advances (the model has no time). */
export function execRdtsc(m: Machine, i: Insn, withAux: boolean): number {
  if ((m.cr4 & CR4_TSD) !== 0 && m.cpl !== 0) return gp(m, 0);
  setReg(m, RAX, 8, 0, 0);
  setReg(m, RDX, 8, 0, 0);
  if (withAux) setReg(m, RCX, 8, 0, 0); // IA32_TSC_AUX = 0
  return ST_OK;
}

/** No performance-monitoring counters: after the CR4.PCE check every ECX is invalid → #GP(0). */
export function execRdpmc(m: Machine): number {
  if ((m.cr4 & CR4_PCE) === 0 && m.cpl !== 0) return gp(m, 0);
  return gp(m, 0);
}

/** XCR0 = 1 (x87 only), never changed. */
export function execXgetbv(m: Machine): number {
  if ((m.cr4 & CR4_OSXSAVE) === 0) return ud(m);
  if (m.regs[2 * RCX] !== 0) return gp(m, 0);
  setReg(m, RAX, 4, 1, 0);
  setReg(m, RDX, 4, 0, 0);
  return ST_OK;
}

export function execXsetbv(m: Machine): number {
  if ((m.cr4 & CR4_OSXSAVE) === 0) return ud(m);
  if (m.cpl !== 0) return gp(m, 0);
  m.unsupportedReason = "XSETBV: XCR0 is not part of the modelled state";
  return ST_UNSUP;
}

// ============================================================================================
// RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (64-bit mode only: decode.ts)
// ============================================================================================

/** `i.reg` is FS or GS, `i.rm` the register, `i.operandSize` 4 or 8. */
export function execRdFsGsBase(m: Machine, i: Insn): number {
  if ((m.cr4 & CR4_FSGSBASE) === 0) return ud(m);
  const b = i.reg * SEG_STRIDE;
  setReg(m, i.rm, i.operandSize, m.segments[b + BASE_LO]!, m.segments[b + BASE_HI]!);
  return ST_OK;
}

export function execWrFsGsBase(m: Machine, i: Insn): number {
  if ((m.cr4 & CR4_FSGSBASE) === 0) return ud(m);
  const lo = getReg(m, i.rm, i.operandSize);
  const hi = i.operandSize === 8 ? m.valueHi : 0;
  if (!canonical(hi)) return gp(m, 0);
  const b = i.reg * SEG_STRIDE;
  m.segments[b + BASE_LO] = lo;
  m.segments[b + BASE_HI] = hi;
  return ST_OK;
}

// ============================================================================================
// INVPCID (no TLB is observable: the checks are the semantics)
// ============================================================================================

export function execInvpcid(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  // The 16-byte descriptor: one supervisor data read (segment / canonical checks, then paging).
  effectiveAddress(m, i);
  if (!toLinear(m, i.seg, eaLo, eaHi, 16, false)) return ST_FAULT;
  const lLo = m.linearLo, lHi = m.linearHi;
  const pcidLo = readLinear(m, lLo, lHi, 8, m.readClass);
  if (m.faultVector >= 0) return ST_FAULT;
  const pcidHi = m.valueHi;
  const nLo = (lLo + 8) | 0;
  const nHi = m.mode64 ? ((nLo >>> 0) < (lLo >>> 0) ? (lHi + 1) | 0 : lHi) : 0;
  readLinear(m, nLo, nHi, 8, m.readClass);
  if (m.faultVector >= 0) return ST_FAULT;
  const addrHi = m.valueHi;
  // The type register: 64 bits in 64-bit mode, 32 in compatibility mode.
  const tLo = getReg(m, i.reg, i.operandSize);
  const tHi = i.operandSize === 8 ? m.valueHi : 0;
  if (tHi !== 0 || tLo >>> 0 > 3) return gp(m, 0);
  if (pcidHi !== 0 || (pcidLo & ~0xfff) !== 0) return gp(m, 0);
  if (tLo <= 1 && (pcidLo & 0xfff) !== 0 && (m.cr4 & CR4_PCIDE) === 0) return gp(m, 0);
  if (tLo === 0 && !canonical(addrHi)) return gp(m, 0);
  return ST_OK;
}

