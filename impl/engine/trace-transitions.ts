// SYSCALL and SYSRETQ written out in a trace's generated code (engine/trace.ts), so that a
// syscall round trip stays in one optimised function: the registers they read and write are the
// trace's locals, the saved RFLAGS is computed from the flag producer's locals, and the mode they
// set (CPL, access classes, CS, SS) stays in the trace's locals until something outside the
// generated code could look (modeSync below).
//
// The same checks and updates as system.ts execSyscall/execSysret for 64-bit mode (the trace runs
// only 64-bit blocks), with the same rule IDs. Every value they depend on — EFER.SCE, STAR, LSTAR,
// FMASK, CR0.AM — is read from the live Machine each time, never copied into the source, so an MSR
// or control-register write can never leave a trace stale; the CPL is the trace's local (equal to
// the Machine's, or to what modeSync will store). The one choice fixed in the
// source is the vendor profile's SYSRET SS handling, which a Machine keeps for life (load() builds
// a new Machine, and traces die with it). When a check fails, nothing has been changed and the
// trace runs the instruction's handler instead (the fault path).
import * as constsModule from "../consts.ts";
import { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } from "../memory/tlb.ts";
import {
  G_CS, G_CS_HI, G_CS_LO, G_GENERATION, G_KEY, G_NEW_CPL, G_RSP_HI, G_RSP_LO, G_STACK_FROM_TSS, G_TARGET_HI, G_TARGET_LO, G_TYPE,
} from "../tables/gate-cache.ts";
import {
  IRET_ENTRIES, IRET_STRIDE, R_CPL, R_CS, R_CS_ATTR, R_CS_BASE, R_CS_LIMIT, R_GENERATION, R_SS, R_SS_ATTR, R_SS_BASE, R_SS_LIMIT,
} from "../tables/iret-cache.ts";
import { flat as loadFlat, FLAT_CODE64_DPL0, FLAT_CODE64_DPL3, FLAT_DATA_DPL0, FLAT_DATA_DPL3 } from "../system.ts";
import type { Machine } from "../machine.ts";

const {
  AC, AF, A_DPL_SHIFT, A_L, A_S, A_UNUSABLE, ATTR, BASE_HI, BASE_LO, CF, CR0_AM, CS, C_SR, C_SRA, C_SW, C_SWA, C_SX, C_UR, C_UW, C_UX, DF, EFER_SCE, DS, EFER_LMA, ES, EV_FAULT, EV_SOFT, FS, GS, FMASK_LO,
  ID, IF, IOPL, KERNEL_GS_BASE_HI, KERNEL_GS_BASE_LO, LIMIT, LSTAR_HI, LSTAR_LO, NT, OF, PAGE_BYTES, PAGE_OFFSET_MASK, PAGE_SHIFT, PF, RF, RIP_HI, RIP_LO, SEG_STRIDE, SEL,
  SF, SHADOW_NONE, SS, STAR_HI, SYSRET_RFLAGS, TF, VIF, VIP, VM, ZF,
} = constsModule;

/** Statements loading a flat segment (base 0, limit 4 GiB) into segments `sg` at `seg`. */
function flat(seg: number, selector: string, attr: number): string {
  const b = seg * SEG_STRIDE;
  return `sg[${b + SEL}] = ${selector}; sg[${b + BASE_LO}] = 0; sg[${b + BASE_HI}] = 0; sg[${b + LIMIT}] = -1; sg[${b + ATTR}] = ${attr};`;
}

// ---- The mode in the trace's locals ----
// SYSCALL and SYSRETQ change the CPL, the access classes (Machine.updateMode) and CS/SS on every
// round trip; a trace keeps them in locals (MODE_LOCALS) and stores them into the Machine only where
// something outside the generated code could look: before every call into the Machine (handlers,
// slow-path accesses, deliveries, getFlags excepted: it reads only the lazy flags) and at every exit
// (modeSync, through BlockWriter's hooks), so the Machine is never seen stale. The generated code
// itself reads the locals (the CPL, the fast access classes, the fetch class), which equal what the
// Machine holds or will hold once synced; after every call that may change the mode the locals
// are loaded again from the Machine (MODE_RELOAD). SWAPGS, the round trip's other Machine writes,
// works on locals the same way. The locals:
//   modeCpl, modeRead, modeWrite, modeFetch   the CPL and Machine.readFastClass/writeFastClass/fetchClass
//   modeDirty                                 the Machine lacks the last SYSCALL/SYSRETQ's mode and CS (and SS)
//   modeAc, modeCs, modeSs                    what modeSync stores then: RFLAGS.AC at it, the selectors
//   gsLo, gsHi, kgLo, kgHi, gsDirty           GS's base and KERNEL_GS_BASE; the Machine lacks them

/** The trace's mode locals, loaded from the Machine at entry (a statement for the prologue). */
export const MODE_LOCALS = "let modeCpl = m.cpl, modeRead = m.readFastClass, modeWrite = m.writeFastClass, modeFetch = m.fetchClass," +
  " modeDirty = false, modeAc = false, modeCs = 0, modeSs = 0;" +
  ` let gsLo = m.segments[${GS * SEG_STRIDE + BASE_LO}], gsHi = m.segments[${GS * SEG_STRIDE + BASE_HI}],` +
  ` kgLo = m.msr[${KERNEL_GS_BASE_LO}], kgHi = m.msr[${KERNEL_GS_BASE_HI}], gsDirty = false;`;

/** GS's base as the generated code reads it (BlockWriter.gsBase), and SWAPGS (BlockWriter.swapgs;
 *  SWAPGS-02: GS.base ⇄ IA32_KERNEL_GS_BASE). */
export const GS_BASE: readonly [string, string] = ["gsLo", "gsHi"];
export const SWAPGS_LOCALS = "const a = gsLo, c = gsHi; gsLo = kgLo; gsHi = kgHi; kgLo = a; kgHi = c; gsDirty = true;";

/** After a call that may have changed the mode (the Machine is current: modeSync ran before it). */
export const MODE_RELOAD = "modeCpl = m.cpl; modeRead = m.readFastClass; modeWrite = m.writeFastClass; modeFetch = m.fetchClass;";

/** After an interpreter call inside a block (WRGSBASE is one), also GS's base and KERNEL_GS_BASE.
 *  (Deliveries, IRETQ and the handlers a trace ends a block with leave both as they were.) */
export const MODE_GS_RELOAD = `${MODE_RELOAD} gsLo = m.segments[${GS * SEG_STRIDE + BASE_LO}]; gsHi = m.segments[${GS * SEG_STRIDE + BASE_HI}];` +
  ` kgLo = m.msr[${KERNEL_GS_BASE_LO}]; kgHi = m.msr[${KERNEL_GS_BASE_HI}];`;

/**
 * Stores what the last SYSCALL/SYSRETQ left in a trace's mode locals into the Machine: the CPL,
 * 64-bit mode and the access classes (Machine.userAccess/supervisorAccess by RFLAGS.AC `ac` as it
 * was then — CR0.AM cannot have changed since: MOV CR0 is a handler call, synced before), CS and —
 * unless the profile keeps SS's hidden part at SYSRET (`keepSs`: then SS is stored at once, never
 * left to this) — SS, flat, with the attributes of the CPL's segments. The trace calls it as `MS`.
 */
export function storeMode(m: Machine, cpl: number, ac: boolean, cs: number, ss: number, keepSs: boolean): void {
  const sg = m.segments;
  m.cpl = cpl;
  m.mode64 = true;
  if (cpl === 3) m.userAccess(ac);
  else m.supervisorAccess(ac);
  loadFlat(sg, CS * SEG_STRIDE, cs, cpl === 3 ? FLAT_CODE64_DPL3 : FLAT_CODE64_DPL0);
  if (!keepSs) loadFlat(sg, SS * SEG_STRIDE, ss, cpl === 3 ? FLAT_DATA_DPL3 : FLAT_DATA_DPL0);
}

/** Stores GS's base and KERNEL_GS_BASE as a trace's SWAPGS left them (the trace calls it as `MG`). */
export function storeGs(m: Machine, gsLo: number, gsHi: number, kgLo: number, kgHi: number): void {
  const b = GS * SEG_STRIDE;
  m.segments[b + BASE_LO] = gsLo;
  m.segments[b + BASE_HI] = gsHi;
  m.msr[KERNEL_GS_BASE_LO] = kgLo;
  m.msr[KERNEL_GS_BASE_HI] = kgHi;
}

/** The statements storing the mode locals and the GS locals into the Machine where it lacks them
 *  (storeMode as `MS`, storeGs as `MG`). */
export function modeSync(keepSs: boolean): string {
  return `if (modeDirty) { MS(m, modeCpl, modeAc, modeCs, modeSs, ${keepSs}); modeDirty = false; }` +
    ` if (gsDirty) { MG(m, gsLo, gsHi, kgLo, kgHi); gsDirty = false; }`;
}

/** SYSCALL's checks in 64-bit mode (SYSCALL-01: EFER.SCE = 1), as a condition. */
export function syscallChecks(): string {
  return `(m.efer & ${EFER_SCE}) !== 0`;
}

/**
 * SYSCALL's updates (SYSCALL-03..08) as statements: RCX and R11 are the locals `rcx`/`r11`
 * ([lo, hi]), `flags` the expression of RFLAGS as it stands (RF is 0: compiled code runs with it
 * cleared), (nextLo, nextHi) the next instruction. Leaves the new RFLAGS in `nf` and the target RIP
 * in `tl`/`th`; the mode (CPL 0, 64-bit — EFER.LMA is set, CS.L = 1 —, the access classes by
 * RFLAGS.AC: Machine.supervisorAccess) and CS/SS in the mode locals, for modeSync (SS stored at once
 * with `keepSs`). The TF trap after it (SYSCALL-10) is the caller's: its guard leaves the trace
 * when TF = 1.
 */
export function syscallUpdates(rcx: readonly [string, string], r11: readonly [string, string], flags: string,
  nextLo: string, nextHi: string, keepSs: boolean): string {
  return `const fl = ${flags}; const ms = m.msr;` +
    // SYSCALL-03, 04
    ` ${rcx[0]} = ${nextLo}; ${rcx[1]} = ${nextHi}; ${r11[0]} = fl; ${r11[1]} = 0;` +
    // SYSCALL-05 (bits 63:32 of RFLAGS are 0: FMASK's high half masks nothing)
    ` const nf = (fl & ~ms[${FMASK_LO}] & ${~RF}) | 2; m.flags = nf; m.lazyOp = 0;` +
    // SYSCALL-06, 07
    ` const cs = ms[${STAR_HI}] & 65535; modeCs = cs & 65532;` +
    (keepSs ? ` { const sg = m.segments; ${flat(SS, "(cs + 8) & 65535", FLAT_DATA_DPL0)} }` : " modeSs = (cs + 8) & 65535;") +
    // SYSCALL-08
    ` const tl = ms[${LSTAR_LO}], th = ms[${LSTAR_HI}];` +
    // The access classes by RFLAGS.AC (SMAP's override of explicit accesses: supervisorAccess).
    ` modeCpl = 0; modeAc = (nf & ${AC}) !== 0; modeRead = modeAc ? ${C_SRA} : ${C_SR}; modeWrite = modeAc ? ${C_SWA} : ${C_SW};` +
    ` modeFetch = ${C_SX}; modeDirty = true;`;
}

/** SYSRETQ's checks from 64-bit mode (SYSRET-01 EFER.SCE, SYSRET-02 CPL 0, SYSRET-03 RCX
 *  canonical — the non-canonical case is the handler's: its outcome is the profile's), as a
 *  condition over RCX's high half `rcxHi`. */
export function sysretChecks(rcxHi: string): string {
  return `(m.efer & ${EFER_SCE}) !== 0 && modeCpl === 0 && (${rcxHi} >> 15) === (${rcxHi} >> 31)`;
}

/**
 * SYSRETQ's updates (SYSRET-04..07) as statements, RCX being the locals `rcx` and R11's low half
 * `r11Lo`: RIP is left to the caller (it is RCX), the new RFLAGS in `nf`; the mode (CPL 3, 64-bit,
 * the access classes: Machine.userAccess — #AC checks when CR0.AM = RFLAGS.AC = 1) and CS/SS in the
 * mode locals, for modeSync. `keepSs`: the profile keeps SS's hidden part (contract/profile.ts
 * sysretSsAttributes): its selector is stored at once.
 */
export function sysretUpdates(r11Lo: string, keepSs: boolean): string {
  const ssSel = "((base + 8) | 3) & 65535";
  // SYSRET-05
  return `const nf = (${r11Lo} & ${SYSRET_RFLAGS}) | 2; m.flags = nf; m.lazyOp = 0;` +
    // SYSRET-06, 07
    ` const base = (m.msr[${STAR_HI}] >>> 16) & 65535; modeCs = ((base + 16) | 3) & 65535;` +
    ` ${keepSs ? `m.segments[${SS * SEG_STRIDE + SEL}] = ${ssSel};` : `modeSs = ${ssSel};`}` +
    ` modeCpl = 3; modeAc = (nf & ${AC}) !== 0; const check = modeAc && (m.cr0 & ${CR0_AM}) !== 0;` +
    ` modeRead = check ? 0 : ${C_UR}; modeWrite = check ? 0 : ${C_UW}; modeFetch = ${C_UX}; modeDirty = true;`;
}

/** The TF trap after SYSCALL/SYSRET (SYSCALL-10, SYSRET-09) when leaving the trace. */
export function trapAfter(): string {
  return `if ((nf & ${TF}) !== 0) m.pendingDebugTrap = true;`;
}

/**
 * Machine.updateMode written out for a transition that knows the new CS: CPL `cpl`, CS attribute
 * word `attr` (expressions), RFLAGS `flags` as just set; the access classes through the Machine's
 * own userAccess/supervisorAccess.
 */
function modeUpdate(cpl: string, attr: string, flags: string): string {
  return ` const mc = ${cpl}; m.cpl = mc; m.mode64 = (m.efer & ${EFER_LMA}) !== 0 && (${attr} & ${A_L}) !== 0;` +
    ` if (mc === 3) m.userAccess((${flags} & ${AC}) !== 0); else m.supervisorAccess((${flags} & ${AC}) !== 0);`;
}

/** system.ts nullInaccessibleSegments(m, newCpl, true) written out (IRETQ-16: a return to an outer
 *  level nulls the data segment registers the new CPL may not use; a NULL selector with RPL ≠ 0
 *  becomes 0), over the segments array `sg`; deliver.ts nullSegment keeping the base. */
function nullDataSegments(newCpl: string): string {
  let out = "";
  for (const seg of [ES, DS, FS, GS]) {
    const b = seg * SEG_STRIDE;
    out += ` { const a = sg[${b + ATTR}];` +
      ` if ((a & ${A_S}) !== 0 && ((a & 8) === 0 || (a & 4) === 0) && ((a >> ${A_DPL_SHIFT}) & 3) < ${newCpl}) {` +
      ` sg[${b + SEL}] = 0; sg[${b + LIMIT}] = 0; sg[${b + ATTR}] = ${A_UNUSABLE}; }` +
      ` else { const sel = sg[${b + SEL}]; if (sel !== 0 && (sel & 65532) === 0) sg[${b + SEL}] = 0; } }`;
  }
  return out;
}

/** Where a delivery written out in a trace (gateDelivery) gets what it reads and writes. */
export interface GateDeliveryCode {
  /** The vector: a literal (INT n) or a local holding it (a fault's). */
  readonly vector: string;
  /** A software interrupt (INT n / INT3: the gate's DPL was checked for it) or a fault. */
  readonly soft: boolean;
  /** The error code (a local, -1 for none), or null: the event pushes none. */
  readonly errorCode: string | null;
  /** The RIP pushed. */
  readonly retLo: string;
  readonly retHi: string;
  /** RFLAGS as they stand (an expression over the trace's locals or the Machine). */
  readonly flags: string;
  /** The RSP's halves (assignable: the new RSP is left in them). */
  readonly rspLo: string;
  readonly rspHi: string;
  /** The statement leaving the written-out path before anything changed (a `break` out of it). */
  readonly fail: string;
}

/**
 * One delivery attempt through the IDT (deliver.ts tryDeliver: DELIVER-01..21) as statements, for
 * the case the gate cache (tables/gate-cache.ts) answers: an entry of the current system-table
 * generation for this vector, CPL and event class holds what DELIVER-01..14 concluded (gate, code
 * descriptor with its accessed bit set, new CPL, the TSS's RSPn or IST stack). Then what remains
 * is evaluated here on the live machine, as tryDeliver evaluates it: the RSP's canonical check
 * when the stack does not switch (DELIVER-13), the frame in one page of the new stack
 * (DELIVER-15), translated through a TLB entry granting the push's access class — so a frame that
 * holds no page tables, code or system tables: the pushes can change no translation, cache or
 * block, and noteWrite would do nothing (the frame is already marked written). Anything else (no entry, a TLB miss, a
 * frame across a page end, a non-canonical RSP) runs
 * `fail` with nothing changed, and the caller takes the general path, which decides it (and
 * raises whatever fault it finds). The commit (DELIVER-16..21) is tryDeliver's, with the new
 * hidden part of CS as descriptors.ts loadHiddenPart builds it. Leaves the Machine's mode updated
 * (Machine.updateMode), RIP the handler's, RFLAGS materialised in the Machine.
 */
export function gateDelivery(d: GateDeliveryCode): string {
  const { vector, fail } = d;
  const errorCode = d.errorCode;
  // Frame slots below the first (SS) one: 4, or 5 with an error code.
  const below = errorCode === null ? "32" : `(${errorCode} >= 0 ? 40 : 32)`;
  const slotsBytes = errorCode === null ? "40" : `(${errorCode} >= 0 ? 48 : 40)`;
  const ss = SS * SEG_STRIDE, cs = CS * SEG_STRIDE;
  const pushedFlags = d.soft ? "fl" : `(fl | ${RF})`;
  const e = (f: number) => `gc[ge + ${f}]`;
  return `const gc = m.gateCache, ge = ${vector} << 4, cpl = m.cpl;` +
    // The gate cache's entry (tables/gate-cache.ts lookupGate; traces never run uncached).
    ` if (${e(G_GENERATION)} !== m.systemTableGeneration || ${e(G_KEY)} !== (cpl | ${d.soft ? 4 : 0})) ${fail}` +
    // DELIVER-12, 13: the new RSP.
    ` let sl = ${d.rspLo}, sh = ${d.rspHi};` +
    ` if (${e(G_STACK_FROM_TSS)} === 1) { sl = ${e(G_RSP_LO)}; sh = ${e(G_RSP_HI)}; } else if ((sh >> 15) !== (sh >> 31)) ${fail}` +
    // DELIVER-15: the frame in the (canonical) page of its first slot, through the TLB.
    ` const al = sl & -16, tl = (al - 8) | 0, th = (tl >>> 0) > (al >>> 0) ? (sh - 1) | 0 : sh;` +
    ` const fl = ${d.flags}, nc = ${e(G_NEW_CPL)};` +
    ` const cls = nc === 3 ? ${C_UW} : (fl & ${AC}) !== 0 ? ${C_SWA} : ${C_SW};` +
    ` const tg = tl >>> ${PAGE_SHIFT}, te = (tg & ${TLB_INDEX_MASK}) << ${TLB_STRIDE_SHIFT};` +
    // (A hit implies th is canonical: the TLB holds only pages translate() was given, canonical
    // by its contract.)
    ` if ((tl & ${PAGE_OFFSET_MASK}) < ${below} || T[te + ${TLB_TAG}] !== tg || T[te + ${TLB_TAG_HI}] !== th ||` +
    ` (T[te + ${TLB_CLASSES}] & cls) === 0) ${fail}` +
    // ---- commit (DELIVER-16..21) ----
    // The write class means the frame holds no page tables, code or system tables (F_GUARDED
    // frames get none) and is already marked written (F_TOUCHED: write classes go only to such
    // frames, memory/tlb.ts), so noteWrite would do nothing.
    ` const PM = m.pool32, sg = m.segments, w = (T[te + ${TLB_POOL_OFFSET}] + (tl & ${PAGE_OFFSET_MASK})) >> 2;` +
    ` PM[w] = sg[${ss + SEL}]; PM[w + 1] = 0; PM[w - 2] = ${d.rspLo}; PM[w - 1] = ${d.rspHi};` +
    ` PM[w - 4] = ${pushedFlags} & ${~VM}; PM[w - 3] = 0; PM[w - 6] = sg[${cs + SEL}]; PM[w - 5] = 0;` +
    ` PM[w - 8] = ${d.retLo}; PM[w - 7] = ${d.retHi};` +
    (errorCode === null ? "" : ` if (${errorCode} >= 0) { PM[w - 10] = ${errorCode}; PM[w - 9] = 0; }`) +
    // DELIVER-17: a NULL SS at the new CPL (deliver.ts nullSegment).
    ` if (nc !== cpl) { sg[${ss + SEL}] = nc; sg[${ss + BASE_LO}] = 0; sg[${ss + BASE_HI}] = 0; sg[${ss + LIMIT}] = 0; sg[${ss + ATTR}] = ${A_UNUSABLE}; }` +
    ` const nl = (al - ${slotsBytes}) | 0; ${d.rspHi} = (nl >>> 0) > (al >>> 0) ? (sh - 1) | 0 : sh; ${d.rspLo} = nl;` +
    // DELIVER-18: CS (descriptors.ts loadHiddenPart, the accessed bit set).
    ` const dlo = ${e(G_CS_LO)}, dhi = ${e(G_CS_HI)} | 256, raw = (dlo & 65535) | (dhi & 983040);` +
    ` sg[${cs + SEL}] = (${e(G_CS)} & 65532) | nc; sg[${cs + BASE_LO}] = (dlo >>> 16) | ((dhi & 255) << 16) | (dhi & -16777216);` +
    ` sg[${cs + BASE_HI}] = 0; sg[${cs + LIMIT}] = ((dhi >>> 23) & 1) === 1 ? (raw << 12) | 4095 : raw; sg[${cs + ATTR}] = (dhi >>> 8) & 61695;` +
    ` r[${RIP_LO}] = ${e(G_TARGET_LO)}; r[${RIP_HI}] = ${e(G_TARGET_HI)};` +
    // DELIVER-19, 20: RFLAGS (IF cleared through an interrupt gate).
    ` let nf = fl & ${~(TF | NT | RF | VM)}; if (${e(G_TYPE)} === 14) nf &= ${~IF}; m.flags = nf | 2; m.lazyOp = 0;` +
    ` m.faultVector = -1; m.deliveredVector = ${vector}; m.deliveredErrorCode = ${errorCode ?? "-1"}; m.deliveredSource = ${d.soft ? EV_SOFT : EV_FAULT};` +
    ` m.halted = false; m.shadow = ${SHADOW_NONE};` + modeUpdate("nc", "(dhi >>> 8)", "nf");
}

/** Where IRETQ written out in a trace (iretqFast) gets the RSP. */
export interface IretqCode {
  /** The RSP's halves (assignable: the popped RSP is left in them). */
  readonly rspLo: string;
  readonly rspHi: string;
  /** The statement leaving the written-out path before anything changed. */
  readonly fail: string;
}

/**
 * IRETQ from 64-bit mode (system.ts execIret → tables/iret-cache.ts iretThroughCache) as
 * statements, for the case the IRET return cache answers: NT = 0 (IRETQ-01), an 8-byte aligned RSP
 * (so no #AC), the five slots in one page read through a TLB entry granting the read, an entry of the
 * current system-table generation for the popped (CS, SS) at this CPL (IRETQ-03..11 as last
 * concluded), a canonical return RIP (IRETQ-12). Else `fail` runs with nothing changed but
 * IRETQ-00's NMI unblocking (which the general path does first too). The commit (IRETQ-13..16) is
 * iretThroughCache's, with system.ts iretFlags written out (every arithmetic flag is replaced, so
 * a lazy record is never read) and system.ts nullInaccessibleSegments written out. Leaves the Machine's mode updated, RIP
 * the popped one, RFLAGS in the Machine.
 */
export function iretqFast(d: IretqCode): string {
  const { fail } = d;
  const cs = CS * SEG_STRIDE, ss = SS * SEG_STRIDE;
  const c = (f: number) => `c[ce + ${f}]`;
  const always = CF | PF | AF | ZF | SF | TF | DF | OF | NT | RF | AC | ID;
  return `m.nmiBlocked = false; const sl = ${d.rspLo}, sh = ${d.rspHi}, cpl = m.cpl;` +
    ` const tg = sl >>> ${PAGE_SHIFT}, te = (tg & ${TLB_INDEX_MASK}) << ${TLB_STRIDE_SHIFT};` +
    // An 8-byte aligned RSP: the slots are whole dwords of the pool, and no #AC can apply.
    ` if ((m.flags & ${NT}) !== 0 || (sl & 7) !== 0 || (sl & ${PAGE_OFFSET_MASK}) > ${PAGE_BYTES - 40} || T[te + ${TLB_TAG}] !== tg ||` +
    ` T[te + ${TLB_TAG_HI}] !== sh || (T[te + ${TLB_CLASSES}] & m.readClass) === 0) ${fail}` +
    ` const o = T[te + ${TLB_POOL_OFFSET}] + (sl & ${PAGE_OFFSET_MASK});` +
    ` const PM = m.pool32, w = o >> 2, cs = PM[w + 2] & 65535, ss = PM[w + 8] & 65535, c = m.iretCache, ce = ((cs >> 3) & ${IRET_ENTRIES - 1}) * ${IRET_STRIDE};` +
    ` if (${c(R_GENERATION)} !== m.systemTableGeneration || ${c(R_CS)} !== cs || ${c(R_SS)} !== ss || ${c(R_CPL)} !== cpl) ${fail}` +
    ` const rl = PM[w], rh = PM[w + 1]; if ((rh >> 15) !== (rh >> 31)) ${fail}` +
    // ---- commit (IRETQ-13..16) ----
    // system.ts iretFlags for a 64-bit operand size.
    ` const old = m.flags; let fmask = ${always}; if (cpl <= ((old >> 12) & 3)) fmask |= ${IF}; if (cpl === 0) fmask |= ${IOPL | VIF | VIP};` +
    ` m.flags = (((old & ~fmask) | (PM[w + 4] & fmask)) & ${~VM}) | 2; m.lazyOp = 0;` +
    ` const sg = m.segments;` +
    ` sg[${cs + SEL}] = cs; sg[${cs + BASE_LO}] = ${c(R_CS_BASE)}; sg[${cs + BASE_HI}] = 0; sg[${cs + LIMIT}] = ${c(R_CS_LIMIT)}; sg[${cs + ATTR}] = ${c(R_CS_ATTR)};` +
    ` r[${RIP_LO}] = rl; r[${RIP_HI}] = rh;` +
    ` sg[${ss + SEL}] = ss; sg[${ss + BASE_LO}] = ${c(R_SS_BASE)}; sg[${ss + BASE_HI}] = 0; sg[${ss + LIMIT}] = ${c(R_SS_LIMIT)}; sg[${ss + ATTR}] = ${c(R_SS_ATTR)};` +
    ` ${d.rspLo} = PM[w + 6]; ${d.rspHi} = PM[w + 7];` +
    ` const rpl = cs & 3; if (rpl > cpl) {${nullDataSegments("rpl")} }` +
    ` m.shadow = ${SHADOW_NONE};` + modeUpdate("rpl", `${c(R_CS_ATTR)}`, "m.flags");
}
