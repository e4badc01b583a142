// What CPUID returns on the modelled CPU, one table per vendor profile (docs/model-choices.md,
// row CPUID). Both engines read it; how a leaf is looked up (subleaves, leaves beyond the highest,
// the one dynamic bit, the register writes) is each engine's own semantics. The features reported
// are exactly those the model implements, so software probing CPUID never picks a path the model
// would stop on.

export interface CpuidLeaf {
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

export interface CpuidTable {
  /** Leaves 0..highest basic leaf, by leaf number. Leaf 7 is its subleaf 0 (ECX ≠ 0: zeros). */
  readonly basic: readonly CpuidLeaf[];
  /** Leaves 0x80000000..highest extended leaf, by leaf − 0x80000000. */
  readonly extended: readonly CpuidLeaf[];
  /** A leaf above the highest basic or extended one: the highest basic leaf's data for the same
   *  ECX (Intel, SDM CPUID "If a value entered for CPUID.EAX is higher than the maximum input
   *  value ... the data for the highest basic information leaf is returned"), or all zeros (AMD). */
  readonly beyondHighest: "highest-basic" | "zero";
}

/** Leaves whose ECX selects a subleaf (the table holds subleaf 0; other subleaves are zeros). */
export const CPUID_SUBLEAF_LEAVES: ReadonlySet<number> = new Set([7]);

/** CPUID.01H:ECX.OSXSAVE[bit 27]: a copy of CR4.OSXSAVE, the one bit that is not in the table. */
export const CPUID_OSXSAVE_BIT = 27;

const ZERO: CpuidLeaf = { eax: 0, ebx: 0, ecx: 0, edx: 0 };

/** Twelve ASCII characters as the three little-endian dwords CPUID returns them in. */
function dwords(text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) out.push(((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0));
  return out;
}

/** Leaf 0 / AMD's 0x80000000: the vendor string in EBX, EDX, ECX. */
function vendorRegisters(vendor: string): { ebx: number; ecx: number; edx: number } {
  const [ebx, edx, ecx] = dwords(vendor) as [number, number, number];
  return { ebx, ecx, edx };
}

/** Leaves 0x80000002–4: the brand string, 48 bytes NUL-padded, 16 per leaf. */
export const CPUID_BRAND = "ringspec x86-64 reference model";
function brandLeaves(): CpuidLeaf[] {
  const words = dwords(CPUID_BRAND.padEnd(48, "\0"));
  return [0, 1, 2].map((i) => ({ eax: words[4 * i]!, ebx: words[4 * i + 1]!, ecx: words[4 * i + 2]!, edx: words[4 * i + 3]! }));
}

const bit = (n: number) => (1 << n) >>> 0;

/** Leaf 1 EDX: DE(2) PSE(3) TSC(4; RDTSC reads 0) MSR(5) PAE(6) CX8(8) SEP(11; SYSENTER/SYSEXIT,
 *  #UD in IA-32e mode under amd as on AMD parts that report it) PGE(13) CMOV(15). No FPU, APIC,
 *  MTRR, PAT, CLFSH, MMX, FXSR, SSE: the model has none of them. */
const LEAF1_EDX = bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(8) | bit(11) | bit(13) | bit(15);
/** Leaf 1 ECX: CX16(13) PCID(17) XSAVE(26; XGETBV/XSETBV with XCR0 = 1); OSXSAVE(27) is copied from
 *  CR4 when read. */
const LEAF1_ECX = bit(13) | bit(17) | bit(26);
/** Leaf 7 subleaf 0 EBX: FSGSBASE(0) SMEP(7) INVPCID(10) SMAP(20); ECX: UMIP(2). */
const LEAF7_EBX = bit(0) | bit(7) | bit(10) | bit(20);
const LEAF7_ECX = bit(2);
/** Leaf 0x80000001 EDX: SYSCALL(11) NX(20) Page1GB(26) RDTSCP(27) LM(29). */
const EXT1_EDX = bit(11) | bit(20) | bit(26) | bit(27) | bit(29);
/** Leaf 0x80000008 EBX: WBNOINVD(9). */
const EXT8_EBX = bit(9);
/** Leaf 0x80000008 EAX: physical address bits 46 (MAXPHYADDR, contract/scope.ts), linear 48. */
const ADDRESS_SIZES = 46 | (48 << 8);

function table(vendor: string, signature: number, amd: boolean): CpuidTable {
  const basic: CpuidLeaf[] = [
    { eax: 7, ...vendorRegisters(vendor) },
    { eax: signature, ebx: 0, ecx: LEAF1_ECX, edx: LEAF1_EDX },
    ZERO, ZERO, ZERO, ZERO, ZERO,
    { eax: 0, ebx: LEAF7_EBX, ecx: LEAF7_ECX, edx: 0 },
  ];
  const extended: CpuidLeaf[] = [
    // AMD repeats the vendor string here; Intel reserves those registers (zeros).
    amd ? { eax: 0x8000_0008, ...vendorRegisters(vendor) } : { eax: 0x8000_0008, ebx: 0, ecx: 0, edx: 0 },
    // AMD repeats the signature and mirrors leaf 1's EDX bits 0–17 here; Intel does neither.
    { eax: amd ? signature : 0, ebx: 0, ecx: 0, edx: (EXT1_EDX | (amd ? LEAF1_EDX : 0)) >>> 0 },
    ...brandLeaves(),
    ZERO, ZERO, ZERO,
    { eax: ADDRESS_SIZES, ebx: EXT8_EBX, ecx: 0, edx: 0 },
  ];
  return { basic, extended, beyondHighest: amd ? "zero" : "highest-basic" };
}

/** Family 6, model 0x8C, stepping 1. */
export const INTEL_CPUID: CpuidTable = table("GenuineIntel", 0x0008_06c1, false);
/** Family 0x19, model 0x21, stepping 0. */
export const AMD_CPUID: CpuidTable = table("AuthenticAMD", 0x00a2_0f10, true);
