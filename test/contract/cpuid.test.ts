// The CPUID tables of the vendor profiles (contract/cpuid.ts, docs/model-choices.md row CPUID).
import { describe, expect, it } from "vitest";
import { AMD_CPUID, CPUID_BRAND, INTEL_CPUID, type CpuidLeaf } from "../../contract/cpuid.ts";
import { AMD, INTEL } from "../../contract/profile.ts";

const text = (...words: number[]) => String.fromCharCode(...words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]));
const brand = (leaves: readonly CpuidLeaf[]) => leaves.map((l) => text(l.eax, l.ebx, l.ecx, l.edx)).join("").replace(/\0+$/, "");

describe("CPUID tables", () => {
  it("leaf 0: the highest basic leaf (7) and the vendor string in EBX, EDX, ECX", () => {
    const i = INTEL_CPUID.basic[0]!;
    const a = AMD_CPUID.basic[0]!;
    expect([i.eax, text(i.ebx, i.edx, i.ecx)]).toEqual([7, "GenuineIntel"]);
    expect([a.eax, text(a.ebx, a.edx, a.ecx)]).toEqual([7, "AuthenticAMD"]);
    expect(INTEL_CPUID.basic).toHaveLength(8);
    expect(INTEL.cpuid).toBe(INTEL_CPUID);
    expect(AMD.cpuid).toBe(AMD_CPUID);
  });

  it("reports only modelled features: DE TSC SEP CX8 CMOV PAE PSE PGE MSR CX16 PCID XSAVE, FSGSBASE SMEP INVPCID SMAP UMIP, SYSCALL NX 1 GiB pages RDTSCP LM, WBNOINVD; no FPU, SSE, BMI1, LZCNT, POPCNT", () => {
    for (const t of [INTEL_CPUID, AMD_CPUID]) {
      const leaf1 = t.basic[1]!;
      expect(leaf1.edx).toBe((1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15));
      expect(leaf1.ecx).toBe((1 << 13) | (1 << 17) | (1 << 26));
      expect(t.basic[7]).toEqual({ eax: 0, ebx: 1 | (1 << 7) | (1 << 10) | (1 << 20), ecx: 1 << 2, edx: 0 });
      const ext1 = t.extended[1]!;
      for (const b of [11, 20, 26, 27, 29]) expect((ext1.edx >>> b) & 1).toBe(1);
      expect(t.extended[8]!.ebx).toBe(1 << 9);
      expect(ext1.ecx).toBe(0); // no LAHF/SAHF, no LZCNT (ABM)
      expect(t.extended[8]!.eax).toBe(0x302e); // 46 physical, 48 linear address bits
      expect(t.extended[0]!.eax).toBe(0x8000_0008);
    }
  });

  it("the brand string, and the vendor differences: AMD repeats vendor and signature in the extended leaves and returns zeros beyond the highest leaf", () => {
    expect(brand(INTEL_CPUID.extended.slice(2, 5))).toBe(CPUID_BRAND);
    expect(brand(AMD_CPUID.extended.slice(2, 5))).toBe(CPUID_BRAND);
    const e = AMD_CPUID.extended[0]!;
    expect(text(e.ebx, e.edx, e.ecx)).toBe("AuthenticAMD");
    expect(INTEL_CPUID.extended[0]).toMatchObject({ ebx: 0, ecx: 0, edx: 0 });
    expect(AMD_CPUID.extended[1]!.eax).toBe(AMD_CPUID.basic[1]!.eax);
    expect(INTEL_CPUID.extended[1]!.eax).toBe(0);
    expect(INTEL_CPUID.beyondHighest).toBe("highest-basic");
    expect(AMD_CPUID.beyondHighest).toBe("zero");
  });
});
