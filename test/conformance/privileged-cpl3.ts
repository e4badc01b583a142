// THE table of privileged, UMIP-guarded and other system opcode forms at CPL 3 (issue 9): for
// every form, what a CPL-3 program gets under each CR4 setting that matters, per profile, in 64-bit
// and compatibility mode — the fault the SDM names (the #UD conditions before the privilege check)
// or, where the instruction is allowed at CPL 3, that it completes. Data only (no engine code): the
// directed test runs every row on every engine through the Engine interface
// (privileged-cpl3.test.ts), and docs/model-choices.md ("Privileged instructions at CPL > 0") points
// here. No row may end `unsupported`.

/** What a CPL-3 step of the form does: completes (`retired`), or delivers this fault. */
export type Cpl3Outcome = "retired" | { readonly vector: 6 } | { readonly vector: 13; readonly errorCode: 0 };

export const UD = { vector: 6 } as const;
export const GP0 = { vector: 13, errorCode: 0 } as const;

/** CR4 bits a case sets (the user state has none of them: UMIP, TSD, PCE, DE, OSXSAVE, FSGSBASE). */
export const CR4_BITS = { TSD: 1n << 2n, DE: 1n << 3n, PCE: 1n << 8n, UMIP: 1n << 11n, FSGSBASE: 1n << 16n, OSXSAVE: 1n << 18n } as const;
export type Cr4Bit = keyof typeof CR4_BITS;

export interface Cpl3Case {
  /** CR4 bits set for this case (the rest clear). */
  readonly cr4?: readonly Cr4Bit[];
  /** IA32_SYSENTER_CS for this case (default 0, its power-up value). */
  readonly sysenterCs?: bigint;
  /** Under `intel`. */
  readonly intel: Cpl3Outcome;
  /** Under `amd`, when it differs. */
  readonly amd?: Cpl3Outcome;
  /** In compatibility mode, when it differs (both profiles; `compatAmd` for amd there). */
  readonly compat?: Cpl3Outcome;
  readonly compatAmd?: Cpl3Outcome;
  /** The spec rule that decides the case (spec's events name it; other engines are judged on the
   *  outcome only). */
  readonly rule?: string;
  readonly compatRule?: string;
}

export interface Cpl3Form {
  /** Instruction form as the SDM names it. */
  readonly form: string;
  /** The encoding; memory operands address [RAX] ([EAX] in compatibility mode), which holds a
   *  user-writable address. */
  readonly bytes: readonly number[];
  /** The bytes mean this form only in 64-bit mode (REX, or a 64-bit-only encoding). */
  readonly only64?: boolean;
  readonly cases: readonly Cpl3Case[];
}

const gp = (rule: string): Cpl3Case => ({ intel: GP0, rule });
const ud = (rule: string): Cpl3Case => ({ intel: UD, rule });
/** A UMIP-guarded store: #GP(0) with UMIP, completes without. */
const umip = (rule: string): Cpl3Case[] => [{ cr4: ["UMIP"], intel: GP0, rule }, { intel: "retired" }];

export const CPL3_FORMS: readonly Cpl3Form[] = [
  // ---- SDM Vol. 3A §5.9 "Privileged Instructions" ----
  { form: "LGDT m", bytes: [0x0f, 0x01, 0x10], cases: [gp("DT-01")] },
  { form: "LIDT m", bytes: [0x0f, 0x01, 0x18], cases: [gp("DT-01")] },
  { form: "LOCK LGDT m", bytes: [0xf0, 0x0f, 0x01, 0x10], cases: [ud("DECODE-LOCK")] },
  { form: "LLDT r16", bytes: [0x0f, 0x00, 0xd0], cases: [gp("DT-09")] },
  { form: "LLDT m16", bytes: [0x0f, 0x00, 0x10], cases: [gp("DT-09")] },
  { form: "66 LLDT r16", bytes: [0x66, 0x0f, 0x00, 0xd0], cases: [gp("DT-09")] },
  { form: "LTR r16", bytes: [0x0f, 0x00, 0xd8], cases: [gp("DT-02")] },
  { form: "LTR m16", bytes: [0x0f, 0x00, 0x18], cases: [gp("DT-02")] },
  { form: "66 LTR r16", bytes: [0x66, 0x0f, 0x00, 0xd8], cases: [gp("DT-02")] },
  { form: "MOV CR0, r", bytes: [0x0f, 0x22, 0xc0], cases: [gp("MOVCR-01")] },
  { form: "MOV CR2, r", bytes: [0x0f, 0x22, 0xd0], cases: [gp("MOVCR-01")] },
  { form: "MOV CR3, r", bytes: [0x0f, 0x22, 0xd8], cases: [gp("MOVCR-01")] },
  { form: "MOV CR4, r", bytes: [0x0f, 0x22, 0xe0], cases: [gp("MOVCR-01")] },
  { form: "MOV CR8, r", bytes: [0x44, 0x0f, 0x22, 0xc0], only64: true, cases: [gp("MOVCR-01")] },
  { form: "MOV r, CR0", bytes: [0x0f, 0x20, 0xc0], cases: [gp("MOVCR-01")] },
  { form: "MOV r, CR3 (mod = 00)", bytes: [0x0f, 0x20, 0x18], cases: [gp("MOVCR-01")] },
  { form: "MOV r, CR1 (#UD first)", bytes: [0x0f, 0x20, 0xc8], cases: [ud("DECODE-CR")] },
  { form: "MOV CR5, r (#UD first)", bytes: [0x0f, 0x22, 0xe8], cases: [ud("DECODE-CR")] },
  { form: "MOV CR9, r (#UD first)", bytes: [0x44, 0x0f, 0x22, 0xc8], only64: true, cases: [ud("DECODE-CR")] },
  { form: "LOCK MOV CR0, r", bytes: [0xf0, 0x0f, 0x22, 0xc0], cases: [ud("DECODE-LOCK")] },
  { form: "LMSW r16", bytes: [0x0f, 0x01, 0xf0], cases: [gp("MSW-03")] },
  { form: "LMSW m16", bytes: [0x0f, 0x01, 0x30], cases: [gp("MSW-03")] },
  { form: "66 LMSW r16", bytes: [0x66, 0x0f, 0x01, 0xf1], cases: [gp("MSW-03")] },
  { form: "CLTS", bytes: [0x0f, 0x06], cases: [gp("CLTS-01")] },
  { form: "MOV DR0, r", bytes: [0x0f, 0x23, 0xc0], cases: [gp("MOVDR-02")] },
  { form: "MOV r, DR6", bytes: [0x0f, 0x21, 0xf0], cases: [gp("MOVDR-02")] },
  { form: "MOV r, DR7 (mod = 00)", bytes: [0x0f, 0x21, 0x38], cases: [gp("MOVDR-02")] },
  { form: "MOV DR4, r", bytes: [0x0f, 0x23, 0xe0], cases: [{ cr4: ["DE"], intel: UD, rule: "MOVDR-01" }, gp("MOVDR-02")] },
  { form: "MOV r, DR5", bytes: [0x0f, 0x21, 0xe8], cases: [{ cr4: ["DE"], intel: UD, rule: "MOVDR-01" }, gp("MOVDR-02")] },
  { form: "MOV r, DR8 (REX.R)", bytes: [0x44, 0x0f, 0x21, 0xc0], only64: true, cases: [ud("DECODE-DR")] },
  { form: "INVD", bytes: [0x0f, 0x08], cases: [gp("CACHE-01")] },
  { form: "WBINVD", bytes: [0x0f, 0x09], cases: [gp("CACHE-01")] },
  { form: "WBNOINVD", bytes: [0xf3, 0x0f, 0x09], cases: [gp("CACHE-01")] },
  { form: "INVLPG m", bytes: [0x0f, 0x01, 0x38], cases: [gp("INVLPG-01")] },
  { form: "INVPCID r, m128", bytes: [0x66, 0x0f, 0x38, 0x82, 0x08], cases: [gp("INVPCID-01")] },
  { form: "INVPCID register form", bytes: [0x66, 0x0f, 0x38, 0x82, 0xc8], cases: [ud("DECODE-MEMORY-ONLY")] },
  { form: "LOCK INVPCID", bytes: [0xf0, 0x66, 0x0f, 0x38, 0x82, 0x08], cases: [ud("DECODE-LOCK")] },
  { form: "HLT", bytes: [0xf4], cases: [gp("HLT-01")] },
  { form: "RDMSR", bytes: [0x0f, 0x32], cases: [gp("MSR-01")] },
  { form: "WRMSR", bytes: [0x0f, 0x30], cases: [gp("MSR-01")] },
  { form: "RDPMC", bytes: [0x0f, 0x33], cases: [gp("RDPMC-01"), { cr4: ["PCE"], intel: GP0, rule: "RDPMC-02" }] },
  { form: "RDTSC", bytes: [0x0f, 0x31], cases: [{ cr4: ["TSD"], intel: GP0, rule: "RDTSC-01" }, { intel: "retired" }] },
  { form: "RDTSCP", bytes: [0x0f, 0x01, 0xf9], cases: [{ cr4: ["TSD"], intel: GP0, rule: "RDTSCP-01" }, { intel: "retired" }] },
  { form: "F3 RDTSCP", bytes: [0xf3, 0x0f, 0x01, 0xf9], cases: [{ cr4: ["TSD"], intel: GP0, rule: "RDTSCP-01" }, { intel: "retired" }] },
  { form: "XSETBV", bytes: [0x0f, 0x01, 0xd1], cases: [ud("XSETBV-01"), { cr4: ["OSXSAVE"], intel: GP0, rule: "XSETBV-02" }] },
  // ---- the other CPL-0-only system instructions ----
  { form: "SWAPGS", bytes: [0x0f, 0x01, 0xf8], cases: [{ intel: GP0, rule: "SWAPGS-02", compat: UD, compatRule: "DECODE-MODE" }] },
  { form: "66 SWAPGS", bytes: [0x66, 0x0f, 0x01, 0xf8], cases: [{ intel: GP0, rule: "SWAPGS-02", compat: UD, compatRule: "DECODE-MODE" }] },
  { form: "SYSRET (to compatibility mode)", bytes: [0x0f, 0x07], cases: [{ intel: GP0, rule: "SYSRET-02", compat: UD, compatAmd: GP0, compatRule: "SYSRET-01" }] },
  { form: "SYSRETQ", bytes: [0x48, 0x0f, 0x07], only64: true, cases: [gp("SYSRET-02")] },
  { form: "SYSEXIT", bytes: [0x0f, 0x35], cases: [{ intel: GP0, amd: UD, rule: "SYSEXIT-02" }, { sysenterCs: 0x10n, intel: GP0, amd: UD, rule: "SYSEXIT-01" }] },
  { form: "SYSEXITQ", bytes: [0x48, 0x0f, 0x35], only64: true, cases: [{ sysenterCs: 0x10n, intel: GP0, amd: UD, rule: "SYSEXIT-01" }] },
  { form: "CLAC", bytes: [0x0f, 0x01, 0xca], cases: [ud("SMAP-04")] },
  { form: "STAC", bytes: [0x0f, 0x01, 0xcb], cases: [ud("SMAP-04")] },
  // ---- UMIP-guarded (SDM Vol. 3A §2.5): executed at CPL 3 without UMIP ----
  { form: "SGDT m", bytes: [0x0f, 0x01, 0x00], cases: umip("DT-05") },
  { form: "SIDT m", bytes: [0x0f, 0x01, 0x08], cases: umip("DT-05") },
  { form: "66 SGDT m", bytes: [0x66, 0x0f, 0x01, 0x00], cases: umip("DT-05") },
  { form: "SLDT r32", bytes: [0x0f, 0x00, 0xc0], cases: umip("DT-07") },
  { form: "SLDT r16", bytes: [0x66, 0x0f, 0x00, 0xc0], cases: umip("DT-07") },
  { form: "SLDT r64", bytes: [0x48, 0x0f, 0x00, 0xc0], only64: true, cases: umip("DT-07") },
  { form: "SLDT m16", bytes: [0x0f, 0x00, 0x00], cases: umip("DT-07") },
  { form: "STR r32", bytes: [0x0f, 0x00, 0xc8], cases: umip("DT-07") },
  { form: "STR m16", bytes: [0x0f, 0x00, 0x08], cases: umip("DT-07") },
  { form: "SMSW r32", bytes: [0x0f, 0x01, 0xe0], cases: umip("MSW-01") },
  { form: "SMSW r16", bytes: [0x66, 0x0f, 0x01, 0xe0], cases: umip("MSW-01") },
  { form: "SMSW r64", bytes: [0x48, 0x0f, 0x01, 0xe0], only64: true, cases: umip("MSW-01") },
  { form: "F2 SMSW r32", bytes: [0xf2, 0x0f, 0x01, 0xe0], cases: umip("MSW-01") },
  { form: "SMSW m16", bytes: [0x0f, 0x01, 0x20], cases: umip("MSW-01") },
  // ---- unprivileged system instructions of the same opcode groups ----
  { form: "VERR r16", bytes: [0x0f, 0x00, 0xe0], cases: [{ intel: "retired" }] },
  { form: "VERW m16", bytes: [0x0f, 0x00, 0x28], cases: [{ intel: "retired" }] },
  { form: "XGETBV", bytes: [0x0f, 0x01, 0xd0], cases: [ud("XGETBV-01"), { cr4: ["OSXSAVE"], intel: "retired" }] },
  { form: "66 XGETBV (NP)", bytes: [0x66, 0x0f, 0x01, 0xd0], cases: [ud("DECODE-RESERVED"), { cr4: ["OSXSAVE"], intel: UD, rule: "DECODE-RESERVED" }] },
  { form: "66 CLAC (NP)", bytes: [0x66, 0x0f, 0x01, 0xca], cases: [ud("DECODE-RESERVED")] },
  { form: "RDFSBASE r64", bytes: [0xf3, 0x48, 0x0f, 0xae, 0xc0], only64: true, cases: [ud("FSGSBASE-01"), { cr4: ["FSGSBASE"], intel: "retired" }] },
  { form: "WRGSBASE r32", bytes: [0xf3, 0x0f, 0xae, 0xd8], cases: [{ intel: UD, rule: "FSGSBASE-01", compatRule: "DECODE-MODE", compat: UD }, { cr4: ["FSGSBASE"], intel: "retired", compat: UD, compatRule: "DECODE-MODE" }] },
  { form: "SYSENTER", bytes: [0x0f, 0x34], cases: [{ intel: GP0, amd: UD, rule: "SYSENTER-02" }, { sysenterCs: 0x10n, intel: "retired", amd: UD }] },
  { form: "0F 00 /6", bytes: [0x0f, 0x00, 0xf0], cases: [ud("DECODE-RESERVED")] },
  { form: "0F 00 /7 m", bytes: [0x0f, 0x00, 0x38], cases: [ud("DECODE-RESERVED")] },
  { form: "0F 01 /5 m", bytes: [0x0f, 0x01, 0x28], cases: [ud("DECODE-RESERVED")] },
  { form: "0F 01 D2", bytes: [0x0f, 0x01, 0xd2], cases: [ud("DECODE-RESERVED")] },
  // ---- instructions of features the modelled CPU lacks (docs/model-choices.md, "CPU features") ----
  { form: "LKGS r16", bytes: [0xf2, 0x0f, 0x00, 0xf0], cases: [{ intel: UD, rule: "DECODE-FEATURE", compatRule: "DECODE-RESERVED" }] },
  { form: "VMCALL", bytes: [0x0f, 0x01, 0xc1], cases: [ud("DECODE-FEATURE")] },
  { form: "VMXOFF", bytes: [0x0f, 0x01, 0xc4], cases: [ud("DECODE-FEATURE")] },
  { form: "MONITOR", bytes: [0x0f, 0x01, 0xc8], cases: [ud("DECODE-FEATURE")] },
  { form: "MWAIT", bytes: [0x0f, 0x01, 0xc9], cases: [ud("DECODE-FEATURE")] },
  { form: "ENCLS", bytes: [0x0f, 0x01, 0xcf], cases: [ud("DECODE-FEATURE")] },
  { form: "VMFUNC", bytes: [0x0f, 0x01, 0xd4], cases: [ud("DECODE-FEATURE")] },
  { form: "VMRUN", bytes: [0x0f, 0x01, 0xd8], cases: [ud("DECODE-FEATURE")] },
  { form: "SKINIT", bytes: [0x0f, 0x01, 0xde], cases: [ud("DECODE-FEATURE")] },
  { form: "SERIALIZE", bytes: [0x0f, 0x01, 0xe8], cases: [ud("DECODE-FEATURE")] },
  { form: "WRPKRU", bytes: [0x0f, 0x01, 0xef], cases: [ud("DECODE-FEATURE")] },
  { form: "ERETU", bytes: [0xf3, 0x0f, 0x01, 0xca], cases: [{ intel: UD, rule: "DECODE-FEATURE", compatRule: "DECODE-RESERVED" }] },
  { form: "UIRET", bytes: [0xf3, 0x0f, 0x01, 0xec], cases: [{ intel: UD, rule: "DECODE-FEATURE", compatRule: "DECODE-RESERVED" }] },
  { form: "SETSSBSY", bytes: [0xf3, 0x0f, 0x01, 0xe8], cases: [ud("DECODE-FEATURE")] },
  { form: "RSTORSSP m64", bytes: [0xf3, 0x0f, 0x01, 0x28], cases: [ud("DECODE-FEATURE")] },
  { form: "CLZERO", bytes: [0x0f, 0x01, 0xfc], cases: [ud("DECODE-FEATURE")] },
  { form: "TDCALL", bytes: [0x66, 0x0f, 0x01, 0xcc], cases: [ud("DECODE-FEATURE")] },
  { form: "GETSEC", bytes: [0x0f, 0x37], cases: [ud("DECODE-FEATURE")] },
  { form: "VMREAD r, r", bytes: [0x0f, 0x78, 0xc0], cases: [ud("DECODE-FEATURE")] },
  { form: "INVEPT r, m128", bytes: [0x66, 0x0f, 0x38, 0x80, 0x08], cases: [ud("DECODE-FEATURE")] },
  { form: "XSAVES m", bytes: [0x0f, 0xc7, 0x28], cases: [ud("DECODE-FEATURE")] },
  { form: "XRSTORS m", bytes: [0x0f, 0xc7, 0x18], cases: [ud("DECODE-FEATURE")] },
  { form: "VMXON m64", bytes: [0xf3, 0x0f, 0xc7, 0x30], cases: [ud("DECODE-FEATURE")] },
  { form: "PTWRITE r32", bytes: [0xf3, 0x0f, 0xae, 0xe0], cases: [ud("DECODE-FEATURE")] },
];

/** One concrete case of the table. */
export interface Cpl3Instance {
  readonly form: string;
  readonly bytes: readonly number[];
  readonly mode: "64" | "compat";
  readonly profile: "intel" | "amd";
  readonly cr4: bigint;
  readonly sysenterCs: bigint;
  readonly outcome: Cpl3Outcome;
  readonly rule: string | undefined;
}

/** Every case of every row, in both modes (64-bit-only rows in 64-bit mode) and both profiles. */
export function cpl3Instances(): Cpl3Instance[] {
  const out: Cpl3Instance[] = [];
  for (const row of CPL3_FORMS)
    for (const c of row.cases)
      for (const mode of row.only64 === true ? (["64"] as const) : (["64", "compat"] as const))
        for (const profile of ["intel", "amd"] as const) {
          const inCompat = mode === "compat";
          const outcome = inCompat
            ? (profile === "amd" ? c.compatAmd ?? c.compat ?? c.amd : c.compat) ?? c.intel
            : (profile === "amd" ? c.amd : undefined) ?? c.intel;
          // The rule names the intel outcome; an amd override is judged on the outcome alone.
          const amdOverride = profile === "amd" && (inCompat ? (c.compatAmd ?? c.amd) !== undefined : c.amd !== undefined);
          const rule = amdOverride ? undefined : inCompat ? c.compatRule ?? c.rule : c.rule;
          const cr4 = (c.cr4 ?? []).reduce((bits, name) => bits | CR4_BITS[name], 0n);
          out.push({ form: row.form, bytes: row.bytes, mode, profile, cr4, sysenterCs: c.sysenterCs ?? 0n, outcome, rule });
        }
  return out;
}
