// CLD, STD, CLC, STC, CMC — SDM Vol. 2A instruction pages: each writes one flag, no privilege check.
// (CLI/STI are I/O-sensitive and belong to the privileged-transition family.)
import type { Executor, ExecutorTable } from "../step/executor.ts";
import { RFLAGS } from "../machine/registers.ts";

function writeFlag(bit: bigint, value: (old: boolean) => boolean): Executor {
  return (t) => {
    const set = value((t.m.rflags & bit) !== 0n);
    t.update("FLAGCTL-01", { rflags: set ? t.m.rflags | bit : t.m.rflags & ~bit });
    return undefined;
  };
}

export const flagControlExecutors: ExecutorTable = {
  cld: writeFlag(RFLAGS.DF, () => false),
  std: writeFlag(RFLAGS.DF, () => true),
  clc: writeFlag(RFLAGS.CF, () => false),
  stc: writeFlag(RFLAGS.CF, () => true),
  cmc: writeFlag(RFLAGS.CF, (old) => !old),
};
