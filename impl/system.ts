// System instructions: privilege transitions (SYSCALL, SYSRET, IRET, far RET/JMP), segment loads,
// control registers, MSRs, descriptor tables, I/O, flags with privilege rules. Written from the SDM
// instruction pages and the reference digest rules named in the comments. Every check precedes
// every state change (GLOBAL-05).
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import { checkOperandRange, readSegmented, toLinear } from "./memory/segmented.ts";
import { finishPrepared, prepareWrite, storePrepared, writeLinear } from "./memory/linear.ts";
import { flushTlb } from "./memory/tlb.ts";
import { invalidateSystemTables, readSystemTable } from "./tables/system-tables.ts";
import { descriptorCached } from "./tables/descriptor-cache.ts";
import {
  ACCESSED_ALREADY_SET, commitAccessedBit, loadHiddenPart, prepareAccessedBit, readDescriptor, setAccessedBit,
} from "./tables/descriptors.ts";
import { iretThroughCache, storeIretReturn } from "./tables/iret-cache.ts";
import { CR4_MODELLED } from "../contract/scope.ts";

const CR4_MODELLED_LO = Number(CR4_MODELLED);
/** CR4.PCIDE (bit 17). */
const CR4_PCIDE = 1 << 17;
import { getFlags, materialize, setFlags } from "./flags.ts";
import {
  adjustStack, eaHi, eaLo, effectiveAddress, getReg, jumpTo, peek, push, readRM, readStackSlots, setReg,
  setStackPointer, spHi, spLo, stackOffset, stackSlots, writeRM,
} from "./exec.ts";
import { nullSegment } from "./deliver.ts";
import { deviceRead } from "./devices.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AC, AC_VEC, BASE_HI, BASE_LO, C_SW, CR0_CD, CR0_DEFINED, CR0_ET, CR0_NW, CR0_PE, CR0_PG, CR0_TS, CR0_WP,
  CR4_PAE, CR4_TSD, CR4_UMIP, CS, DS, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, ES, FS, GP, GS, ID, IF, IOPL,
  LIMIT, NP, NT, RAX, RCX, RDX, R11, RF, RIP_HI, RIP_LO, RSP, SEG_STRIDE, SEL, SHADOW_MOVSS, SHADOW_STI, SS,
  SS_VEC, ST_END, ST_FAULT, ST_HALT, ST_IO, ST_OK, ST_SWINT, ST_UNSUP, TF, TR, UD, VIF, VIP, VM, CF, PF, AF,
  ZF, SF, DF, OF, EV_SOFT, EV_ICEBP, BP, OF_VEC, DB_VEC, ATTR, A_TYPE, A_S, A_UNUSABLE, attrDpl, PAGE_BYTES,
  PAGE_OFFSET_MASK, SYSRET_RFLAGS,
} = constsModule;

export function gp(m: Machine, code: number): number {
  m.raise(GP, code);
  return ST_FAULT;
}

export function ud(m: Machine): number {
  m.raise(UD, -1);
  return ST_FAULT;
}

export function canonical(hi: number): boolean {
  return hi >> 15 === hi >> 31;
}

function iopl(m: Machine): number {
  return (m.flags >> 12) & 3;
}

// ============================================================================================
// Software interrupts (SWINT)
// ============================================================================================

export function execInt(m: Machine, vector: number, source: number): number {
  m.faultVector = vector;
  m.faultErrorCode = -1;
  m.softIntSource = source;
  return ST_SWINT;
}

export function execIntN(m: Machine, i: Insn): number {
  return execInt(m, i.immLo & 0xff, EV_SOFT);
}

export function execInt3(m: Machine): number {
  return execInt(m, BP, EV_SOFT);
}

/** SWINT-04: INT1 is delivered like a hardware exception (no DPL check, EXT = 1), trap-like. */
export function execInt1(m: Machine): number {
  return execInt(m, DB_VEC, EV_ICEBP);
}

/** SWINT-05: compatibility mode only (64-bit mode decodes CE as #UD). */
export function execInto(m: Machine): number {
  const of = (getFlags(m) & OF) !== 0;
  if (!of) return ST_OK;
  return execInt(m, OF_VEC, EV_SOFT);
}

// ============================================================================================
// Flags: CLI, STI, PUSHF, POPF (§14)
// ============================================================================================

export function execCli(m: Machine): number {
  if (m.cpl > iopl(m)) return gp(m, 0);
  m.flags &= ~IF;
  return ST_END;
}

export function execSti(m: Machine): number {
  if (m.cpl > iopl(m)) return gp(m, 0);
  // SHADOW-01: a shadow only when IF goes from 0 to 1.
  if ((m.flags & IF) === 0) m.nextShadow = SHADOW_STI;
  m.flags |= IF;
  return ST_END;
}

export function execPushf(m: Machine, i: Insn): number {
  const v = getFlags(m) & ~(RF | VM);
  return push(m, i.operandSize, i.operandSize === 2 ? v & 0xffff : v, 0) ? ST_OK : ST_FAULT;
}

/** FLAGS-02. */
export function execPopf(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const v = peek(m, 0, size);
  if (m.faultVector >= 0) return ST_FAULT;
  adjustStack(m, size);
  const old = getFlags(m);
  let mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT | AC | ID;
  if (m.cpl === 0) mask |= IOPL;
  if (m.cpl <= iopl(m)) mask |= IF;
  if (size === 2) mask &= 0xffff;
  let f = (old & ~mask) | (v & mask);
  f &= ~(RF | VM);
  setFlags(m, f);
  m.updateMode();
  return ST_END;
}

// ============================================================================================
// HLT, CLTS, caches, INVLPG, STAC/CLAC, RDTSC, SYSEXIT
// ============================================================================================

export function execHlt(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  return ST_HALT;
}

export function execClts(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  m.cr0 &= ~CR0_TS;
  return ST_OK;
}

export function execCacheOp(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  return ST_OK;
}

export function execInvlpg(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  // No fault for any address; the architecture has no observable TLB, ours is flushed.
  flushTlb(m);
  return ST_END;
}

export function execStacClac(m: Machine, set: boolean): number {
  if (m.cpl !== 0) return ud(m);
  if (set) m.flags |= AC;
  else m.flags &= ~AC;
  m.updateMode();
  return ST_END;
}

// ============================================================================================
// SYSCALL / SYSRET / SWAPGS (§2, §3, §4)
// ============================================================================================

const {
  STAR_LO, STAR_HI, LSTAR_LO, LSTAR_HI, CSTAR_LO, CSTAR_HI, FMASK_LO, FMASK_HI, KERNEL_GS_BASE_LO, KERNEL_GS_BASE_HI,
} = constsModule;

/** Hidden parts SYSCALL/SYSRET load (base 0, limit 0xFFFFFFFF, S 1, P 1, G 1): the ATTR words
 *  (also written into traces' generated code: engine/trace-transitions.ts). */
export const FLAT_CODE64_DPL0 = flatAttr(11, 0, 1, 0), FLAT_DATA_DPL0 = flatAttr(3, 0, 0, 1),
  FLAT_CODE64_DPL3 = flatAttr(11, 3, 1, 0), FLAT_CODE32_DPL3 = flatAttr(11, 3, 0, 1), FLAT_DATA_DPL3 = flatAttr(3, 3, 0, 1);

function flatAttr(type: number, dpl: number, l: number, db: number): number {
  return type | A_S | (dpl << 5) | (1 << 7) | (l << 13) | (db << 14) | (1 << 15);
}

/** Loads a flat segment (fields at segments[b..]: base 0, limit 4 GiB) with a precomputed ATTR. */
export function flat(sg: Int32Array, b: number, selector: number, attr: number): void {
  sg[b + SEL] = selector;
  sg[b + BASE_LO] = 0;
  sg[b + BASE_HI] = 0;
  sg[b + LIMIT] = -1;
  sg[b + ATTR] = attr;
}

export function execSyscall(m: Machine): number {
  const compat = !m.mode64;
  // SYSCALL-01 (Intel) / SYSCALL-V1 (AMD: compatibility mode goes through CSTAR).
  if (compat && m.profile.syscallInCompatibilityMode === "ud") return ud(m);
  if ((m.efer & EFER_SCE) === 0) return ud(m);
  enterSyscall(m, m.regs[RIP_LO]!, m.regs[RIP_HI]!, compat);
  return ST_END;
}

/** SYSCALL-03..07, the checks done: RCX and R11 saved, RFLAGS masked, CS and SS loaded flat;
 *  returns the new RFLAGS. */
function saveAndLoadSyscallState(m: Machine, nextLo: number, nextHi: number): number {
  const r = m.regs;
  const msr = m.msr;
  // SYSCALL-03, 04 (RF was cleared when the instruction started).
  r[2 * RCX] = nextLo;
  r[2 * RCX + 1] = nextHi;
  const fl = getFlags(m);
  r[2 * R11] = fl;
  r[2 * R11 + 1] = 0;
  // SYSCALL-05
  const nf = (fl & ~msr[FMASK_LO]! & ~RF) | 2;
  setFlags(m, nf);
  // SYSCALL-06, 07
  const csSel = msr[STAR_HI]! & 0xffff;
  const sg = m.segments;
  flat(sg, CS * SEG_STRIDE, csSel & 0xfffc, FLAT_CODE64_DPL0);
  flat(sg, SS * SEG_STRIDE, (csSel + 8) & 0xffff, FLAT_DATA_DPL0);
  return nf;
}

/** SYSCALL's updates (SYSCALL-03..08), the checks done. */
function enterSyscall(m: Machine, nextLo: number, nextHi: number, compat: boolean): void {
  saveAndLoadSyscallState(m, nextLo, nextHi);
  // SYSCALL-08
  if (compat) m.setRip(m.msr[CSTAR_LO]!, m.msr[CSTAR_HI]!);
  else m.setRip(m.msr[LSTAR_LO]!, m.msr[LSTAR_HI]!);
  m.updateMode();
}

export function execSysret(m: Machine, i: Insn): number {
  const compat = !m.mode64;
  // SYSRET-01 / SYSRET-V3
  if (compat && m.profile.sysretInCompatibilityMode === "ud") return ud(m);
  if ((m.efer & EFER_SCE) === 0) return ud(m);
  // SYSRET-02
  if (m.cpl !== 0) return gp(m, 0);
  const r = m.regs;
  const to64 = i.rexW && !compat;
  // SYSRET-03
  if (to64 && !canonical(r[2 * RCX + 1]!) && m.profile.sysretNonCanonicalRcx === "gp-in-ring0") return gp(m, 0);
  // ---- no fault past this line ----
  if (compat) {
    // SYSRET-V3 legacy path: EIP ← ECX, IF ← 1, other flags unchanged; 32-bit flat code.
    m.setRip(r[2 * RCX]!, 0);
    materialize(m);
    m.flags |= IF;
    leaveSysret(m, false);
  } else returnSysret(m, r[2 * RCX]!, to64 ? r[2 * RCX + 1]! : 0, r[2 * R11]!, to64);
  return ST_END;
}

/** SYSRET-04..07 from 64-bit mode, the checks done. */
function returnSysret(m: Machine, ripLo: number, ripHi: number, r11Lo: number, to64: boolean): void {
  // SYSRET-04, 05
  m.setRip(ripLo, ripHi);
  setFlags(m, (r11Lo & SYSRET_RFLAGS) | 2);
  leaveSysret(m, to64);
}

/** SYSRET-06, 07: CS and SS from STAR[63:48], CPL 3. */
function leaveSysret(m: Machine, to64: boolean): void {
  const base = (m.msr[STAR_HI]! >>> 16) & 0xffff;
  const sg = m.segments;
  if (to64) flat(sg, CS * SEG_STRIDE, ((base + 16) | 3) & 0xffff, FLAT_CODE64_DPL3);
  else flat(sg, CS * SEG_STRIDE, (base | 3) & 0xffff, FLAT_CODE32_DPL3);
  const ssSel = ((base + 8) | 3) & 0xffff;
  if (m.profile.sysretSsAttributes === "keep") sg[SS * SEG_STRIDE + SEL] = ssSel;
  else flat(sg, SS * SEG_STRIDE, ssSel, FLAT_DATA_DPL3);
  m.updateMode();
}

export function execSwapgs(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  const b = GS * SEG_STRIDE;
  const lo = m.segments[b + BASE_LO]!, hi = m.segments[b + BASE_HI]!;
  m.segments[b + BASE_LO] = m.msr[KERNEL_GS_BASE_LO]!;
  m.segments[b + BASE_HI] = m.msr[KERNEL_GS_BASE_HI]!;
  m.msr[KERNEL_GS_BASE_LO] = lo;
  m.msr[KERNEL_GS_BASE_HI] = hi;
  return ST_OK;
}

// ============================================================================================
// SYSENTER / SYSEXIT (SDM Vol. 2B; docs/model-choices.md rows "SYSENTER", "SYSEXIT")
// ============================================================================================

const { SYSENTER_CS_LO, SYSENTER_ESP_LO, SYSENTER_EIP_LO } = constsModule;

/** Any CPL, 64-bit or compatibility mode: to CPL 0 in 64-bit mode through the SYSENTER MSRs. */
export function execSysenter(m: Machine): number {
  if (m.profile.sysenterInIa32eMode === "ud") return ud(m);
  const msr = m.msr;
  const csSel = msr[SYSENTER_CS_LO]! & 0xffff;
  if ((csSel & 0xfffc) === 0) return gp(m, 0);
  // ---- no fault past this line ----
  materialize(m);
  m.flags &= ~(VM | IF);
  m.regs[2 * RSP] = msr[SYSENTER_ESP_LO]!;
  m.regs[2 * RSP + 1] = msr[SYSENTER_ESP_LO + 1]!;
  m.setRip(msr[SYSENTER_EIP_LO]!, msr[SYSENTER_EIP_LO + 1]!);
  const sg = m.segments;
  flat(sg, CS * SEG_STRIDE, csSel & 0xfffc, FLAT_CODE64_DPL0);
  flat(sg, SS * SEG_STRIDE, ((csSel & 0xfffc) + 8) & 0xffff, FLAT_DATA_DPL0);
  m.updateMode();
  return ST_END;
}

/** CPL 0 to CPL 3: REX.W to 64-bit mode (RIP ← RDX, RSP ← RCX), else to compatibility mode
 *  (EDX, ECX zero-extended). RFLAGS unchanged. */
export function execSysexit(m: Machine, i: Insn): number {
  if (m.profile.sysenterInIa32eMode === "ud") return ud(m);
  const base = m.msr[SYSENTER_CS_LO]! & 0xffff;
  if ((base & 0xfffc) === 0) return gp(m, 0);
  if (m.cpl !== 0) return gp(m, 0);
  const r = m.regs;
  const to64 = i.rexW;
  if (to64 && (!canonical(r[2 * RCX + 1]!) || !canonical(r[2 * RDX + 1]!))) return gp(m, 0);
  // ---- no fault past this line ----
  const sg = m.segments;
  const csSel = ((base + (to64 ? 32 : 16)) | 3) & 0xffff;
  if (to64) {
    r[2 * RSP] = r[2 * RCX]!;
    r[2 * RSP + 1] = r[2 * RCX + 1]!;
    m.setRip(r[2 * RDX]!, r[2 * RDX + 1]!);
    flat(sg, CS * SEG_STRIDE, csSel, FLAT_CODE64_DPL3);
  } else {
    r[2 * RSP] = r[2 * RCX]!;
    r[2 * RSP + 1] = 0;
    m.setRip(r[2 * RDX]!, 0);
    flat(sg, CS * SEG_STRIDE, csSel, FLAT_CODE32_DPL3);
  }
  flat(sg, SS * SEG_STRIDE, (csSel + 8) & 0xffff, FLAT_DATA_DPL3);
  m.updateMode();
  return ST_END;
}

// ============================================================================================
// RDMSR / WRMSR (§16)
// ============================================================================================

const MSR_TSC = 0x10, MSR_APIC_BASE = 0x1b, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176,
  MSR_PAT = 0x277, MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083,
  MSR_FMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100, MSR_GS_BASE = 0xc0000101, MSR_KGS_BASE = 0xc0000102,
  MSR_TSC_AUX = 0xc0000103;

const { APIC_BASE_LO } = constsModule;

/** docs/model-choices.md "MSRs": order CPL → index → value. */
export function execRdmsr(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  const index = m.regs[2 * RCX]! >>> 0;
  let lo: number, hi: number;
  const msr = m.msr;
  switch (index) {
    case MSR_EFER: lo = m.efer; hi = 0; break;
    case MSR_STAR: lo = msr[STAR_LO]!; hi = msr[STAR_HI]!; break;
    case MSR_LSTAR: lo = msr[LSTAR_LO]!; hi = msr[LSTAR_HI]!; break;
    case MSR_CSTAR: lo = msr[CSTAR_LO]!; hi = msr[CSTAR_HI]!; break;
    case MSR_FMASK: lo = msr[FMASK_LO]!; hi = msr[FMASK_HI]!; break;
    case MSR_FS_BASE: lo = m.segments[FS * SEG_STRIDE + BASE_LO]!; hi = m.segments[FS * SEG_STRIDE + BASE_HI]!; break;
    case MSR_GS_BASE: lo = m.segments[GS * SEG_STRIDE + BASE_LO]!; hi = m.segments[GS * SEG_STRIDE + BASE_HI]!; break;
    case MSR_KGS_BASE: lo = msr[KERNEL_GS_BASE_LO]!; hi = msr[KERNEL_GS_BASE_HI]!; break;
    case MSR_SYSENTER_CS: lo = msr[SYSENTER_CS_LO]!; hi = 0; break;
    case MSR_SYSENTER_ESP: lo = msr[SYSENTER_ESP_LO]!; hi = msr[SYSENTER_ESP_LO + 1]!; break;
    case MSR_SYSENTER_EIP: lo = msr[SYSENTER_EIP_LO]!; hi = msr[SYSENTER_EIP_LO + 1]!; break;
    case MSR_APIC_BASE: lo = msr[APIC_BASE_LO]!; hi = msr[APIC_BASE_LO + 1]!; break;
    // The TSC and IA32_TSC_AUX read 0 (row "RDTSC, RDTSCP, RDPMC").
    case MSR_TSC: case MSR_TSC_AUX: lo = 0; hi = 0; break;
    case MSR_PAT:
      m.unsupportedReason = "RDMSR 277 (IA32_PAT): MSR not modelled";
      return ST_UNSUP;
    default:
      return gp(m, 0);
  }
  setReg(m, RAX, 4, lo, 0);
  setReg(m, RDX, 4, hi, 0);
  return ST_OK;
}

export function execWrmsr(m: Machine): number {
  if (m.cpl !== 0) return gp(m, 0);
  const index = m.regs[2 * RCX]! >>> 0;
  const lo = m.regs[2 * RAX]!;
  const hi = m.regs[2 * RDX]!;
  const msr = m.msr;
  switch (index) {
    case MSR_EFER: {
      // MSR-06: reserved bits, LME change with paging on; LMA is read-only.
      if (hi !== 0 || (lo & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) !== 0) return gp(m, 0);
      if (((lo ^ m.efer) & EFER_LME) !== 0) return gp(m, 0);
      const next = (lo & ~EFER_LMA) | (m.efer & EFER_LMA);
      if (((next ^ m.efer) & EFER_NXE) !== 0) flushTlb(m);
      m.efer = next;
      m.updateMode();
      return ST_END;
    }
    case MSR_STAR: msr[STAR_LO] = lo; msr[STAR_HI] = hi; return ST_OK;
    case MSR_CSTAR:
      if (m.profile.cstarCanonicalOnWrite && !canonical(hi)) return gp(m, 0);
      msr[CSTAR_LO] = lo;
      msr[CSTAR_HI] = hi;
      return ST_OK;
    case MSR_FMASK:
      // MSR-07: bits 63:32 reserved.
      if (hi !== 0) return gp(m, 0);
      msr[FMASK_LO] = lo;
      msr[FMASK_HI] = 0;
      return ST_OK;
    case MSR_SYSENTER_CS:
      // Bits 31:0 (bits 63:32 are not part of it: ignored, read back as 0).
      msr[SYSENTER_CS_LO] = lo;
      msr[SYSENTER_CS_LO + 1] = 0;
      return ST_OK;
    case MSR_LSTAR: case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KGS_BASE: case MSR_SYSENTER_ESP:
    case MSR_SYSENTER_EIP: {
      // MSR-05: canonical (48-bit: the modelled CPU has no LA57).
      if (!canonical(hi)) return gp(m, 0);
      let slot: number;
      if (index === MSR_LSTAR) slot = LSTAR_LO;
      else if (index === MSR_KGS_BASE) slot = KERNEL_GS_BASE_LO;
      else if (index === MSR_SYSENTER_ESP) slot = SYSENTER_ESP_LO;
      else if (index === MSR_SYSENTER_EIP) slot = SYSENTER_EIP_LO;
      else {
        const b = (index === MSR_FS_BASE ? FS : GS) * SEG_STRIDE;
        m.segments[b + BASE_LO] = lo;
        m.segments[b + BASE_HI] = hi;
        return ST_OK;
      }
      msr[slot] = lo;
      msr[slot + 1] = hi;
      return ST_OK;
    }
    case MSR_APIC_BASE: case MSR_TSC: case MSR_TSC_AUX: case MSR_PAT:
      m.unsupportedReason = `WRMSR ${index.toString(16)}: writing this MSR is not modelled`;
      return ST_UNSUP;
    default:
      return gp(m, 0);
  }
}

// ============================================================================================
// MOV to/from control registers (§17)
// ============================================================================================

export function execMovFromCr(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  let lo: number, hi: number;
  switch (i.reg) {
    case 0: lo = m.cr0; hi = 0; break;
    case 2: lo = m.cr2Lo; hi = m.cr2Hi; break;
    case 3: lo = m.cr3Lo; hi = m.cr3Hi; break;
    case 4: lo = m.cr4; hi = 0; break;
    default: lo = m.cr8; hi = 0;
  }
  setReg(m, i.rm, i.operandSize, lo, hi);
  return ST_OK;
}

export function execMovToCr(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  const lo = getReg(m, i.rm, i.operandSize);
  const hi = i.operandSize === 8 ? m.valueHi : 0;
  switch (i.reg) {
    case 0: {
      // MOVCR-03
      if (hi !== 0) return gp(m, 0);
      if ((lo & CR0_PG) !== 0 && (lo & CR0_PE) === 0) return gp(m, 0);
      if ((lo & CR0_NW) !== 0 && (lo & CR0_CD) === 0) return gp(m, 0);
      if ((lo & CR0_PG) === 0) {
        // Clearing PG: #GP(0) in 64-bit mode and, with CR4.PCIDE = 1, in compatibility mode too.
        if (m.mode64 || (m.cr4 & CR4_PCIDE) !== 0) return gp(m, 0);
        m.unsupportedReason = "MOV CR0 clearing PG leaves IA-32e mode (outside the model)";
        return ST_UNSUP;
      }
      const next = (lo & CR0_DEFINED) | CR0_ET;
      if (((next ^ m.cr0) & CR0_WP) !== 0) flushTlb(m);
      m.cr0 = next;
      m.updateMode();
      return ST_END;
    }
    case 2:
      m.cr2Lo = lo;
      m.cr2Hi = hi;
      return ST_OK;
    case 3: {
      // MOVCR-04: bits at or above MAXPHYADDR (46). With CR4.PCIDE = 1, bit 63 asks not to flush
      // the PCID's translations: it is not stored, and the architecture keeps no TLB the model
      // could show — impl's TLB is flushed all the same (it only mirrors the tables).
      const value = (m.cr4 & CR4_PCIDE) !== 0 ? hi & 0x7fffffff : hi;
      if ((value & ~0x3fff) !== 0) return gp(m, 0);
      m.cr3Lo = lo;
      m.cr3Hi = value;
      flushTlb(m);
      return ST_END;
    }
    case 4: {
      // MOVCR-05: bits the modelled CPU lacks are reserved; PAE cannot be cleared in IA-32e mode;
      // PCIDE may be set (0 → 1) only while CR3[11:0] = 0.
      if (hi !== 0 || (lo & ~CR4_MODELLED_LO) !== 0) return gp(m, 0);
      if ((lo & CR4_PAE) === 0) return gp(m, 0);
      if ((lo & ~m.cr4 & CR4_PCIDE) !== 0 && (m.cr3Lo & 0xfff) !== 0) return gp(m, 0);
      m.cr4 = lo;
      flushTlb(m);
      m.updateMode();
      return ST_END;
    }
    default:
      // MOVCR-06
      if (hi !== 0 || (lo & ~15) !== 0) return gp(m, 0);
      m.cr8 = lo;
      return ST_END;
  }
}

// ============================================================================================
// Descriptor tables: LGDT, LIDT, SGDT, SIDT, LTR (§18)
// ============================================================================================

export function execLoadTable(m: Machine, i: Insn, idt: boolean): number {
  if (m.cpl !== 0) return gp(m, 0);
  effectiveAddress(m, i);
  const aLo = eaLo, aHi = eaHi;
  const limit = readSegmented(m, i.seg, aLo, aHi, 2, m.readClass);
  if (m.faultVector >= 0) return ST_FAULT;
  let bLo = (aLo + 2) | 0;
  let bHi = (bLo >>> 0) < (aLo >>> 0) ? (aHi + 1) | 0 : aHi;
  if (i.addressSize === 4) bHi = 0;
  let baseLo: number, baseHi: number;
  if (m.mode64) {
    baseLo = readSegmented(m, i.seg, bLo, bHi, 8, m.readClass);
    baseHi = m.valueHi;
  } else {
    baseLo = readSegmented(m, i.seg, bLo, bHi, 4, m.readClass);
    if (i.operandSize === 2) baseLo &= 0xffffff;
    baseHi = 0;
  }
  if (m.faultVector >= 0) return ST_FAULT;
  invalidateSystemTables(m);
  if (idt) {
    m.idtrLo = baseLo;
    m.idtrHi = baseHi;
    m.idtrLimit = limit;
  } else {
    m.gdtrLo = baseLo;
    m.gdtrHi = baseHi;
    m.gdtrLimit = limit;
  }
  return ST_END;
}

export function execStoreTable(m: Machine, i: Insn, idt: boolean): number {
  if (m.cpl !== 0 && (m.cr4 & CR4_UMIP) !== 0) return gp(m, 0);
  effectiveAddress(m, i);
  const size = m.mode64 ? 10 : 6;
  if (!toLinear(m, i.seg, eaLo, eaHi, size, true)) return ST_FAULT;
  const lLo = m.linearLo, lHi = m.linearHi;
  // #AC: "GDTR, IDTR, LDTR, or task register contents" need 4-byte alignment (SDM Table 6-7).
  if (m.alignmentCheck && (lLo & 3) !== 0) {
    m.raise(AC_VEC, 0);
    return ST_FAULT;
  }
  if (!prepareWrite(m, lLo, lHi, size, m.writeClass)) return ST_FAULT;
  const limit = idt ? m.idtrLimit : m.gdtrLimit;
  const bLo = idt ? m.idtrLo : m.gdtrLo;
  const bHi = idt ? m.idtrHi : m.gdtrHi;
  // One access: both parts go through the translations just made (issue 8, divergence A: the
  // limit written first may rewrite the paging entry that translates the base's bytes).
  storePrepared(m, 0, 2, limit, 0);
  storePrepared(m, 2, size - 2, bLo, bHi);
  finishPrepared(m);
  return ST_OK;
}

export function execLtr(m: Machine, i: Insn): number {
  if (m.cpl !== 0) return gp(m, 0);
  const sel = readRM(m, i, 2) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  if ((sel & 0xfffc) === 0) return gp(m, 0);
  const ec = sel & 0xfffc;
  if ((sel & 4) !== 0) return gp(m, ec);
  const index = sel & 0xfff8;
  if (index + 15 > m.gdtrLimit) return gp(m, ec);
  if (!readDescriptor(m, sel, 0)) return ST_FAULT;
  const dlo = m.descriptorLo, dhi = m.descriptorHi;
  const aLo = m.descriptorAddrLo, aHi = m.descriptorAddrHi;
  const uLo = (aLo + 8) | 0;
  const uHi = (uLo >>> 0) < (aLo >>> 0) ? (aHi + 1) | 0 : aHi;
  const baseHi = readSystemTable(m, uLo, uHi, 8);
  if (m.faultVector >= 0) return ST_FAULT;
  const upper = m.valueHi;
  // DT-02: an available 64-bit TSS, upper type bits zero, present.
  if (((dhi >>> 12) & 1) !== 0 || ((dhi >>> 8) & 15) !== 9) return gp(m, ec);
  if (((upper >>> 8) & 0x1f) !== 0) return gp(m, ec);
  if (((dhi >>> 15) & 1) === 0) {
    m.raise(NP, ec);
    return ST_FAULT;
  }
  // Set the busy bit (locked implicit write).
  const bLo = (aLo + 5) | 0;
  const bHi = (bLo >>> 0) < (aLo >>> 0) ? (aHi + 1) | 0 : aHi;
  if (!writeLinear(m, bLo, bHi, 1, ((dhi >>> 8) & 0xff) | 2, 0, C_SW)) return ST_FAULT;
  loadHiddenPart(m, TR, sel, dlo, dhi | 0x200, baseHi);
  invalidateSystemTables(m);
  return ST_END;
}

// ============================================================================================
// Segment loads (§22)
// ============================================================================================

/** Loads a data segment register or SS from a selector (SEG-01, SEG-02, SEG-03). */
export function loadSegment(m: Machine, s: number, sel: number): boolean {
  const cpl = m.cpl;
  const rpl = sel & 3;
  const ec = sel & 0xfffc;
  if (ec === 0) {
    if (s === SS && (!m.mode64 || cpl === 3 || rpl !== cpl)) {
      m.raise(GP, 0);
      return false;
    }
    // Hidden part of a NULL load: limit 0, attributes 0, unusable; base 0 (FS/GS base kept
    // under amd: SEG-03).
    const b = s * SEG_STRIDE;
    const keep = (s === FS || s === GS) && !m.profile.nullSelectorClearsBase;
    m.segments[b + SEL] = sel;
    m.segments[b + LIMIT] = 0;
    m.segments[b + ATTR] = A_UNUSABLE;
    if (!keep) {
      m.segments[b + BASE_LO] = 0;
      m.segments[b + BASE_HI] = 0;
    }
    return true;
  }
  if (s === SS && rpl !== cpl) {
    m.raise(GP, ec);
    return false;
  }
  if (!readDescriptor(m, sel, 0)) return false;
  const dlo = m.descriptorLo, dhi = m.descriptorHi;
  const aLo = m.descriptorAddrLo, aHi = m.descriptorAddrHi;
  const sBit = (dhi >>> 12) & 1;
  const type = (dhi >>> 8) & 15;
  const dpl = (dhi >>> 13) & 3;
  const code = (type & 8) !== 0;
  if (s === SS) {
    if (sBit === 0 || code || (type & 2) === 0 || dpl !== cpl) {
      m.raise(GP, ec);
      return false;
    }
    if (((dhi >>> 15) & 1) === 0) {
      m.raise(SS_VEC, ec);
      return false;
    }
  } else {
    if (sBit === 0 || (code && (type & 2) === 0)) {
      m.raise(GP, ec);
      return false;
    }
    if ((!code || (type & 4) === 0) && dpl < Math.max(cpl, rpl)) {
      m.raise(GP, ec);
      return false;
    }
    if (((dhi >>> 15) & 1) === 0) {
      m.raise(NP, ec);
      return false;
    }
  }
  if (!setAccessedBit(m, aLo, aHi, dhi)) return false;
  loadHiddenPart(m, s, sel, dlo, dhi | 0x100, 0);
  return true;
}

export function execMovToSreg(m: Machine, i: Insn): number {
  const sel = readRM(m, i, 2) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  if (!loadSegment(m, i.reg, sel)) return ST_FAULT;
  // SHADOW-05/07: a MOV SS inside a MOV SS shadow does not start another.
  if (i.reg === SS && m.shadow !== SHADOW_MOVSS) m.nextShadow = SHADOW_MOVSS;
  return ST_END;
}

export function execMovFromSreg(m: Machine, i: Insn): number {
  const sel = m.selector(i.reg);
  if (i.mod === 3) {
    setReg(m, i.rm, i.operandSize, sel, 0);
    return ST_OK;
  }
  return writeRM(m, i, 2, sel, 0) ? ST_OK : ST_FAULT;
}

export function execPushSreg(m: Machine, i: Insn): number {
  return push(m, i.operandSize, m.selector(i.reg), 0) ? ST_OK : ST_FAULT;
}

export function execPopSreg(m: Machine, i: Insn): number {
  const sel = peek(m, 0, i.operandSize) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  if (!loadSegment(m, i.reg, sel)) return ST_FAULT;
  adjustStack(m, i.operandSize);
  if (i.reg === SS && m.shadow !== SHADOW_MOVSS) m.nextShadow = SHADOW_MOVSS;
  return ST_END;
}

// ============================================================================================
// Far transfers: IRET (§9), far RET, JMP far
// ============================================================================================

/** Checks of a return CS (IRETQ-03..09, far RET): on success the descriptor is in m.descriptor*. */
function checkReturnCs(m: Machine, cs: number): boolean {
  const ec = cs & 0xfffc;
  if (ec === 0) {
    m.raise(GP, 0);
    return false;
  }
  if (!readDescriptor(m, cs, 0)) return false;
  const dhi = m.descriptorHi;
  const type = (dhi >>> 8) & 15;
  const dpl = (dhi >>> 13) & 3;
  const rpl = cs & 3;
  if (((dhi >>> 12) & 1) === 0 || (type & 8) === 0) return gpFalse(m, ec);
  if (rpl < m.cpl) return gpFalse(m, ec);
  if (((dhi >>> 21) & 1) === 1 && ((dhi >>> 22) & 1) === 1) return gpFalse(m, ec);
  if ((type & 4) !== 0 ? dpl > rpl : dpl !== rpl) return gpFalse(m, ec);
  if (((dhi >>> 15) & 1) === 0) {
    m.raise(NP, ec);
    return false;
  }
  return true;
}

function gpFalse(m: Machine, code: number): boolean {
  m.raise(GP, code);
  return false;
}

/** SS checks of IRETQ-11 (also far RET to an outer level). Descriptor left in m.descriptor*. */
function checkReturnSs(m: Machine, ss: number, csRpl: number, target64: boolean): boolean {
  const ec = ss & 0xfffc;
  if (ec === 0) {
    if (target64 && csRpl !== 3 && (ss & 3) === csRpl) return true;
    return gpFalse(m, 0);
  }
  if (!readDescriptor(m, ss, 0)) return false;
  const dhi = m.descriptorHi;
  const type = (dhi >>> 8) & 15;
  if ((ss & 3) !== csRpl) return gpFalse(m, ec);
  if (((dhi >>> 12) & 1) === 0 || (type & 8) !== 0 || (type & 2) === 0) return gpFalse(m, ec);
  if (((dhi >>> 13) & 3) !== csRpl) return gpFalse(m, ec);
  if (((dhi >>> 15) & 1) === 0) {
    m.raise(SS_VEC, ec);
    return false;
  }
  return true;
}

/**
 * IRETQ-16 / far RET: on a return to an outer level, DS, ES, FS, GS are judged by their hidden part
 * (the cached descriptor), whatever the selector says: S = 1, data or non-conforming code, DPL <
 * the new CPL → selector 0, hidden part unusable, base kept. IRET (`iret`) also turns a NULL
 * selector with RPL ≠ 0 into 0, hidden part untouched (the SDM IRET page's NULL clause; the far RET
 * page has none). docs/model-choices.md "Return to an outer level: DS, ES, FS, GS".
 */
const DATA_SEGMENTS = [ES, DS, FS, GS] as const;

export function nullInaccessibleSegments(m: Machine, newCpl: number, iret: boolean): void {
  const sg = m.segments;
  for (const s of DATA_SEGMENTS) {
    const b = s * SEG_STRIDE;
    const a = sg[b + ATTR]!;
    if ((a & A_S) !== 0) {
      const type = a & A_TYPE;
      if (((type & 8) === 0 || (type & 4) === 0) && attrDpl(a) < newCpl) {
        nullSegment(m, s, 0, true);
        continue;
      }
    }
    const sel = sg[b + SEL]!;
    if (iret && sel !== 0 && (sel & 0xfffc) === 0) sg[b + SEL] = 0;
  }
}

/** Target check of IRET, far RET and far JMP (IRETQ-12, RETF-08, JMPF-08): a 64-bit target
 *  (descriptor in dlo/dhi, L = 1) must be canonical; a compatibility-mode target must lie within
 *  the new CS limit — for IRET its EIP (bits 31:0, the SDM's "IF EIP is not within CS limit"), for
 *  far RET and JMP the whole value (`whole`: the SDM's "return instruction pointer" and
 *  "tempEIP ← DEST(Offset)", so a value above 4 GiB is #GP(0)); docs/model-choices.md,
 *  "Transfers into compatibility mode". */
function farTargetOk(lo: number, hi: number, dlo: number, dhi: number, whole: boolean): boolean {
  if (((dhi >>> 21) & 1) === 1) return canonical(hi);
  if (whole && hi !== 0) return false;
  const g = (dhi >>> 23) & 1;
  const raw = (dlo & 0xffff) | (dhi & 0x000f0000);
  const limit = g === 1 ? ((raw << 12) | 0xfff) >>> 0 : raw;
  return lo >>> 0 <= limit;
}

/** IRETQ-13: RFLAGS from the popped value `fl` under the privilege rules (operand size `os`). */
export function iretFlags(m: Machine, cpl: number, os: number, fl: number): void {
  // Every arithmetic flag is replaced (fmask holds them all): the lazy record need not be read.
  const old = m.flags;
  let fmask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
  if (os >= 4) fmask |= RF | AC | ID;
  if (cpl <= ((old >> 12) & 3)) fmask |= IF;
  if (cpl === 0) {
    fmask |= IOPL;
    if (os >= 4) fmask |= VIF | VIP;
  }
  setFlags(m, ((old & ~fmask) | (fl & fmask)) & ~VM);
}

export function execIret(m: Machine, i: Insn): number {
  // IRETQ-00: NMI blocking ends first, whatever happens next.
  m.nmiBlocked = false;
  if ((m.flags & NT) !== 0) return gp(m, 0);
  const os = i.operandSize;
  if (os === 8 && m.mode64) {
    const st = iretThroughCache(m);
    if (st >= 0) return st;
  }
  const cpl = m.cpl;
  const began64 = m.mode64;
  const mask = os === 8 ? -1 : os === 4 ? -1 : 0xffff;
  // IRETQ-02. IRETQ-10's SS:RSP are read after the CS checks (a fault on their slots must not win
  // over a #GP/#NP for CS); when all five slots lie in one page they cannot fault separately, so
  // they are read up front.
  const upFront = began64 && (m.regs[2 * RSP]! & PAGE_OFFSET_MASK) + 5 * os <= PAGE_BYTES;
  if (!readStackSlots(m, upFront ? 5 : 3, os)) return ST_FAULT;
  const ripLo = stackSlots[0]! & mask;
  const ripHi = os === 8 ? stackSlots[1]! : 0;
  const cs = stackSlots[2]! & 0xffff;
  const fl = stackSlots[4]! & mask;
  let rspLo0 = upFront ? stackSlots[6]! & mask : 0;
  let rspHi0 = upFront && os === 8 ? stackSlots[7]! : 0;
  let ss0 = upFront ? stackSlots[8]! & 0xffff : 0;
  if (!checkReturnCs(m, cs)) return ST_FAULT;
  const cdlo = m.descriptorLo, cdhi = m.descriptorHi, caLo = m.descriptorAddrLo, caHi = m.descriptorAddrHi;
  const rpl = cs & 3;
  const target64 = ((cdhi >>> 21) & 1) === 1;
  const readSs = rpl > cpl || began64;
  let rspLo = 0, rspHi = 0, ss = 0;
  let sdlo = 0, sdhi = 0, saLo = 0, saHi = 0;
  if (readSs) {
    if (!upFront) {
      rspLo0 = peek(m, 3 * os, os) & mask;
      if (m.faultVector >= 0) return ST_FAULT;
      rspHi0 = os === 8 ? m.valueHi : 0;
      ss0 = peek(m, 4 * os, os) & 0xffff;
      if (m.faultVector >= 0) return ST_FAULT;
    }
    rspLo = rspLo0;
    rspHi = rspHi0;
    ss = ss0;
    if (!checkReturnSs(m, ss, rpl, target64)) return ST_FAULT;
    sdlo = m.descriptorLo;
    sdhi = m.descriptorHi;
    saLo = m.descriptorAddrLo;
    saHi = m.descriptorAddrHi;
  }
  if (!farTargetOk(ripLo, ripHi, cdlo, cdhi, false)) return gp(m, 0);
  const ca = prepareAccessedBit(m, caLo, caHi, cdhi);
  if (ca === -1) return ST_FAULT;
  const sa = readSs && (ss & 0xfffc) !== 0 ? prepareAccessedBit(m, saLo, saHi, sdhi) : ACCESSED_ALREADY_SET;
  if (sa === -1) return ST_FAULT;
  commitAccessedPair(m, ca, sa);

  // ---- commit (IRETQ-13..16) ----
  iretFlags(m, cpl, os, fl);
  loadHiddenPart(m, CS, cs, cdlo, cdhi | 0x100, 0);
  // A compatibility-mode target: EIP and ESP, zero-extended (model-choices "Transfers into
  // compatibility mode").
  m.setRip(ripLo, target64 ? ripHi : 0);
  if (readSs) {
    if (target64) loadReturnStack(m, ss, sdlo, sdhi, rspLo, rspHi);
    // A 16-bit stack (SS.B = 0) takes SP only: RSP bits 63:16 stay as IRET found them
    // (model-choices "Return to a 16-bit stack (SS.B = 0)"; SDM Vol. 3A §6.14.3, the stack size
    // decides the width).
    else if (((sdhi >>> 22) & 1) === 0) loadReturnStack(m, ss, sdlo, sdhi, (m.regs[2 * RSP]! & ~0xffff) | (rspLo & 0xffff), m.regs[2 * RSP + 1]!);
    else loadReturnStack(m, ss, sdlo, sdhi, rspLo, 0);
  } else adjustStack(m, 3 * os);
  if (rpl > cpl) nullInaccessibleSegments(m, rpl, true);
  m.updateMode();
  // Fill the IRET return cache (tables/iret-cache.ts) when nothing was written and both
  // descriptors are held by the descriptor cache in the current generation.
  if (os === 8 && began64 && target64 && ca === ACCESSED_ALREADY_SET && sa === ACCESSED_ALREADY_SET && !m.uncached &&
    descriptorCached(m, cs) && ((ss & 0xfffc) === 0 || descriptorCached(m, ss))) {
    storeIretReturn(m, cs, ss, cpl);
  }
  return ST_END;
}

/**
 * The accessed bits of a far return (IRET, RETF): implicit writes, CS before SS, both already
 * translated by prepareAccessedBit, so neither is written unless both can be. (The CS write cannot
 * change the SS byte's translation: a present descriptor read as a paging entry has reserved bit
 * 47 set, so no walk that succeeded went through it.)
 */
function commitAccessedPair(m: Machine, cs: number, ss: number): void {
  commitAccessedBit(m, cs);
  commitAccessedBit(m, ss);
}

/** SS:RSP of a far return (IRET, RETF to an outer level): a NULL SS gets base 0 and is unusable. */
function loadReturnStack(m: Machine, ss: number, sdlo: number, sdhi: number, rspLo: number, rspHi: number): void {
  if ((ss & 0xfffc) === 0) nullSegment(m, SS, ss, false);
  else loadHiddenPart(m, SS, ss, sdlo, sdhi | 0x100, 0);
  m.regs[2 * RSP] = rspLo;
  m.regs[2 * RSP + 1] = rspHi;
}

export function execRetf(m: Machine, i: Insn): number {
  const os = m.mode64 ? (i.rexW ? 8 : i.operandSize === 2 ? 2 : 4) : i.operandSize;
  const cpl = m.cpl;
  const mask = os === 2 ? 0xffff : -1;
  const ripLo = peek(m, 0, os) & mask;
  if (m.faultVector >= 0) return ST_FAULT;
  const ripHi = os === 8 ? m.valueHi : 0;
  const cs = peek(m, os, os) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  if (!checkReturnCs(m, cs)) return ST_FAULT;
  const cdlo = m.descriptorLo, cdhi = m.descriptorHi, caLo = m.descriptorAddrLo, caHi = m.descriptorAddrHi;
  const rpl = cs & 3;
  const target64 = ((cdhi >>> 21) & 1) === 1;
  const release = i.immLo;
  const outer = rpl > cpl;
  let rspLo = 0, rspHi = 0, ss = 0, sdlo = 0, sdhi = 0, saLo = 0, saHi = 0;
  if (outer) {
    rspLo = peek(m, 2 * os + release, os) & mask;
    if (m.faultVector >= 0) return ST_FAULT;
    rspHi = os === 8 ? m.valueHi : 0;
    ss = peek(m, 3 * os + release, os) & 0xffff;
    if (m.faultVector >= 0) return ST_FAULT;
    if (!checkReturnSs(m, ss, rpl, target64)) return ST_FAULT;
    sdlo = m.descriptorLo;
    sdhi = m.descriptorHi;
    saLo = m.descriptorAddrLo;
    saHi = m.descriptorAddrHi;
  }
  if (!farTargetOk(ripLo, ripHi, cdlo, cdhi, true)) return gp(m, 0);
  const ca = prepareAccessedBit(m, caLo, caHi, cdhi);
  if (ca === -1) return ST_FAULT;
  const sa = outer && (ss & 0xfffc) !== 0 ? prepareAccessedBit(m, saLo, saHi, sdhi) : ACCESSED_ALREADY_SET;
  if (sa === -1) return ST_FAULT;
  commitAccessedPair(m, ca, sa);
  // ---- commit ----
  loadHiddenPart(m, CS, cs, cdlo, cdhi | 0x100, 0);
  m.setRip(ripLo, target64 ? ripHi : 0);
  if (outer) {
    // A compatibility-mode target: ESP (bits 31:0) zero-extended, then imm16 at the new SS.B width.
    loadReturnStack(m, ss, sdlo, sdhi, rspLo, target64 ? rspHi : 0);
    m.updateMode();
    adjustStack(m, release);
    nullInaccessibleSegments(m, rpl, false);
  } else {
    adjustStack(m, 2 * os + release);
  }
  m.updateMode();
  return ST_END;
}

/** JMP far m16:16/32/64 (FF /5) to a code segment at the same privilege. */
export function execJmpFar(m: Machine, i: Insn): number {
  const os = i.operandSize;
  effectiveAddress(m, i);
  const aLo = eaLo, aHi = eaHi;
  if (!checkOperandRange(m, i.seg, aLo, aHi, os + 2)) return ST_FAULT;
  const offLo = readSegmented(m, i.seg, aLo, aHi, os, m.readClass) & (os === 2 ? 0xffff : -1);
  if (m.faultVector >= 0) return ST_FAULT;
  const offHi = os === 8 ? m.valueHi : 0;
  let sLo = (aLo + os) | 0;
  let sHi = (sLo >>> 0) < (aLo >>> 0) ? (aHi + 1) | 0 : aHi;
  if (i.addressSize === 4) sHi = 0;
  else if (i.addressSize === 2) {
    sLo &= 0xffff;
    sHi = 0;
  }
  const sel = readSegmented(m, i.seg, sLo, sHi, 2, m.readClass) & 0xffff;
  if (m.faultVector >= 0) return ST_FAULT;
  const ec = sel & 0xfffc;
  if (ec === 0) return gp(m, 0);
  if (!readDescriptor(m, sel, 0)) return ST_FAULT;
  const dlo = m.descriptorLo, dhi = m.descriptorHi;
  const type = (dhi >>> 8) & 15;
  const dpl = (dhi >>> 13) & 3;
  const cpl = m.cpl;
  if (((dhi >>> 12) & 1) === 0) {
    if (type === 12) {
      m.unsupportedReason = "JMP far through a call gate is not modelled";
      return ST_UNSUP;
    }
    return gp(m, ec);
  }
  if ((type & 8) === 0) return gp(m, ec);
  // SDM JMP (CONFORMING-/NONCONFORMING-CODE-SEGMENT): L = D = 1, then the privilege checks, then
  // not present (#NP) — a not-present descriptor with L = D = 1 is #GP(sel).
  if (((dhi >>> 21) & 1) === 1 && ((dhi >>> 22) & 1) === 1) return gp(m, ec);
  if ((type & 4) !== 0 ? dpl > cpl : (sel & 3) > cpl || dpl !== cpl) return gp(m, ec);
  if (((dhi >>> 15) & 1) === 0) {
    m.raise(NP, ec);
    return ST_FAULT;
  }
  if (!farTargetOk(offLo, offHi, dlo, dhi, true)) return gp(m, 0);
  if (!setAccessedBit(m, m.descriptorAddrLo, m.descriptorAddrHi, dhi)) return ST_FAULT;
  loadHiddenPart(m, CS, (sel & 0xfffc) | cpl, dlo, dhi | 0x100, 0);
  m.setRip(offLo, ((dhi >>> 21) & 1) === 1 ? offHi : 0);
  m.updateMode();
  return ST_END;
}

// ============================================================================================
// IN / OUT (IOPL and the TSS I/O permission bitmap)
// ============================================================================================

/** SDM Vol. 1 §19.5: with CPL > IOPL every bit of the port range must be 0 in the bitmap. */
function ioAllowed(m: Machine, port: number, size: number): boolean {
  if (m.cpl <= iopl(m)) return true;
  const tb = TR * SEG_STRIDE;
  const ta = m.segments[tb + ATTR]!;
  const type = ta & A_TYPE;
  const limit = m.segments[tb + LIMIT]! >>> 0;
  if ((ta & (A_UNUSABLE | A_S)) !== 0 || (type !== 9 && type !== 11) || limit < 0x67) return false;
  const bLo = m.segments[tb + BASE_LO]!, bHi = m.segments[tb + BASE_HI]!;
  const at = (lo: number) => {
    const a = (bLo + lo) | 0;
    return [a, (a >>> 0) < (bLo >>> 0) ? (bHi + 1) | 0 : bHi] as const;
  };
  const [mLo, mHi] = at(0x66);
  const mapBase = readSystemTable(m, mLo, mHi, 2);
  if (m.faultVector >= 0) return false;
  const off = mapBase + (port >>> 3);
  if (off + 1 > limit) return false;
  const [wLo, wHi] = at(off);
  const bits = readSystemTable(m, wLo, wHi, 2);
  if (m.faultVector >= 0) return false;
  const want = ((1 << size) - 1) << (port & 7);
  return (bits & want) === 0;
}

export function execInOut(m: Machine, i: Insn, out: boolean): number {
  const port = i.operandForm === 1 ? m.regs[2 * RDX]! & 0xffff : i.immLo & 0xff;
  const size = i.operandSize;
  if (!ioAllowed(m, port, size)) {
    if (m.faultVector < 0) m.raise(GP, 0);
    return ST_FAULT;
  }
  m.ioDirection = out ? 1 : 0;
  m.ioPort = port;
  m.ioSize = size;
  if (out) {
    const v = m.regs[2 * RAX]!;
    m.ioValue = size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v >>> 0;
  } else {
    // A device register answers (devices.ts); elsewhere nothing does: all ones (docs/model-choices.md "IN").
    const v = deviceRead(m, port, size);
    setReg(m, RAX, size, v, 0);
    m.ioValue = v >>> 0;
  }
  return ST_IO;
}

export { ST_UNSUP, LIMIT, stackOffset, spLo, spHi, setStackPointer, jumpTo, DS, IF, AC_VEC };
