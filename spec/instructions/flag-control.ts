// CLD, STD, CLC, STC, CMC — SDM Vol. 2A instruction pages: each writes one flag, no privilege check.
// (CLI/STI are I/O-sensitive and belong to the privileged-transition family.)
import type { Semantics } from "../transaction/semantics.ts";
import { RFLAGS } from "../machine/registers.ts";

function writeFlag(bit: bigint, value: (old: boolean) => boolean): Semantics {
  return (t) => {
    const set = value((t.rflags & bit) !== 0n);
    t.update("FLAGCTL-01", { rflags: set ? t.rflags | bit : t.rflags & ~bit });
    return undefined;
  };
}

export const cld = writeFlag(RFLAGS.DF, () => false);
export const std = writeFlag(RFLAGS.DF, () => true);
export const clc = writeFlag(RFLAGS.CF, () => false);
export const stc = writeFlag(RFLAGS.CF, () => true);
export const cmc = writeFlag(RFLAGS.CF, (old) => !old);
