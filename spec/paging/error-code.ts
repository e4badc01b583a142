// The #PF error code (SDM Vol. 3A §4.7, Figure 4-12; digest PF-02/PF-03). Every bit but P and RSVD
// describes the access that faulted, not the paging entries.
import { fault, PF, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import { CR4, EFER } from "../machine/registers.ts";
import type { RuleId } from "../rules/rule.ts";
import type { Access } from "./access.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";

/** Error-code bits by their SDM names (PK, SS, HLAT and SGX are outside the model: always 0). */
export const PFEC = {
  /** 0: not-present entry; 1: protection or reserved-bit violation. */
  P: 1 << 0,
  /** W/R: the access was a write. */
  WR: 1 << 1,
  /** U/S: the access was a user-mode access. */
  US: 1 << 2,
  /** A reserved bit was set in a present entry (so P = 1 too). */
  RSVD: 1 << 3,
  /** I/D: the access was an instruction fetch. */
  ID: 1 << 4,
} as const;

export type PageFaultCause = "not-present" | "reserved-bit" | "protection";

export function pageFaultErrorCode(cause: PageFaultCause, access: Access, m: Pick<Machine, "cr4" | "efer">): number {
  let code = 0;
  if (cause !== "not-present") code |= PFEC.P;
  if (cause === "reserved-bit") code |= PFEC.RSVD;
  if (access.kind === "write") code |= PFEC.WR;
  // PF-03: implicit supervisor accesses report U/S = 0 even at CPL 3.
  if (access.mode === "user") code |= PFEC.US;
  // I/D is defined only with NXE or SMEP on; otherwise it reads 0 (Figure 4-12).
  if (access.kind === "execute" && ((m.efer & EFER.NXE) !== 0n || (m.cr4 & CR4.SMEP) !== 0n)) code |= PFEC.ID;
  return code;
}

/** A #PF for `linear`: the fault carries the full linear address for CR2 (PF-01). */
export function pageFault(rule: RuleId, cause: PageFaultCause, linear: bigint, access: Access, m: Pick<Machine, "cr4" | "efer">): Fault {
  // The walk's failing check is exercised here, whether a Transaction is there to record it or a
  // test walks directly.
  recordExecuted(rule);
  return fault(rule, PF, pageFaultErrorCode(cause, access, m), linear);
}
