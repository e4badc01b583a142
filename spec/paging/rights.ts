// Access rights (SDM Vol. 3A §4.6.1): whether an access may use a translation whose entries, taken
// together, allow writes (R/W = 1 at every level), user access (U/S = 1 at every level — a
// "user-mode address") and execution (XD = 0 at every level).
import type { Machine } from "../machine/machine.ts";
import { CR0, CR4, EFER, RFLAGS } from "../machine/registers.ts";
import type { RuleId } from "../rules/rule.ts";
import type { Access } from "./access.ts";

// Local copies: imported bindings are getter calls under the tsx/vitest transforms (hot path).
const { WP } = CR0;
const { SMEP, SMAP } = CR4;
const { NXE } = EFER;
const { AC } = RFLAGS;

/** The combined rights of the entries a walk used. */
export interface PageRights {
  readonly writable: boolean;
  readonly user: boolean;
  readonly executeDisable: boolean;
}

/** The rule an access breaks (a #PF with P = 1), or null when the access is allowed. */
export function accessRightsRule(access: Access, rights: PageRights, m: Pick<Machine, "cr0" | "cr4" | "efer" | "rflags">): RuleId | null {
  const nx = (m.efer & NXE) !== 0n && rights.executeDisable;
  if (access.mode === "user") {
    // User-mode accesses reach only user-mode addresses; writes need R/W = 1 whatever CR0.WP.
    if (!rights.user) return "PF-04-US";
    if (access.kind === "write" && !rights.writable) return "PF-04-RW";
    if (access.kind === "execute" && nx) return "PF-04-NX";
    return null;
  }
  // Supervisor-mode access (explicit at CPL < 3, or implicit at any CPL).
  if (access.kind === "execute") {
    if (rights.user && (m.cr4 & SMEP) !== 0n) return "SMEP-01";
    if (nx) return "PF-04-NX";
    return null;
  }
  if (rights.user && (m.cr4 & SMAP) !== 0n) {
    // Only an explicit access with RFLAGS.AC = 1 may touch a user page under SMAP.
    if (access.mode === "implicit") return "SMAP-02";
    if ((m.rflags & AC) === 0n) return "SMAP-01";
  }
  // CR0.WP = 0 lets supervisor writes (explicit and implicit) ignore R/W.
  if (access.kind === "write" && !rights.writable && (m.cr0 & WP) !== 0n) return "PF-04-WP";
  return null;
}
