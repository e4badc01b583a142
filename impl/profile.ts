// Vendor behaviour as data, read in one place per rule (reference digest §2, §3, §22).
import type { ProfileName } from "../spec/format/profile.ts";

export interface VendorProfile {
  readonly name: ProfileName;
  /** SYSCALL-V1: SYSCALL in compatibility mode enters 64-bit mode at CSTAR (AMD) instead of #UD. */
  readonly compatSyscall: boolean;
  /** SYSRET-V3: SYSRET in compatibility mode takes the legacy path (AMD) instead of #UD. */
  readonly compatSysret: boolean;
  /** SYSRET-03 / SYSRET-V1: a non-canonical RCX faults at the SYSRET in ring 0 (Intel), or is
   *  loaded and faults on the next fetch at CPL 3 (AMD). */
  readonly sysretNonCanonicalInRing0: boolean;
  /** SYSRET-V2: SYSRET only rewrites the SS selector, keeping its hidden attributes (AMD). */
  readonly sysretKeepsSsAttributes: boolean;
  /** SEG-03: loading a NULL selector into FS/GS keeps the base (AMD) instead of clearing it. */
  readonly nullSegmentKeepsBase: boolean;
  /** MSR-07: WRMSR of a non-canonical CSTAR is #GP(0) (AMD); Intel stores any value. */
  readonly cstarCanonicalOnWrite: boolean;
}

export const INTEL: VendorProfile = {
  name: "intel",
  compatSyscall: false,
  compatSysret: false,
  sysretNonCanonicalInRing0: true,
  sysretKeepsSsAttributes: false,
  nullSegmentKeepsBase: false,
  cstarCanonicalOnWrite: false,
};

export const AMD: VendorProfile = {
  name: "amd",
  compatSyscall: true,
  compatSysret: true,
  sysretNonCanonicalInRing0: false,
  sysretKeepsSsAttributes: true,
  nullSegmentKeepsBase: true,
  cstarCanonicalOnWrite: true,
};

export function profileOf(name: ProfileName): VendorProfile {
  return name === "amd" ? AMD : INTEL;
}
