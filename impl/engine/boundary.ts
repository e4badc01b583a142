// The instruction boundary: which event, if any, is taken before the next instruction (PRIO-01),
// and delivering it as a step of its own. The rules: a pending single-step trap first (held only by
// a MOV SS shadow, SHADOW-05), then NMI (unless blocked, or held by a MOV SS shadow, or by an STI
// shadow when the profile says so, SHADOW-04), then an IRQ (IF = 1, no shadow, and above the CR8
// task priority); a halted CPU with none of the last two deliverable stays halted (HLT-03/06).
// Not a cache.
import * as constsModule from "../consts.ts";
import type { Machine } from "../machine.ts";
import { deliver, DELIVERED, SHUTDOWN } from "../deliver.ts";
import type { StepContext } from "./context.ts";
import * as outcomesModule from "./outcomes.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  DB_VEC, EV_EXTERNAL, EV_NMI, EV_TRAP, IF, NMI_VEC, RIP_HI, RIP_LO, SHADOW_MOVSS, SHADOW_NONE, SHADOW_STI, DR6_LO,
} = constsModule;
/** DR6.BS: the single-step trap's status bit. */
const DR6_BS = 1 << 14;
const {
  BOUNDARY_DEBUG_TRAP, BOUNDARY_HALTED, BOUNDARY_IRQ, BOUNDARY_NMI, BOUNDARY_NONE, R_DELIVERED, R_MEMLIMIT, R_SHUTDOWN,
} = outcomesModule;

/** What the boundary allows now (outcomes.ts BOUNDARY_*: PRIO-01, SHADOW-04/05, NMI-02, HLT-03/06,
 *  CR8 TPR). */
export function boundaryEvent(m: Machine): number {
  const inhibitAll = m.shadow === SHADOW_MOVSS;
  const irqOk = m.pendingIrq >= 0 && (m.flags & IF) !== 0 && m.shadow === SHADOW_NONE &&
    !(m.cr8 !== 0 && m.pendingIrq >> 4 <= m.cr8);
  // SHADOW-04: whether an STI shadow holds back NMI is the profile's choice.
  const nmiHeld = inhibitAll || (m.shadow === SHADOW_STI && m.profile.stiShadowBlocksNmi);
  const nmiOk = m.pendingNmi && !m.nmiBlocked && !nmiHeld;
  if (m.halted && !irqOk && !nmiOk) return BOUNDARY_HALTED;
  if (m.pendingDebugTrap && !inhibitAll) return BOUNDARY_DEBUG_TRAP;
  if (nmiOk) return BOUNDARY_NMI;
  if (irqOk) return BOUNDARY_IRQ;
  return BOUNDARY_NONE;
}

/** Delivers boundary event `ev` (BOUNDARY_DEBUG_TRAP, _NMI or _IRQ): one step. Returns an R_*
 *  outcome. */
export function deliverBoundary(ctx: StepContext, ev: number): number {
  const m = ctx.m;
  const lo = m.regs[RIP_LO]!, hi = m.regs[RIP_HI]!;
  ctx.ripLo = lo;
  ctx.ripHi = hi;
  let vector: number, source: number;
  if (ev === BOUNDARY_DEBUG_TRAP) {
    m.pendingDebugTrap = false;
    // The single-step trap sets DR6.BS (bit 14) before its #DB is delivered.
    m.debug[DR6_LO] = m.debug[DR6_LO]! | DR6_BS;
    vector = DB_VEC;
    source = EV_TRAP;
  } else if (ev === BOUNDARY_NMI) {
    // Consumed and blocking from the start of its delivery, even if that faults.
    m.pendingNmi = false;
    m.nmiBlocked = true;
    vector = NMI_VEC;
    source = EV_NMI;
  } else {
    vector = m.pendingIrq;
    m.pendingIrq = -1;
    source = EV_EXTERNAL;
  }
  return deliveryOutcome(deliver(m, vector, source, -1, lo, hi, lo, hi));
}

/** The step outcome of a deliver() result. */
export function deliveryOutcome(r: number): number {
  if (r === DELIVERED) return R_DELIVERED;
  if (r === SHUTDOWN) return R_SHUTDOWN;
  return R_MEMLIMIT;
}
