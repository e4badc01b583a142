// Privileged instructions whose effect lies outside the modelled state: WBINVD/INVD (no caches are
// modelled), INVLPG (no TLB), RDTSC (no TSC), SYSEXIT (the SYSENTER MSRs are not modelled). Each
// keeps its architectural fault checks; where the effect would need unmodelled state, the step
// stops with an `unsupported` outcome instead of inventing a value.
import { GP, type Fault } from "../fault.ts";
import { CR4 } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { UnsupportedOutcome } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";

export const PRIVILEGED_RULES = defineRules([
  { id: "CACHE-01", description: "WBINVD / INVD at CPL != 0: #GP(0)", source: "SDM Vol. 2B WBINVD, Vol. 2A INVD" },
  { id: "CACHE-02", description: "WBINVD / INVD at CPL 0: no architectural effect in the model (no caches)", source: "SDM Vol. 2B WBINVD, Vol. 2A INVD" },
  { id: "INVLPG-01", description: "INVLPG at CPL != 0: #GP(0)", source: "SDM Vol. 2A INVLPG" },
  { id: "INVLPG-02", description: "INVLPG at CPL 0: no effect (no TLB is modelled); the operand is not accessed, so it never faults", source: "SDM Vol. 2A INVLPG" },
  { id: "RDTSC-01", description: "RDTSC with CR4.TSD = 1 at CPL != 0: #GP(0)", source: "SDM Vol. 2B RDTSC" },
  { id: "RDTSC-02", description: "RDTSC otherwise: the TSC is not modelled, the step stops as unsupported", source: "SDM Vol. 2B RDTSC" },
  { id: "SYSEXIT-01", description: "SYSEXIT at CPL != 0: #GP(0)", source: "SDM Vol. 2B SYSEXIT" },
  { id: "SYSEXIT-02", description: "SYSEXIT at CPL 0: the SYSENTER MSRs are not modelled, the step stops as unsupported", source: "SDM Vol. 2B SYSEXIT" },
]);

/** WBINVD and INVD: the privilege check; nothing to update. */
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

export function execRdtsc(t: Transaction): Fault | UnsupportedOutcome {
  if ((t.m.cr4 & CR4.TSD) !== 0n && t.cpl() !== 0) return t.fault("RDTSC-01", GP, 0);
  return t.unsupported("RDTSC-02", "RDTSC: the time-stamp counter is not part of the modelled state");
}

export function execSysexit(t: Transaction): Fault | UnsupportedOutcome {
  if (t.cpl() !== 0) return t.fault("SYSEXIT-01", GP, 0);
  return t.unsupported("SYSEXIT-02", "SYSEXIT: the IA32_SYSENTER_* MSRs are not part of the modelled state");
}
