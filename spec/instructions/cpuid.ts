// CPUID — SDM Vol. 2A "CPUID—CPU Identification". What the modelled CPU reports is data, one table
// per vendor profile (contract/cpuid.ts; docs/model-choices.md row CPUID): the features the model
// implements and nothing else. This is how the table is read.
import type { Semantics } from "../transaction/semantics.ts";
import { CPUID_OSXSAVE_BIT, CPUID_SUBLEAF_LEAVES, type CpuidLeaf, type CpuidTable } from "../../contract/cpuid.ts";
import { RAX, RBX, RCX, RDX } from "../machine/registers.ts";

const ZERO: CpuidLeaf = { eax: 0, ebx: 0, ecx: 0, edx: 0 };
/** CR4.OSXSAVE (bit 18). */
const CR4_OSXSAVE = 1n << 18n;

/** The leaf for EAX = `leaf`, ECX = `subleaf` (CPUID-01), or the rule for a leaf beyond the
 *  highest basic or extended one (CPUID-02). */
function lookup(table: CpuidTable, leaf: number, subleaf: number): { readonly data: CpuidLeaf; readonly beyond: boolean } {
  const extended = leaf >= 0x8000_0000;
  const list = extended ? table.extended : table.basic;
  const index = extended ? leaf - 0x8000_0000 : leaf;
  const data = list[index];
  if (data !== undefined) return { data: CPUID_SUBLEAF_LEAVES.has(leaf) && subleaf !== 0 ? ZERO : data, beyond: false };
  if (table.beyondHighest === "zero") return { data: ZERO, beyond: true };
  const highest = table.basic.length - 1;
  return { data: CPUID_SUBLEAF_LEAVES.has(highest) && subleaf !== 0 ? ZERO : table.basic[highest]!, beyond: true };
}

/** CPUID: EAX, EBX, ECX, EDX ← the leaf EAX (subleaf ECX) selects, written as 32-bit registers
 *  (bits 63:32 cleared); CPUID.01H:ECX.OSXSAVE is a copy of CR4.OSXSAVE (CPUID-03). No flags, any
 *  CPL. */
export const cpuid: Semantics = (t) => {
  const leaf = Number(t.readReg(RAX, 4));
  const subleaf = Number(t.readReg(RCX, 4));
  const { data, beyond } = lookup(t.profile.cpuid, leaf, subleaf);
  t.hit(beyond ? "CPUID-02" : "CPUID-01");
  let ecx = data.ecx;
  if (leaf === 1) {
    t.hit("CPUID-03");
    ecx = (t.m.cr4 & CR4_OSXSAVE) !== 0n ? (ecx | (1 << CPUID_OSXSAVE_BIT)) >>> 0 : ecx & ~(1 << CPUID_OSXSAVE_BIT);
  }
  t.writeReg(RAX, 4, BigInt(data.eax >>> 0));
  t.writeReg(RBX, 4, BigInt(data.ebx >>> 0));
  t.writeReg(RCX, 4, BigInt(ecx >>> 0));
  t.writeReg(RDX, 4, BigInt(data.edx >>> 0));
  return undefined;
};
