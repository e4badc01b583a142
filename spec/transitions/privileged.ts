// Privileged instructions whose effect lies outside the modelled state or is a constant of the
// modelled CPU: WBINVD/WBNOINVD/INVD (no caches), INVLPG (no TLB), RDTSC/RDTSCP (no time: the TSC
// reads 0), RDPMC (no performance counters), XGETBV/XSETBV (XCR0 fixed at its reset value). Each
// keeps its architectural checks, in the SDM's order; docs/model-choices.md has the constants.
import { GP, UD, type Fault } from "../fault.ts";
import { CR4, RAX, RCX, RDX } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const PRIVILEGED_RULES = defineRules([
  { id: "CACHE-01", description: "WBINVD / WBNOINVD / INVD at CPL != 0: #GP(0)", source: "SDM Vol. 2B WBINVD, WBNOINVD, Vol. 2A INVD" },
  { id: "CACHE-02", description: "WBINVD / WBNOINVD / INVD at CPL 0: no architectural effect in the model (no caches)", source: "SDM Vol. 2B WBINVD, WBNOINVD, Vol. 2A INVD" },
  { id: "INVLPG-01", description: "INVLPG at CPL != 0: #GP(0)", source: "SDM Vol. 2A INVLPG" },
  { id: "INVLPG-02", description: "INVLPG at CPL 0: no effect (no TLB is modelled); the operand is not accessed, so it never faults", source: "SDM Vol. 2A INVLPG" },
  { id: "RDTSC-01", description: "RDTSC with CR4.TSD = 1 at CPL != 0: #GP(0)", source: "SDM Vol. 2B RDTSC" },
  { id: "RDTSC-02", description: "RDTSC: EDX:EAX <- the TSC, which reads 0 in the model (no time passes); RAX and RDX bits 63:32 cleared", source: "SDM Vol. 2B RDTSC; docs/model-choices.md" },
  { id: "RDTSCP-01", description: "RDTSCP with CR4.TSD = 1 at CPL != 0: #GP(0)", source: "SDM Vol. 2B RDTSCP" },
  { id: "RDTSCP-02", description: "RDTSCP: EDX:EAX <- the TSC (0) and ECX <- IA32_TSC_AUX (0); RAX, RDX, RCX bits 63:32 cleared", source: "SDM Vol. 2B RDTSCP; docs/model-choices.md" },
  { id: "RDPMC-01", description: "RDPMC with CR4.PCE = 0 at CPL != 0: #GP(0)", source: "SDM Vol. 2B RDPMC" },
  { id: "RDPMC-02", description: "RDPMC: the modelled CPU has no performance-monitoring counters, so every ECX names an invalid counter: #GP(0)", source: "SDM Vol. 2B RDPMC (\"#GP(0) If the value in ECX does not specify a valid counter\")" },
  { id: "XGETBV-01", description: "XGETBV with CR4.OSXSAVE = 0: #UD", source: "SDM Vol. 2C XGETBV" },
  { id: "XGETBV-02", description: "XGETBV with ECX = 0: EDX:EAX <- XCR0 = 1 (x87 only, its reset value; XSETBV cannot change it in the model)", source: "SDM Vol. 2C XGETBV; Vol. 1 §13.3" },
  { id: "XGETBV-03", description: "XGETBV with any other ECX: #GP(0) (XINUSE, ECX = 1, is not supported)", source: "SDM Vol. 2C XGETBV" },
  { id: "XSETBV-01", description: "XSETBV with CR4.OSXSAVE = 0: #UD", source: "SDM Vol. 2C XSETBV" },
  { id: "XSETBV-02", description: "XSETBV at CPL != 0: #GP(0)", source: "SDM Vol. 2C XSETBV" },
  { id: "XSETBV-03", description: "XSETBV at CPL 0: XCR0 is not part of the modelled state, the step stops as unsupported", source: "SDM Vol. 2C XSETBV" },
]);

/** XCR0 of the modelled CPU: its reset value, x87 state only. */
const XCR0 = 1n;

/** WBINVD, WBNOINVD and INVD: the privilege check; nothing to update. */
export function execCache(t: Transaction): Fault | undefined {
  if (t.cpl() !== 0) return t.fault("CACHE-01", GP, 0);
  t.hit("CACHE-02");
  return undefined;
}

/** INVLPG: the privilege check; nothing to update (the operand is not even accessed). */
export function execInvlpg(t: Transaction): Fault | undefined {
  if (t.cpl() !== 0) return t.fault("INVLPG-01", GP, 0);
  t.hit("INVLPG-02");
  return undefined;
}

/** CR4.TSD = 1 makes the TSC readable at CPL 0 only. */
function timeStampDisabled(t: Transaction): boolean {
  return (t.m.cr4 & CR4.TSD) !== 0n && t.cpl() !== 0;
}

export function execRdtsc(t: Transaction): Fault | undefined {
  if (timeStampDisabled(t)) return t.fault("RDTSC-01", GP, 0);
  t.writeGpr("RDTSC-02", RAX, 0n);
  t.writeGpr("RDTSC-02", RDX, 0n);
  return undefined;
}

export function execRdtscp(t: Transaction): Fault | undefined {
  if (timeStampDisabled(t)) return t.fault("RDTSCP-01", GP, 0);
  t.writeGpr("RDTSCP-02", RAX, 0n);
  t.writeGpr("RDTSCP-02", RDX, 0n);
  t.writeGpr("RDTSCP-02", RCX, 0n);
  return undefined;
}

export function execRdpmc(t: Transaction): Fault {
  if ((t.m.cr4 & CR4.PCE) === 0n && t.cpl() !== 0) return t.fault("RDPMC-01", GP, 0);
  return t.fault("RDPMC-02", GP, 0);
}

export function execXgetbv(t: Transaction): Fault | undefined {
  if ((t.m.cr4 & CR4.OSXSAVE) === 0n) return t.fault("XGETBV-01", UD);
  if ((t.gpr(RCX) & 0xffff_ffffn) !== 0n) return t.fault("XGETBV-03", GP, 0);
  t.writeGpr("XGETBV-02", RAX, XCR0 & 0xffff_ffffn);
  t.writeGpr("XGETBV-02", RDX, XCR0 >> 32n);
  return undefined;
}

export function execXsetbv(t: Transaction): Fault | UnsupportedOutcome {
  if ((t.m.cr4 & CR4.OSXSAVE) === 0n) return t.fault("XSETBV-01", UD);
  if (t.cpl() !== 0) return t.fault("XSETBV-02", GP, 0);
  return t.unsupported("XSETBV-03", "XSETBV: XCR0 is not part of the modelled state");
}
