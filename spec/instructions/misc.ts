// NOP (90 and the 0F 1F /0 r/m form), PAUSE (F3 90), UD2 (0F 0B), LFENCE/MFENCE/SFENCE,
// PREFETCHh, ENDBR64/ENDBR32 — SDM Vol. 2A/2B instruction pages.
import type { Semantics } from "../transaction/semantics.ts";
import { UD } from "../fault.ts";

/** NOP r/m names an operand but never accesses it: no fault, no state change beyond RIP. */
export const nop: Semantics = (t) => {
  t.hit("NOP-01");
  return undefined;
};

/** UD2: always raises #UD; RIP stays at the UD2 (a fault). */
export const ud2: Semantics = (t) => t.fault("UD2-01", UD);

/** PAUSE: a NOP (a hint with no architectural effect). */
export const pause = nop;

/** LFENCE, MFENCE, SFENCE: ordering with respect to other processors and devices — none exist in
 *  the model (one CPU, no memory-ordering model, no caches): no effect. */
export const fence: Semantics = (t) => {
  t.hit("FENCE-01");
  return undefined;
};

/** PREFETCHh m8: a hint; never accesses memory, never faults (its operand is not translated). */
export const prefetch: Semantics = (t) => {
  t.hit("PREFETCH-01");
  return undefined;
};

/** ENDBR64/ENDBR32: a NOP while CET is not enabled, and CR4.CET is outside the model. */
export const endbr: Semantics = (t) => {
  t.hit("ENDBR-01");
  return undefined;
};
