// SYSRET (0F 07 to compatibility mode, REX.W 0F 07 = SYSRETQ to 64-bit mode) — SDM Vol. 2B
// "SYSRET"; AMD APM Vol. 3 "SYSRET" for the vendor differences. Rule IDs from the digest §3.
import { GP, UD, type Fault } from "../fault.ts";
import type { Segment } from "../../contract/state.ts";
import { segment, type Machine, type MachineRegisters } from "../machine/machine.ts";
import { canonical, EFER, in64BitMode, R11, RCX, RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import type { Instruction } from "../decode/instruction.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SYSRET_RULES = defineRules([
  { id: "SYSRET-01", description: "SYSRET with EFER.SCE = 0, or outside 64-bit mode under the intel profile: #UD", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-02", description: "SYSRET at CPL != 0: #GP(0)", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-03", description: "intel: SYSRETQ with a non-canonical RCX: #GP(0) at CPL 0 before any change", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-04", description: "RIP <- RCX (SYSRETQ) or ECX zero-extended (32-bit form)", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-05", description: "RFLAGS <- (R11 AND 3C7FD7h) OR 2: RF, VM and reserved bits 0", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-06", description: "CS <- (STAR[63:48] + 16) OR 3 (SYSRETQ, L = 1) or STAR[63:48] OR 3 (32-bit, D = 1), fixed flat DPL-3 cache; CPL <- 3", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-07", description: "intel: SS <- (STAR[63:48] + 8) OR 3 with a fixed flat DPL-3 cache (whatever SS held)", source: "SDM Vol. 2B SYSRET" },
  { id: "SYSRET-08", description: "RSP, FS and GS are left unchanged", source: "SDM Vol. 2B SYSRET", recordedWith: ["SYSRET-06", "SYSRET-V3"] },
  { id: "SYSRET-09", description: "A single-step trap follows SYSRET if the TF loaded from R11 is 1: taken at CPL 3 before the first user instruction", source: "SDM Vol. 2B SYSRET; Linux do_syscall_64 note; kvm-unit-tests msr.c" },
  // The step ends the shadow in force before SYSRET (SHADOW-02) and SYSRET opens none.
  { id: "SYSRET-10", description: "SYSRET opens no interrupt shadow: with R11.IF = 1 a pending interrupt is taken at the first user boundary, at CPL 3", source: "SDM Vol. 2B SYSRET; Vol. 3A §6.8.3", recordedWith: ["SYSRET-06", "SYSRET-V3"] },
  { id: "SYSRET-V1", description: "amd: a non-canonical RCX is loaded; the fetch at CPL 3 faults", source: "AMD APM Vol. 3 SYSRET" },
  { id: "SYSRET-V2", description: "amd: only the SS selector changes; its hidden part keeps base, limit and attributes", source: "AMD APM Vol. 3 SYSRET" },
  { id: "SYSRET-V3", description: "amd: SYSRET in compatibility mode: CS <- STAR[63:48] OR 3 (32-bit), SS selector as SYSRET-07, IF <- 1 (R11 not used), RIP <- ECX", source: "AMD APM Vol. 3 SYSRET" },
  { id: "SYSRET-V4", description: "amd: RFLAGS from R11 with RF and VM cleared: the same value as SYSRET-05", source: "AMD APM Vol. 3 SYSRET", recordedWith: "SYSRET-05" },
  { id: "SYSRET-V5", description: "SS selector RPL forced to 3 under both profiles (older APM text omits it; digest recommendation)", source: "SDM Vol. 2B SYSRET; NASM reference for AMD doc 21086", recordedWith: ["SYSRET-07", "SYSRET-V2"] },
]);

export type SysretForm = "64" | "32";

/** SYSRET-06: the CS cache SYSRET forces (base 0, 4 GiB, execute/read accessed, DPL 3). */
export function sysretCs(star: bigint, form: SysretForm): Segment {
  const base = (star >> 48n) & 0xffffn;
  const selector = Number(((form === "64" ? base + 16n : base) | 3n) & 0xffffn);
  const l = form === "64" ? 1 : 0;
  return { selector, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 3, present: 1, db: 1 - l, l, g: 1, avl: 0, unusable: 0 };
}

/** SYSRET-07 / SYSRET-V5: the SS selector, (STAR[63:48] + 8) OR 3. */
export function sysretSsSelector(star: bigint): number {
  return Number((((star >> 48n) + 8n) | 3n) & 0xffffn);
}

/** SYSRET-07 (intel): SS hidden part rewritten to flat, read/write accessed, DPL 3, B = 1. */
export function sysretSs(star: bigint): Segment {
  return { selector: sysretSsSelector(star), base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
}

/** SS per the profile: reinitialised (SYSRET-07) or only the selector changed (SYSRET-V2); `m` is
 *  the machine SYSRET started on (its STAR and SS). */
function loadSysretSs(t: Transaction, m: MachineRegisters): void {
  if (t.profile.sysretSsAttributes === "reinitialise") t.update("SYSRET-07", { ss: sysretSs(m.star) });
  else t.update("SYSRET-V2", { ss: segment({ ...m.ss, selector: sysretSsSelector(m.star) }) });
}

/** SYSRET on a transaction whose RIP already points past the instruction. */
export function sysretOn(t: Transaction, form: SysretForm): Fault | undefined {
  const m = t.now;
  const compatibility = !in64BitMode(m);
  // ---- checks, in the SDM's order ----
  if (compatibility && t.profile.sysretInCompatibilityMode === "ud") return t.fault("SYSRET-01", UD);
  if ((m.efer & EFER.SCE) === 0n) return t.fault("SYSRET-01", UD);
  if (t.cpl() !== 0) return t.fault("SYSRET-02", GP, 0);
  if (compatibility) return legacySysret(t);
  const rcx = t.gpr(RCX);
  if (form === "64" && !canonical(rcx)) {
    if (t.profile.sysretNonCanonicalRcx === "gp-in-ring0") return t.fault("SYSRET-03", GP, 0);
    t.hit("SYSRET-V1"); // amd: loaded as it is; the fetch at CPL 3 faults
  }
  // ---- updates (none can fault: no memory, no descriptor) ----
  t.update("SYSRET-04", { rip: form === "64" ? rcx : rcx & 0xffff_ffffn });
  const rflags = (t.gpr(R11) & 0x3c_7fd7n) | RFLAGS.FIXED1;
  t.update("SYSRET-05", { rflags });
  t.update("SYSRET-06", { cs: sysretCs(m.star, form) });
  loadSysretSs(t, m);
  t.setSingleStepTrap("SYSRET-09", (rflags & RFLAGS.TF) !== 0n);
  return undefined;
}

/** SYSRET-V3: the AMD "non-64-bit mode" path, taken from compatibility mode (always 32-bit form). */
function legacySysret(t: Transaction): undefined {
  const m = t.m;
  const rflags = m.rflags | RFLAGS.IF;
  t.update("SYSRET-V3", { cs: sysretCs(m.star, "32"), rflags, rip: t.gpr(RCX) & 0xffff_ffffn });
  loadSysretSs(t, m);
  t.setSingleStepTrap("SYSRET-09", (rflags & RFLAGS.TF) !== 0n);
  return undefined;
}

/** SYSRET in the instruction table: REX.W selects SYSRETQ (the return to 64-bit mode). */
export function execSysret(t: Transaction, insn: Instruction): Fault | undefined {
  return sysretOn(t, insn.rexW ? "64" : "32");
}

/** SYSRET alone: `state` at the instruction (SYSRETQ 3 bytes, SYSRET 2); the new machine or the fault. */
export function sysret(state: Machine, form: SysretForm, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, form === "64" ? 3 : 2, (t) => sysretOn(t, form));
}
