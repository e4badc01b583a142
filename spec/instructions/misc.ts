// NOP (90 and the 0F 1F /0 r/m form), PAUSE (F3 90), UD2 (0F 0B) — SDM Vol. 2B instruction pages.
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
