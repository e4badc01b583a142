// Vendor profiles as data: the one table both engines read. Every place where Intel and AMD differ
// in IA-32e mode reads one field here; no code asks "is this AMD?". Rule IDs are the digest's.

import { AMD_CPUID, INTEL_CPUID, type CpuidTable } from "./cpuid.ts";

/** Vendor behaviour the engines model: `intel` (the default, what the vectors assume) or `amd`. */
export type ProfileName = "intel" | "amd";
export const PROFILE_NAMES: readonly ProfileName[] = ["intel", "amd"];

export interface Profile {
  readonly name: ProfileName;
  /** SYSCALL-01 / SYSCALL-V1: SYSCALL in compatibility mode: #UD (Intel) or enter via CSTAR (AMD). */
  readonly syscallInCompatibilityMode: "ud" | "cstar";
  /** SYSRET-01 / SYSRET-V3: SYSRET in compatibility mode: #UD (Intel) or the legacy path (AMD). */
  readonly sysretInCompatibilityMode: "ud" | "legacy";
  /** SYSRET-03 / SYSRET-V1: non-canonical RCX: #GP(0) in ring 0 before any change (Intel), or loaded
   *  and the fetch faults at CPL 3 (AMD). */
  readonly sysretNonCanonicalRcx: "gp-in-ring0" | "fault-at-target";
  /** SYSRET-07 / SYSRET-V2: SS hidden part rewritten to flat DPL 3 (Intel) or left as it was (AMD). */
  readonly sysretSsAttributes: "reinitialise" | "keep";
  /** MSR-07: WRMSR of a non-canonical CSTAR: stored (Intel: CSTAR is not in the SDM's WRMSR
   *  canonical list and Intel never uses it) or #GP(0) (AMD APM Vol. 2 §6.1.1: an RIP written to
   *  LSTAR or CSTAR must be canonical — recalled, not re-read; Bochs checks it too). */
  readonly cstarCanonicalOnWrite: boolean;
  /** SEG-03: loading a NULL selector into FS/GS clears the base (Intel) or keeps it (AMD). */
  readonly nullSelectorClearsBase: boolean;
  /** SHADOW-04: whether an STI shadow also holds back NMI (implementation-specific). */
  readonly stiShadowBlocksNmi: boolean;
  /** SYSENTER and SYSEXIT in IA-32e mode (64-bit and compatibility mode): valid (Intel: SDM
   *  SYSENTER/SYSEXIT, "64-Bit Mode: Valid") or #UD before anything else (AMD APM Vol. 3: invalid in
   *  long mode). docs/model-choices.md rows "SYSENTER", "SYSEXIT". */
  readonly sysenterInIa32eMode: "valid" | "ud";
  /** CPUID: the leaves the modelled CPU reports under this vendor (contract/cpuid.ts). */
  readonly cpuid: CpuidTable;
}

export const INTEL: Profile = {
  name: "intel",
  syscallInCompatibilityMode: "ud",
  sysretInCompatibilityMode: "ud",
  sysretNonCanonicalRcx: "gp-in-ring0",
  sysretSsAttributes: "reinitialise",
  cstarCanonicalOnWrite: false,
  nullSelectorClearsBase: true,
  stiShadowBlocksNmi: false,
  sysenterInIa32eMode: "valid",
  cpuid: INTEL_CPUID,
};

export const AMD: Profile = {
  name: "amd",
  syscallInCompatibilityMode: "cstar",
  sysretInCompatibilityMode: "legacy",
  sysretNonCanonicalRcx: "fault-at-target",
  sysretSsAttributes: "keep",
  cstarCanonicalOnWrite: true,
  nullSelectorClearsBase: false,
  stiShadowBlocksNmi: false,
  sysenterInIa32eMode: "ud",
  cpuid: AMD_CPUID,
};

export const PROFILES: Readonly<Record<ProfileName, Profile>> = { intel: INTEL, amd: AMD };

export function profileByName(name: ProfileName): Profile {
  return PROFILES[name];
}
