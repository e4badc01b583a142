// SYSCALL (0F 05) — SDM Vol. 2B "SYSCALL"; AMD APM Vol. 3 "SYSCALL" for the compatibility-mode
// path (SYSCALL-V1). Rule IDs from the reference digest §2.
import { UD, type Fault } from "../fault.ts";
import type { Segment } from "../../contract/state.ts";
import type { Machine } from "../machine/machine.ts";
import { EFER, in64BitMode, R11, RCX, RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SYSCALL_RULES = defineRules([
  { id: "SYSCALL-01", description: "SYSCALL outside 64-bit mode: #UD (intel) or enter through CSTAR (amd), per profile", source: "SDM Vol. 2B SYSCALL; AMD APM Vol. 3 SYSCALL" },
  { id: "SYSCALL-02", description: "SYSCALL with EFER.SCE = 0: #UD", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-03", description: "RCX <- RIP of the next instruction", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-04", description: "R11 <- RFLAGS as it stands during execution (RF = 0)", source: "SDM Vol. 2B SYSCALL; AMD APM Vol. 3 SYSCALL" },
  { id: "SYSCALL-05", description: "RFLAGS <- RFLAGS AND NOT FMASK[31:0]; RF = 0; bit 1 stays 1", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-06", description: "CS <- STAR[47:32] AND FFFCh with a fixed flat 64-bit DPL-0 cache; CPL <- 0 (GDT not read)", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-07", description: "SS <- STAR[47:32] + 8 (RPL bits not masked) with a fixed flat DPL-0 cache", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-08", description: "RIP <- LSTAR", source: "SDM Vol. 2B SYSCALL" },
  { id: "SYSCALL-09", description: "RSP, FS, GS and KERNEL_GS_BASE are left unchanged; nothing is pushed", source: "SDM Vol. 2B SYSCALL", recordedWith: "SYSCALL-06" },
  { id: "SYSCALL-10", description: "A single-step trap follows SYSCALL only if TF is 1 after it (after the FMASK mask)", source: "SDM Vol. 2B SYSCALL; Vol. 3A §18.3.1.4" },
  // The masked IF is in force when SYSCALL completes, so the boundary before the first handler
  // instruction already sees it (no window with IF = 1 on the user stack).
  { id: "SYSCALL-11", description: "The FMASK mask is part of SYSCALL: with IF in FMASK no maskable interrupt is taken before the first handler instruction (without it, one may be taken at that boundary, user RSP still loaded)", source: "SDM Vol. 2B SYSCALL; Vol. 3A §6.8.1", recordedWith: "SYSCALL-05" },
  { id: "SYSCALL-V1", description: "amd: SYSCALL in compatibility mode enters 64-bit mode as in 64-bit mode but RIP <- CSTAR", source: "AMD APM Vol. 3 SYSCALL" },
  { id: "SYSCALL-V2", description: "SS selector STAR[47:32] + 8 unmasked under both profiles (AMD pseudo-code agrees with Intel)", source: "AMD APM Vol. 3 SYSCALL", recordedWith: "SYSCALL-07" },
]);

/** SYSCALL-06: the CS cache SYSCALL forces (base 0, 4 GiB, execute/read accessed, DPL 0, L = 1). */
export function syscallCs(star: bigint): Segment {
  const selector = Number((star >> 32n) & 0xfffcn);
  return { selector, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
}

/** SYSCALL-07: the SS cache SYSCALL forces (base 0, 4 GiB, read/write accessed, DPL 0, B = 1). */
export function syscallSs(star: bigint): Segment {
  const selector = Number(((star >> 32n) + 8n) & 0xffffn);
  return { selector, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
}

/** SYSCALL on a transaction whose RIP already points past the instruction and whose RF is 0. */
export function execSyscall(t: Transaction): Fault | undefined {
  const m = t.now;
  const compatibility = !in64BitMode(m);
  // ---- checks ----
  if (compatibility && t.profile.syscallInCompatibilityMode === "ud") return t.fault("SYSCALL-01", UD);
  if ((m.efer & EFER.SCE) === 0n) return t.fault("SYSCALL-02", UD);
  // ---- updates (none can fault: no memory, no descriptor) ----
  t.writeGpr("SYSCALL-03", RCX, m.rip);
  t.writeGpr("SYSCALL-04", R11, m.rflags);
  const rflags = (m.rflags & ~(m.fmask & 0xffff_ffffn) & ~RFLAGS.RF) | RFLAGS.FIXED1;
  t.update("SYSCALL-05", { rflags });
  t.update("SYSCALL-06", { cs: syscallCs(m.star) });
  t.update("SYSCALL-07", { ss: syscallSs(m.star) });
  if (compatibility) t.update("SYSCALL-V1", { rip: m.cstar });
  else t.update("SYSCALL-08", { rip: m.lstar });
  t.setSingleStepTrap("SYSCALL-10", (rflags & RFLAGS.TF) !== 0n);
  return undefined;
}

/** SYSCALL alone: `state` at the SYSCALL (RIP = its address, 2 bytes long); the new machine or the fault. */
export function syscall(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 2, execSyscall);
}
