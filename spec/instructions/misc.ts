// NOP (90 and the 0F 1F /0 r/m form), PAUSE (F3 90), UD2 (0F 0B) — SDM Vol. 2B instruction pages.
import type { Executor, ExecutorTable } from "../step/executor.ts";
import { UD } from "../fault.ts";

/** NOP r/m names an operand but never accesses it: no fault, no state change beyond RIP. */
const nop: Executor = (t) => {
  t.hit("NOP-01");
  return undefined;
};

/** UD2: always raises #UD; RIP stays at the UD2 (a fault). */
const ud2: Executor = (t) => t.fault("UD2-01", UD);

export const miscExecutors: ExecutorTable = { nop, pause: nop, ud2 };
