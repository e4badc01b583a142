// The gate cache: what DELIVER-01..14 concluded for one vector at one CPL and event class (software
// interrupt or not), so that a repeated delivery (INT 0x80, a timer IRQ, #PF) skips the IDT read,
// the gate and code-descriptor checks and the TSS read. One entry per vector in Machine.gateCache,
// GATE_STRIDE int32 fields: generation, key (CPL | soft), target RIP, target CS selector and
// descriptor, gate type, new CPL, whether the stack comes from the TSS and that RSP.
//
// Filled by deliver.ts only when every table entry used (gate, TSS slot) lies in one allocated
// frame (both marked F_SYS), the code descriptor is in the descriptor cache and its accessed bit is
// already set (so a cached delivery writes nothing the general path would not). Invalidated, like
// every system-table cache, by a new system-table generation (tables/system-tables.ts: any TLB
// flush, LGDT/LIDT/LTR, a write to an F_SYS frame). The checks on live state (the RSP when the
// stack does not switch, the frame's translation and pushes) are evaluated on every delivery.
import type { Machine } from "../machine.ts";

const GATE_ENTRIES = 256;
/** Int32 fields per vector. */
export const GATE_STRIDE = 16;
/** Entry fields (deliver.ts reads them by these names). */
export const G_GENERATION = 0, G_KEY = 1, G_TARGET_LO = 2, G_TARGET_HI = 3, G_CS = 4, G_CS_LO = 5, G_CS_HI = 6,
  G_TYPE = 7, G_NEW_CPL = 8, G_STACK_FROM_TSS = 9, G_RSP_LO = 10, G_RSP_HI = 11;

export function newGateCache(): Int32Array {
  return new Int32Array(GATE_ENTRIES * GATE_STRIDE).fill(-1);
}

/** The entry key: the CPL delivering, and whether the event is a software interrupt (its gate DPL
 *  check applies). */
export function gateKey(cpl: number, soft: boolean): number {
  return cpl | (soft ? 4 : 0);
}

/** Index of vector's entry in Machine.gateCache when it holds `key` in the current generation
 *  (never in uncached mode); -1 otherwise. */
export function lookupGate(m: Machine, vector: number, key: number): number {
  const e = vector * GATE_STRIDE;
  const c = m.gateCache;
  return c[e + G_GENERATION] === m.systemTableGeneration && c[e + G_KEY] === key && !m.uncached ? e : -1;
}

/** Records a delivery's checked results for `vector` (the caller has marked the frames F_SYS). */
export function storeGate(m: Machine, vector: number, key: number, targetLo: number, targetHi: number, cs: number,
  csLo: number, csHi: number, gateType: number, newCpl: number, stackFromTss: boolean, rspLo: number,
  rspHi: number): void {
  const e = vector * GATE_STRIDE;
  const c = m.gateCache;
  c[e + G_GENERATION] = m.systemTableGeneration;
  c[e + G_KEY] = key;
  c[e + G_TARGET_LO] = targetLo;
  c[e + G_TARGET_HI] = targetHi;
  c[e + G_CS] = cs;
  c[e + G_CS_LO] = csLo;
  c[e + G_CS_HI] = csHi;
  c[e + G_TYPE] = gateType;
  c[e + G_NEW_CPL] = newCpl;
  c[e + G_STACK_FROM_TSS] = stackFromTss ? 1 : 0;
  c[e + G_RSP_LO] = rspLo;
  c[e + G_RSP_HI] = rspHi;
}
