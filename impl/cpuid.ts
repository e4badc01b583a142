// CPUID: the leaves of the profile's table (contract/cpuid.ts; docs/model-choices.md row "CPUID").
// A leaf above the highest basic or extended leaf: Intel returns the highest basic leaf (for the
// same ECX), AMD zeros. Leaf 7 takes a subleaf in ECX (subleaf 0 is in the table, others are
// zeros). CPUID.01H:ECX[27] (OSXSAVE) is CR4.OSXSAVE at the time of the instruction. EAX, EBX,
// ECX, EDX are written as 32-bit registers; any CPL; no flags. Not a cache.
import type { Machine } from "./machine.ts";
import * as constsModule from "./consts.ts";
import { CPUID_OSXSAVE_BIT, CPUID_SUBLEAF_LEAVES, type CpuidLeaf } from "../contract/cpuid.ts";
import { setReg } from "./exec.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { RAX, RBX, RCX, RDX, ST_OK } = constsModule;

const CR4_OSXSAVE = 1 << 18;
const EXTENDED = 0x8000_0000;
const ZERO: CpuidLeaf = { eax: 0, ebx: 0, ecx: 0, edx: 0 };

export function execCpuid(m: Machine): number {
  const leaf = m.regs[2 * RAX]! >>> 0;
  const subleaf = m.regs[2 * RCX]! >>> 0;
  const out = lookup(m, leaf, subleaf);
  let ecx = out.ecx;
  if (leaf === 1 && (m.cr4 & CR4_OSXSAVE) !== 0) ecx |= 1 << CPUID_OSXSAVE_BIT;
  setReg(m, RAX, 4, out.eax, 0);
  setReg(m, RBX, 4, out.ebx, 0);
  setReg(m, RCX, 4, ecx, 0);
  setReg(m, RDX, 4, out.edx, 0);
  return ST_OK;
}

function lookup(m: Machine, leaf: number, subleaf: number): CpuidLeaf {
  const table = m.profile.cpuid;
  const basic = table.basic, extended = table.extended;
  if (leaf < basic.length) return basicLeaf(basic, leaf, subleaf);
  if (leaf >= EXTENDED && leaf - EXTENDED < extended.length) return extended[leaf - EXTENDED]!;
  return table.beyondHighest === "zero" ? ZERO : basicLeaf(basic, basic.length - 1, subleaf);
}

function basicLeaf(basic: readonly CpuidLeaf[], leaf: number, subleaf: number): CpuidLeaf {
  if (CPUID_SUBLEAF_LEAVES.has(leaf) && subleaf !== 0) return ZERO;
  return basic[leaf]!;
}
