// The descriptor cache: GDT/LDT descriptors as last read for a selector, so that transitions
// (delivery, IRET, far RET, segment loads) need not translate and read the table again. Direct-
// mapped on selector bits 10:3, DESCRIPTOR_ENTRIES entries in Machine.descriptorCache: selector
// (RPL cleared), system-table generation, the descriptor's two dwords, its linear address.
//
// Filled by tables/descriptors.ts readDescriptor only when the 8 bytes lie in one allocated frame
// (then marked F_SYS). Invalidated, like every system-table cache, by a new system-table
// generation (tables/system-tables.ts: any TLB flush, LGDT/LIDT/LTR, a write to an F_SYS frame).
// An LDT selector is cached by selector alone: loading LDTR is not modelled (LLDT is unsupported),
// so the LDT cannot change but through those writes.
import type { Machine } from "../machine.ts";

const DESCRIPTOR_ENTRIES = 256;
const DESCRIPTOR_STRIDE = 8;
/** Entry fields. */
const D_SELECTOR = 0, D_GENERATION = 1, D_LO = 2, D_HI = 3, D_ADDR_LO = 4, D_ADDR_HI = 5;

export function newDescriptorCache(): Int32Array {
  return new Int32Array(DESCRIPTOR_ENTRIES * DESCRIPTOR_STRIDE).fill(-1);
}

function entryOf(selector: number): number {
  return ((selector >> 3) & (DESCRIPTOR_ENTRIES - 1)) * DESCRIPTOR_STRIDE;
}

/** True when `selector`'s descriptor is held in the current generation (the condition for filling
 *  the gate and IRET caches from it). */
export function descriptorCached(m: Machine, selector: number): boolean {
  const c = m.descriptorCache;
  const e = entryOf(selector);
  return c[e + D_SELECTOR] === (selector & 0xfffc) && c[e + D_GENERATION] === m.systemTableGeneration;
}

/** On a hit (never in uncached mode), puts the cached descriptor and its address into m.descriptor* and returns true. */
export function lookupDescriptor(m: Machine, selector: number): boolean {
  const c = m.descriptorCache;
  const e = entryOf(selector);
  if (c[e + D_SELECTOR] !== (selector & 0xfffc) || c[e + D_GENERATION] !== m.systemTableGeneration || m.uncached) {
    return false;
  }
  m.descriptorLo = c[e + D_LO]!;
  m.descriptorHi = c[e + D_HI]!;
  m.descriptorAddrLo = c[e + D_ADDR_LO]!;
  m.descriptorAddrHi = c[e + D_ADDR_HI]!;
  return true;
}

/** Records the descriptor just read (m.descriptor*) for `selector` in the current generation. */
export function storeDescriptor(m: Machine, selector: number): void {
  const c = m.descriptorCache;
  const e = entryOf(selector);
  c[e + D_SELECTOR] = selector & 0xfffc;
  c[e + D_GENERATION] = m.systemTableGeneration;
  c[e + D_LO] = m.descriptorLo;
  c[e + D_HI] = m.descriptorHi;
  c[e + D_ADDR_LO] = m.descriptorAddrLo;
  c[e + D_ADDR_HI] = m.descriptorAddrHi;
}
