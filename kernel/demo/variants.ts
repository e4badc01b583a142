// The demo kernel and its deliberately broken variants: each has one classic context-switch bug
// and the invariant (spec/context) that must catch it.
import type { Invariant } from "../../spec/context/index.ts";

export const VARIANTS = {
  "missing-swapgs": {
    bug: "the SYSRETQ exit path does not execute SWAPGS",
    caughtBy: "c",
    rule: "CTX-03-GS",
  },
  "yield-clobbers-r12": {
    bug: "yield_to_scheduler does not save R12 in its yieldstate, and the scheduler uses R12",
    caughtBy: "a",
    rule: "CTX-01",
  },
  "stale-rsp0": {
    bug: "the context switch does not update TSS.RSP0",
    caughtBy: "e",
    rule: "CTX-05",
  },
  "if-clear": {
    bug: "new processes start from a regstate with IF = 0",
    caughtBy: "c",
    rule: "CTX-03-IF",
  },
  "user-kernel-mapping": {
    bug: "every address space maps the kernel's 2 MiB with U/S = 1",
    caughtBy: "f",
    rule: "CTX-06",
  },
  "sysret-noncanonical": {
    bug: "SYSRETQ without checking that the return RIP is canonical (Intel: #GP in ring 0 on the user stack)",
    caughtBy: "b",
    rule: "CTX-02-RING0",
  },
} as const satisfies Record<string, { bug: string; caughtBy: Invariant; rule: string }>;

export type VariantName = keyof typeof VARIANTS;
export const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];
