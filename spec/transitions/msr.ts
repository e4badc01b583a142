// RDMSR (0F 32) and WRMSR (0F 30) for the MSRs in the modelled state — SDM Vol. 2B "RDMSR",
// "WRMSR"; Vol. 4 for the MSR layouts. Rule IDs from the digest §16.
import { GP, type Fault } from "../fault.ts";
import type { Machine, MachineRegisters } from "../machine/machine.ts";
import { canonical, CR0, EFER, MSR, RAX, RCX, RDX } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAloneOrUnsupported } from "../transaction/alone.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const MSR_RULES = defineRules([
  { id: "MSR-01", description: "RDMSR / WRMSR at CPL != 0: #GP(0)", source: "SDM Vol. 2B RDMSR, WRMSR" },
  { id: "MSR-02", description: "ECX names an MSR this CPU does not implement: #GP(0)", source: "SDM Vol. 2B RDMSR, WRMSR" },
  { id: "MSR-03", description: "RDMSR: EDX:EAX <- MSR[ECX]; bits 63:32 of RAX and RDX cleared", source: "SDM Vol. 2B RDMSR" },
  { id: "MSR-04", description: "WRMSR: MSR[ECX] <- EDX:EAX (bits 63:32 of RAX and RDX ignored)", source: "SDM Vol. 2B WRMSR" },
  { id: "MSR-05", description: "WRMSR of a non-canonical (48-bit) value to FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, SYSENTER_ESP or SYSENTER_EIP: #GP(0)", source: "SDM Vol. 2B WRMSR" },
  { id: "MSR-06", description: "WRMSR EFER: bits other than SCE, LME, LMA, NXE set: #GP(0); LME changed while CR0.PG = 1: #GP(0); LMA is read-only (written value ignored)", source: "SDM Vol. 2B WRMSR; Vol. 3A §2.2.1" },
  { id: "MSR-07", description: "WRMSR STAR takes any value; FMASK bits 63:32 set: #GP(0); CSTAR non-canonical: #GP(0) or stored, per profile", source: "SDM Vol. 3A §5.8.8 Figure 5-14; AMD APM Vol. 2 §6.1.1" },
  { id: "MSR-08", description: "WRMSR FS_BASE / GS_BASE changes the live segment base at once; KERNEL_GS_BASE only matters to the next SWAPGS", source: "SDM Vol. 3A §3.4.4.1" },
  { id: "MSR-10", description: "an architectural MSR outside the modelled state (PAT; WRMSR to TSC, TSC_AUX, APIC_BASE): the step stops as unsupported", source: "SDM Vol. 4 Table 2-2" },
  { id: "MSR-11", description: "IA32_SYSENTER_CS holds 32 bits: WRMSR stores EAX (EDX ignored), RDMSR returns them with EDX = 0; SYSENTER_ESP / SYSENTER_EIP are 64-bit (canonical on WRMSR, MSR-05)", source: "SDM Vol. 4 Table 2-2; Vol. 2B SYSENTER" },
  { id: "MSR-12", description: "RDMSR IA32_APIC_BASE returns the state's value (power-up FEE00900H); the model has no local APIC to reprogram, so WRMSR to it is unsupported (MSR-10)", source: "SDM Vol. 3A §11.4.4 (IA32_APIC_BASE)" },
  { id: "MSR-13", description: "RDMSR IA32_TIME_STAMP_COUNTER and IA32_TSC_AUX return 0 (the model has no time: the TSC reads 0 and never advances); WRMSR to them is unsupported (MSR-10)", source: "SDM Vol. 4 Table 2-2; docs/model-choices.md \"RDTSC, RDTSCP, RDPMC\"" },
]);

/** MSRs every x86-64 CPU implements but the model cannot write (or, PAT, read): not "unknown"
 *  (no #GP); the step stops as unsupported. */
const UNMODELLED_MSRS: ReadonlyMap<number, string> = new Map([
  [MSR.TSC, "IA32_TIME_STAMP_COUNTER"],
  [MSR.APIC_BASE, "IA32_APIC_BASE"],
  [MSR.PAT, "IA32_PAT"],
  [MSR.TSC_AUX, "IA32_TSC_AUX"],
]);

const EFER_WRITABLE = EFER.SCE | EFER.LME | EFER.NXE;

/** The value of a modelled MSR, or undefined for any other index, with the rule that reads it. */
function readMsr(m: MachineRegisters, index: number): bigint | undefined {
  switch (index) {
    case MSR.SYSENTER_CS: return m.sysenterCs;
    case MSR.SYSENTER_ESP: return m.sysenterEsp;
    case MSR.SYSENTER_EIP: return m.sysenterEip;
    case MSR.APIC_BASE: return m.apicBase;
    case MSR.TSC: case MSR.TSC_AUX: return 0n;
    case MSR.EFER: return m.efer;
    case MSR.STAR: return m.star;
    case MSR.LSTAR: return m.lstar;
    case MSR.CSTAR: return m.cstar;
    case MSR.FMASK: return m.fmask;
    case MSR.FS_BASE: return m.fs.base;
    case MSR.GS_BASE: return m.gs.base;
    case MSR.KERNEL_GS_BASE: return m.kernelGsBase;
    default: return undefined;
  }
}

/** MSR-02 / MSR-10: an index that is not a modelled MSR. */
function notModelled(t: Transaction, index: number): Fault | UnsupportedOutcome {
  const name = UNMODELLED_MSRS.get(index);
  if (name === undefined) return t.fault("MSR-02", GP, 0);
  return t.unsupported("MSR-10", `MSR ${name} (0x${index.toString(16)}) is not part of the modelled state`);
}

export function execRdmsr(t: Transaction): Fault | UnsupportedOutcome | undefined {
  if (t.cpl() !== 0) return t.fault("MSR-01", GP, 0);
  const index = Number(t.gpr(RCX) & 0xffff_ffffn);
  const value = readMsr(t.m, index);
  if (value === undefined) return notModelled(t, index);
  if (index === MSR.APIC_BASE) t.hit("MSR-12");
  else if (index === MSR.TSC || index === MSR.TSC_AUX) t.hit("MSR-13");
  else if (index === MSR.SYSENTER_CS) t.hit("MSR-11");
  t.writeGpr("MSR-03", RAX, value & 0xffff_ffffn);
  t.writeGpr("MSR-03", RDX, value >> 32n);
  return undefined;
}

export function execWrmsr(t: Transaction): Fault | UnsupportedOutcome | undefined {
  const m = t.m;
  if (t.cpl() !== 0) return t.fault("MSR-01", GP, 0);
  const index = Number(t.gpr(RCX) & 0xffff_ffffn);
  const value = ((t.gpr(RDX) & 0xffff_ffffn) << 32n) | (t.gpr(RAX) & 0xffff_ffffn);
  t.hit("MSR-04");
  switch (index) {
    case MSR.EFER: {
      if ((value & ~(EFER_WRITABLE | EFER.LMA)) !== 0n) return t.fault("MSR-06", GP, 0);
      if ((m.cr0 & CR0.PG) !== 0n && (value & EFER.LME) !== (m.efer & EFER.LME)) return t.fault("MSR-06", GP, 0);
      t.update("MSR-06", { efer: (value & EFER_WRITABLE) | (m.efer & EFER.LMA) });
      return undefined;
    }
    case MSR.STAR:
      t.update("MSR-07", { star: value });
      return undefined;
    case MSR.LSTAR:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-04", { lstar: value });
      return undefined;
    case MSR.CSTAR:
      if (t.profile.cstarCanonicalOnWrite && !canonical(value)) return t.fault("MSR-07", GP, 0);
      t.update("MSR-07", { cstar: value });
      return undefined;
    case MSR.FMASK:
      if (value >> 32n !== 0n) return t.fault("MSR-07", GP, 0);
      t.update("MSR-07", { fmask: value });
      return undefined;
    case MSR.FS_BASE:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-08", { fs: { ...m.fs, base: value } });
      return undefined;
    case MSR.GS_BASE:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-08", { gs: { ...m.gs, base: value } });
      return undefined;
    case MSR.KERNEL_GS_BASE:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-08", { kernelGsBase: value });
      return undefined;
    case MSR.SYSENTER_CS:
      t.update("MSR-11", { sysenterCs: value & 0xffff_ffffn });
      return undefined;
    case MSR.SYSENTER_ESP:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-11", { sysenterEsp: value });
      return undefined;
    case MSR.SYSENTER_EIP:
      if (!canonical(value)) return t.fault("MSR-05", GP, 0);
      t.update("MSR-11", { sysenterEip: value });
      return undefined;
    default:
      return notModelled(t, index);
  }
}

/** RDMSR alone (2 bytes): the new machine, the fault, or `unsupported` (MSR-10). */
export function rdmsr(state: Machine, profile: Profile): Machine | Fault | UnsupportedOutcome {
  return runInstructionAloneOrUnsupported(state, profile, 2, execRdmsr);
}

/** WRMSR alone (2 bytes): the new machine, the fault, or `unsupported` (MSR-10). */
export function wrmsr(state: Machine, profile: Profile): Machine | Fault | UnsupportedOutcome {
  return runInstructionAloneOrUnsupported(state, profile, 2, execWrmsr);
}
