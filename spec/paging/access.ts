// How a linear-address access is made: what it does and with which privilege. Paging (PF-02..04,
// SMEP-01, SMAP-01/02) and the #PF error code depend on exactly these facts.

export type AccessKind = "read" | "write" | "execute";

/**
 * - `user`: an access made at CPL 3 (U/S = 1 in the error code).
 * - `supervisor`: an explicit data access at CPL < 3 (SMAP honours RFLAGS.AC).
 * - `implicit`: an implicit supervisor access — GDT/LDT/IDT/TSS reads and writes — made whatever
 *   the CPL (U/S = 0; SMAP applies regardless of AC, SMAP-02).
 */
export type AccessMode = "user" | "supervisor" | "implicit";

export interface Access {
  readonly kind: AccessKind;
  readonly mode: AccessMode;
}
