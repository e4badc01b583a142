// What happens at an instruction boundary, before the next instruction: which pending event is
// taken (SDM Vol. 3A §6.9, Table 6-2) and how, what the interrupt shadows hold back (§6.8.3, STI),
// how a halted CPU wakes (HLT), and the rules of RF and TF across instructions (§18.3.1).
import { match } from "ts-pattern";
import type { Instruction } from "../decode/instruction.ts";
import { patchRegisters, type MachineRegisters } from "../machine/machine.ts";
import type { MemoryDraft } from "../machine/physical-memory.ts";
import { DR6_BS, RFLAGS } from "../machine/registers.ts";
import type { Profile } from "../../contract/profile.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import { Transaction } from "../transaction/transaction.ts";
import { deliverWithNestingOn, type DeliveryOutcome } from "./double-fault.ts";
import { externalEvent, NMI_EVENT, SINGLE_STEP_EVENT, type InterruptEvent } from "./exception-classes.ts";

export const BOUNDARY_RULES = defineRules([
  { id: "PRIO-01", description: "At a boundary: single-step trap of the previous instruction > NMI > maskable interrupt > the next instruction", source: "SDM Vol. 3A §6.9, Table 6-2" },
  { id: "PRIO-02", description: "Events not taken stay pending; each boundary delivers at most one event (one step)", source: "SDM Vol. 3A §6.9" },
  { id: "PRIO-03", description: "A single-step trap and a pending interrupt: #DB first, the interrupt at a later boundary", source: "SDM Vol. 3A §6.9" },
  { id: "PRIO-04", description: "An interrupt taken while halted saves the RIP after HLT", source: "SDM Vol. 2A HLT; Vol. 3A §6.5" },
  { id: "SHADOW-01", description: "STI setting IF 0→1 holds back maskable interrupts for one boundary", source: "SDM Vol. 2A STI" },
  { id: "SHADOW-02", description: "A shadow lasts for exactly one boundary: cleared when the next instruction starts or any event is delivered", source: "SDM Vol. 2A STI; Vol. 3A §6.8.3" },
  { id: "SHADOW-03", description: "sti; hlt wakes on an interrupt; sti; cli opens no window", source: "SDM Vol. 2A STI" },
  { id: "SHADOW-04", description: "Whether an STI shadow also holds back NMI is implementation-specific (Profile.stiShadowBlocksNmi)", source: "SDM Vol. 2A STI" },
  { id: "SHADOW-05", description: "MOV SS / POP SS hold back interrupts, NMI and single-step traps until after the next instruction", source: "SDM Vol. 3A §6.8.3" },
  { id: "SHADOW-06", description: "A trap held by MOV SS survives the next instruction's transfer (INT n, SYSCALL, a fault) and is taken at the handler", source: "SDM Vol. 3A §6.8.3; CVE-2018-8897" },
  { id: "SHADOW-07", description: "A MOV SS in a MOV SS shadow does not open a new shadow", source: "SDM Vol. 3A §6.8.3" },
  { id: "SHADOW-08", description: "IRET and SYSRET open no shadow", source: "SDM Vol. 2A IRET, SYSRET", recordedWith: ["IRETQ-14", "SYSRET-06", "SYSRET-V3"] },
  { id: "SHADOW-09", description: "Faults of the shadowed instruction itself are not held back", source: "SDM Vol. 3A §6.8.3" },
  { id: "RF-01", description: "RF is cleared when an instruction completes (IRET may load it again)", source: "SDM Vol. 3A §18.3.1.1" },
  { id: "TF-01", description: "A completed instruction that started with TF = 1 leaves a single-step trap (SYSCALL/SYSRET: TF after; not INT n)", source: "SDM Vol. 3A §18.3.1.4" },
  { id: "TF-02", description: "The single-step #DB is a trap: saved RIP = the next instruction", source: "SDM Vol. 3A §18.3.1.4" },
  { id: "TF-03", description: "Taking the single-step trap sets DR6.BS (bit 14) before the #DB is delivered; the other DR6 bits and DR7 are unchanged", source: "SDM Vol. 3A §19.2.3 (BS), §19.3.1.4" },
  { id: "HLT-03", description: "A halted CPU wakes on an unblocked NMI or a maskable interrupt it would take; saved RIP after HLT", source: "SDM Vol. 2A HLT" },
  { id: "HLT-04", description: "Halted with IF = 0 and no NMI: nothing wakes it (the run stops \"hlt\")", source: "SDM Vol. 2A HLT" },
  { id: "HLT-05", description: "sti; hlt: the shadow covers HLT, the interrupt wakes it after", source: "SDM Vol. 2A STI" },
  { id: "HLT-06", description: "A single-step trap after HLT is taken when the CPU wakes, before the waking event", source: "SDM Vol. 3A §18.3.1.4" },
  { id: "PRIO-TPR", description: "A maskable interrupt waits while its priority class (vector >> 4) is not above CR8[3:0]; CR8 = 0 holds back none", source: "SDM Vol. 3A §11.8.6; AMD APM Vol. 2 §16.6.4" },
  { id: "NMI-01", description: "NMI: vector 2, not masked by IF, EXT = 1, no error code, no DPL check", source: "SDM Vol. 3A §6.7" },
  { id: "NMI-02", description: "NMI delivery blocks further NMIs; one more stays latched", source: "SDM Vol. 3A §6.7.1" },
  { id: "NMI-03", description: "The next IRET (even one that faults) ends NMI blocking", source: "SDM Vol. 3A §6.7.1", recordedWith: "IRETQ-00" },
  { id: "NMI-04", description: "An NMI wakes HLT even with IF = 0", source: "SDM Vol. 2A HLT" },
  { id: "NMI-05", description: "NMI blocking persists across SYSCALL and SYSRET", source: "SDM Vol. 3A §6.7.1", recordedWith: ["SYSCALL-06", "SYSRET-06", "SYSRET-V3"] },
]);


export type BoundaryEvent =
  | { readonly kind: "single-step"; readonly event: InterruptEvent }
  | { readonly kind: "nmi"; readonly event: InterruptEvent }
  | { readonly kind: "external"; readonly event: InterruptEvent };

/**
 * PRIO-01: the highest-priority event deliverable at this boundary, or null (run the instruction):
 * a single-step trap from the previous instruction > NMI > a maskable interrupt.
 * - SHADOW-05: a MOV SS / POP SS shadow holds back all three.
 * - SHADOW-01 / SHADOW-04: an STI shadow holds back maskable interrupts, and NMI when the profile
 *   says so.
 * - NMI-02: a blocked NMI stays pending.
 * - Maskable interrupts need IF = 1, no shadow, and to pass CR8 (aboveTaskPriority).
 * PRIO-02: what is not taken stays pending.
 */
export function pendingBoundaryEvent(m: MachineRegisters, profile: Profile): BoundaryEvent | null {
  const cpu = m.cpu;
  const movss = cpu.shadow === "movss";
  if (cpu.pendingDebugTrap && !movss) return { kind: "single-step", event: SINGLE_STEP_EVENT };
  const nmiHeld = movss || (cpu.shadow === "sti" && profile.stiShadowBlocksNmi);
  if (cpu.pendingNmi && !cpu.nmiBlocked && !nmiHeld) return { kind: "nmi", event: NMI_EVENT };
  if (cpu.pendingIrq !== null && cpu.shadow === "none" && (m.rflags & RFLAGS.IF) !== 0n && aboveTaskPriority(cpu.pendingIrq, m.cr8))
    return { kind: "external", event: externalEvent(cpu.pendingIrq) };
  return null;
}

/**
 * CR8 (TPR): a maskable interrupt is taken when its priority class (vector >> 4) is above CR8[3:0];
 * CR8 = 0 holds back nothing (SDM Vol. 3A §11.8.6.1 / AMD APM Vol. 2 §16.6.4: "0 enables all",
 * which vector irq-vector14-no-errcode relies on for the class-0 vector 14).
 */
export function aboveTaskPriority(vector: number, cr8: bigint): boolean {
  const tpr = Number(cr8 & 0xfn);
  return tpr === 0 || vector >> 4 > tpr;
}

/**
 * HLT-03 / NMI-04: whether a halted CPU leaves the HALT state — an NMI that is not blocked, or a
 * maskable interrupt that would be taken (IF = 1, above the TPR). A single-step trap left by the HLT
 * itself does not wake it; it is taken first once something does (HLT-06, PRIO-01).
 */
export function canWake(m: MachineRegisters, profile: Profile): boolean {
  const cpu = m.cpu;
  if (cpu.shutdown) return false;
  const awake = patchRegisters(m, { cpu: { ...cpu, pendingDebugTrap: false } });
  return pendingBoundaryEvent(awake, profile) !== null;
}

/** Instructions that load SS and so open the MOV SS shadow (SHADOW-05). */
export function loadsSs(insn: Instruction): boolean {
  if (insn.mnemonic !== "mov_to_sreg" && insn.mnemonic !== "pop_sreg") return false;
  const dest = insn.operands[0];
  return dest !== undefined && dest.kind === "sreg" && dest.sreg === "ss";
}

/**
 * PRIO-01: takes `pending` at this boundary: consumed from the pending state, then delivered
 * (RIP = the next instruction, or the one after HLT: PRIO-04).
 */
export function takeBoundaryEvent(m: MachineRegisters, memory: MemoryDraft, pending: BoundaryEvent, profile: Profile, coverage: Set<RuleId> | null): DeliveryOutcome<MachineRegisters> {
  const t = new Transaction(m, profile, coverage, memory);
  t.hit("PRIO-01");
  if (m.cpu.halted) t.hit(pending.kind === "single-step" ? "HLT-06" : "HLT-03");
  const cpu = m.cpu;
  match(pending)
    .with({ kind: "single-step" }, () => {
      t.update("TF-02", { cpu: { ...cpu, pendingDebugTrap: false } });
      t.update("TF-03", { dr6: m.dr6 | DR6_BS });
    })
    // NMI-01 / NMI-02: blocking starts with the delivery, even if the delivery itself faults.
    .with({ kind: "nmi" }, () => {
      t.hit("NMI-01");
      t.update("NMI-02", { cpu: { ...cpu, pendingNmi: false, nmiBlocked: true } });
    })
    // PRIO-02 / vector README: an external interrupt is delivered once.
    .with({ kind: "external" }, () => t.update("PRIO-02", { cpu: { ...cpu, pendingIrq: null } }))
    .exhaustive();
  // Recorded after the rules the trace lays out as the event's own (trace/model/templates.ts EVENT).
  // PRIO-03: the single-step #DB goes before an interrupt pending at the same boundary.
  if (pending.kind === "single-step" && cpu.pendingIrq !== null) t.hit("PRIO-03");
  if (cpu.halted && pending.kind !== "single-step") {
    t.hit("PRIO-04");
    // NMI-04: an NMI wakes HLT whatever IF says.
    if (pending.kind === "nmi") t.hit("NMI-04");
  }
  // SHADOW-04: the profile let this NMI through an STI shadow (Profile.stiShadowBlocksNmi).
  if (pending.kind === "nmi" && cpu.shadow === "sti") t.hit("SHADOW-04");
  // PRIO-TPR: the interrupt's priority class was above a non-zero CR8.
  if (pending.kind === "external" && (m.cr8 & 0xfn) !== 0n) t.hit("PRIO-TPR");
  return deliverWithNestingOn(t.m, t.m, memory, pending.event, profile, coverage);
}
