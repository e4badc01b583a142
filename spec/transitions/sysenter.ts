// SYSENTER (0F 34) and SYSEXIT (0F 35; REX.W 0F 35 returns to 64-bit mode) in IA-32e mode — SDM
// Vol. 2B "SYSENTER", "SYSEXIT" (FRED and CET branches out of scope). Like SYSCALL/SYSRET they load
// fixed CS/SS caches from an MSR and never read the GDT. The profile decides whether they exist in
// IA-32e mode at all (Intel: yes, in 64-bit and compatibility mode; AMD: #UD in long mode).
import { GP, UD, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { Segment } from "../../contract/state.ts";
import type { Machine, MachineRegisters } from "../machine/machine.ts";
import { canonical, RCX, RDX, RFLAGS, RSP } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules } from "../rules/rule.ts";
import { runInstructionAlone } from "../transaction/alone.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const SYSENTER_RULES = defineRules([
  { id: "SYSENTER-01", description: "SYSENTER in IA-32e mode: valid in 64-bit and compatibility mode at any CPL (intel); #UD (amd, Profile.sysenterInIa32eMode)", source: "SDM Vol. 2B SYSENTER; AMD APM Vol. 3 SYSENTER" },
  { id: "SYSENTER-02", description: "SYSENTER with IA32_SYSENTER_CS[15:2] = 0: #GP(0)", source: "SDM Vol. 2B SYSENTER" },
  { id: "SYSENTER-03", description: "SYSENTER clears RFLAGS.VM and IF (RF as every instruction; TF is kept, so a single-step trap follows at the entry point)", source: "SDM Vol. 2B SYSENTER" },
  { id: "SYSENTER-04", description: "SYSENTER in IA-32e mode: RSP <- IA32_SYSENTER_ESP, RIP <- IA32_SYSENTER_EIP (64 bits)", source: "SDM Vol. 2B SYSENTER" },
  { id: "SYSENTER-05", description: "SYSENTER: CS.selector <- SYSENTER_CS[15:0] AND FFFCH, cache fixed: base 0, limit 4 GiB (G = 1), type 11, S 1, DPL 0, P 1, L 1, D 0; CPL <- 0", source: "SDM Vol. 2B SYSENTER" },
  { id: "SYSENTER-06", description: "SYSENTER: SS.selector <- CS.selector + 8, cache fixed: base 0, limit 4 GiB, type 3, S 1, DPL 0, P 1, B 1, G 1", source: "SDM Vol. 2B SYSENTER" },
  { id: "SYSEXIT-00", description: "SYSEXIT in IA-32e mode: #UD under amd (Profile.sysenterInIa32eMode), before any other check", source: "AMD APM Vol. 3 SYSEXIT" },
  { id: "SYSEXIT-01", description: "SYSEXIT at CPL != 0: #GP(0)", source: "SDM Vol. 2B SYSEXIT" },
  { id: "SYSEXIT-02", description: "SYSEXIT with IA32_SYSENTER_CS[15:2] = 0: #GP(0)", source: "SDM Vol. 2B SYSEXIT" },
  { id: "SYSEXIT-03", description: "SYSEXIT with a 64-bit operand size and RCX or RDX not canonical: #GP(0)", source: "SDM Vol. 2B SYSEXIT, 64-Bit Mode Exceptions" },
  { id: "SYSEXIT-04", description: "SYSEXIT: RSP <- RCX, RIP <- RDX (64-bit operand size) or ECX, EDX zero-extended (32-bit); RFLAGS unchanged", source: "SDM Vol. 2B SYSEXIT" },
  { id: "SYSEXIT-05", description: "SYSEXIT: CS.selector <- (SYSENTER_CS[15:0] + 32 (64-bit) or + 16 (32-bit)) OR 3, cache fixed: base 0, limit 4 GiB, type 11, S 1, DPL 3, P 1, L 1 D 0 (64-bit) or L 0 D 1 (32-bit); CPL <- 3", source: "SDM Vol. 2B SYSEXIT" },
  { id: "SYSEXIT-06", description: "SYSEXIT: SS.selector <- CS.selector + 8, cache fixed: base 0, limit 4 GiB, type 3, S 1, DPL 3, P 1, B 1, G 1", source: "SDM Vol. 2B SYSEXIT" },
]);

/** A flat 4 GiB segment cache as SYSENTER/SYSEXIT load it (limit FFFFFH with G = 1). */
function flat(selector: number, type: number, dpl: number, l: number, db: number): Segment {
  return { selector: selector & 0xffff, base: 0n, limit: 0xffff_ffff, type, s: 1, dpl, present: 1, db, l, g: 1, avl: 0, unusable: 0 };
}

/** IA32_SYSENTER_CS[15:2] = 0: the MSR names no code segment. */
function sysenterCsNull(m: MachineRegisters): boolean {
  return (m.sysenterCs & 0xfffcn) === 0n;
}

export function execSysenter(t: Transaction): Fault | undefined {
  const m = t.m;
  // ---- checks ----
  if (t.profile.sysenterInIa32eMode === "ud") return t.fault("SYSENTER-01", UD);
  t.hit("SYSENTER-01");
  if (sysenterCsNull(m)) return t.fault("SYSENTER-02", GP, 0);
  // ---- updates (none can fault: no memory, no descriptor) ----
  t.update("SYSENTER-03", { rflags: m.rflags & ~(RFLAGS.VM | RFLAGS.IF) });
  t.writeGpr("SYSENTER-04", RSP, m.sysenterEsp);
  const cs = Number(m.sysenterCs & 0xfffcn);
  t.update("SYSENTER-04", { rip: m.sysenterEip });
  t.update("SYSENTER-05", { cs: flat(cs, 11, 0, 1, 0) });
  t.update("SYSENTER-06", { ss: flat(cs + 8, 3, 0, 0, 1) });
  return undefined;
}

/** SYSEXIT with operand size `size` (8: REX.W, back to 64-bit mode; 4: to compatibility mode). */
export function sysexitOn(t: Transaction, size: 4 | 8): Fault | undefined {
  const m = t.m;
  // ---- checks, in the SDM's order ----
  if (t.profile.sysenterInIa32eMode === "ud") return t.fault("SYSEXIT-00", UD);
  if (sysenterCsNull(m)) return t.fault("SYSEXIT-02", GP, 0);
  if (t.cpl() !== 0) return t.fault("SYSEXIT-01", GP, 0);
  const to64 = size === 8;
  const rsp = to64 ? t.gpr(RCX) : t.gpr(RCX) & 0xffff_ffffn;
  const rip = to64 ? t.gpr(RDX) : t.gpr(RDX) & 0xffff_ffffn;
  if (to64 && (!canonical(rsp) || !canonical(rip))) return t.fault("SYSEXIT-03", GP, 0);
  // ---- updates ----
  t.writeGpr("SYSEXIT-04", RSP, rsp);
  t.update("SYSEXIT-04", { rip });
  const cs = (Number(m.sysenterCs & 0xffffn) + (to64 ? 32 : 16)) | 3;
  t.update("SYSEXIT-05", { cs: to64 ? flat(cs, 11, 3, 1, 0) : flat(cs, 11, 3, 0, 1) });
  t.update("SYSEXIT-06", { ss: flat(cs + 8, 3, 3, 0, 1) });
  return undefined;
}

export function execSysexit(t: Transaction, insn: Instruction): Fault | undefined {
  return sysexitOn(t, insn.operandSize === 8 ? 8 : 4);
}

/** SYSENTER alone (2 bytes): the new machine or the fault. */
export function sysenter(state: Machine, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, 2, execSysenter);
}

/** SYSEXIT alone: `size` 8 = REX.W 0F 35 (3 bytes), 4 = 0F 35. */
export function sysexit(state: Machine, size: 4 | 8, profile: Profile): Machine | Fault {
  return runInstructionAlone(state, profile, size === 8 ? 3 : 2, (t) => sysexitOn(t, size));
}
