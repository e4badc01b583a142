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
  /** On the objects `accessOf` returns: their number (0–8), under which the walk memo files their
   *  walks (spec/paging/walk-memo.ts), found with one load instead of two keyed lookups. */
  readonly slot?: number;
}

/** One Access object per kind and mode, made once: accesses run on every memory operand and
 *  stack slot, and need not allocate. */
const ACCESSES: Readonly<Record<AccessKind, Readonly<Record<AccessMode, Access>>>> = {
  read: { user: { kind: "read", mode: "user", slot: 0 }, supervisor: { kind: "read", mode: "supervisor", slot: 1 }, implicit: { kind: "read", mode: "implicit", slot: 2 } },
  write: { user: { kind: "write", mode: "user", slot: 3 }, supervisor: { kind: "write", mode: "supervisor", slot: 4 }, implicit: { kind: "write", mode: "implicit", slot: 5 } },
  execute: { user: { kind: "execute", mode: "user", slot: 6 }, supervisor: { kind: "execute", mode: "supervisor", slot: 7 }, implicit: { kind: "execute", mode: "implicit", slot: 8 } },
};

/** How many slots `accessOf`'s objects number. */
export const ACCESS_SLOTS = 9;

/** The same objects by slot (kind·3 + mode, in ACCESSES' order). */
const BY_SLOT: readonly Access[] = [ACCESSES.read.user, ACCESSES.read.supervisor, ACCESSES.read.implicit, ACCESSES.write.user, ACCESSES.write.supervisor, ACCESSES.write.implicit, ACCESSES.execute.user, ACCESSES.execute.supervisor, ACCESSES.execute.implicit];

export function accessOf(kind: AccessKind, mode: AccessMode): Access {
  // Compared, not looked up by name: a keyed load whose keys vary is V8's slow megamorphic path,
  // and this runs on every descriptor, IDT and TSS read.
  const k = kind === "read" ? 0 : kind === "write" ? 3 : 6;
  const m = mode === "user" ? 0 : mode === "supervisor" ? 1 : 2;
  return BY_SLOT[k + m]!;
}
