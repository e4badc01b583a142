// Event delivery through the IDT in IA-32e mode — SDM Vol. 3A §6.14 "Exception and Interrupt
// Handling in 64-bit Mode", §6.12.1; Vol. 2A "INT n/INTO/INT3/INT1" pseudo-code, IA-32e branch
// (INTRA-PRIVILEGE-LEVEL-INTERRUPT / INTER-PRIVILEGE-LEVEL-INTERRUPT). One attempt: the checks in
// the SDM's order, each returning its fault as data, then the commit. Nesting (#DF, triple fault)
// is double-fault.ts, which also exports `deliver`, delivery callable alone.
import { GP, isFault, NP, PF, SS, TS, type Fault } from "../fault.ts";
import type { Segment } from "../../contract/state.ts";
import { canonical, cpl, joinHalves, RFLAGS, RSP, smallBigInt, split64, splitHigh, splitLow } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import {
  descriptorLocation, isCode, isConformingCode, isNullSelector, nullSegment, readDescriptor, segmentFromDescriptor,
} from "../segmentation/descriptor.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { setAccessed } from "./segment-load.ts";
import { extBit, idtErrorCode, pushesErrorCode, pushesRfSet, selectorErrorCode, type InterruptEvent } from "./exception-classes.ts";

export const DELIVER_RULES = defineRules([
  { id: "DELIVER-01", description: "IDT limit: 16·v + 15 > IDTR.limit → #GP(v·8 + 2 + EXT)", source: "SDM Vol. 3A §6.14.1; Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-02", description: "The 16-byte gate is read with implicit supervisor accesses; a gate in non-canonical space → #GP(v·8 + 2 + EXT)", source: "SDM Vol. 2A INT n, 64-Bit Mode Exceptions" },
  { id: "DELIVER-03", description: "Only 64-bit interrupt (1110b) and trap (1111b) gates are valid in the IDT → else #GP(v·8 + 2 + EXT)", source: "SDM Vol. 3A §6.14.1; Vol. 2A INT n" },
  { id: "DELIVER-04", description: "INT n / INT3 / INTO only: gate DPL < CPL → #GP(v·8 + 2)", source: "SDM Vol. 3A §6.12.1.1; Vol. 2A INT n" },
  { id: "DELIVER-05", description: "Gate not present → #NP(v·8 + 2 + EXT)", source: "SDM Vol. 2A INT n" },
  { id: "DELIVER-06", description: "Gate selector NULL → #GP(EXT)", source: "SDM Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-07", description: "Gate selector outside the GDT/LDT limit (or the descriptor in non-canonical space) → #GP(sel | EXT)", source: "SDM Vol. 2A INT n" },
  { id: "DELIVER-08", description: "Target not a code segment, or its DPL > CPL → #GP(sel | EXT)", source: "SDM Vol. 2A INT n" },
  { id: "DELIVER-09", description: "Target code segment not present → #NP(sel | EXT)", source: "SDM Vol. 2A INT n" },
  { id: "DELIVER-10", description: "Target not 64-bit code (L = 0, or L = 1 with D = 1) → #GP(sel | EXT) (model choice; SDM INT n lists it under #GP(selector))", source: "SDM Vol. 2A INT n, 64-Bit Mode Exceptions; Vol. 3A §6.14.1" },
  { id: "DELIVER-11", description: "Non-conforming code with DPL < CPL: inter-privilege, new CPL = DPL; otherwise new CPL = CPL", source: "SDM Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-12", description: "New RSP from TSS ISTn (any privilege) or RSPn (privilege change); field beyond TR.limit → #TS(TR.sel | EXT)", source: "SDM Vol. 3A §6.14.4, §6.14.5, §8.7" },
  { id: "DELIVER-13", description: "New RSP non-canonical → #SS(EXT)", source: "SDM Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-14", description: "Gate target offset non-canonical → #GP(EXT)", source: "SDM Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-15", description: "RSP aligned down to 16 before the frame is pushed, in every case", source: "SDM Vol. 3A §6.14.2" },
  { id: "DELIVER-16", description: "Push SS, RSP, RFLAGS, CS, RIP (+ error code) as 8-byte values at the new CPL; non-canonical frame → #SS(EXT)", source: "SDM Vol. 3A §6.14.2, Figure 6-9" },
  { id: "DELIVER-17", description: "Privilege change: SS ← NULL selector with RPL = new CPL; same privilege (IST or not): SS unchanged", source: "SDM Vol. 3A §6.14.2, §6.14.4" },
  { id: "DELIVER-18", description: "RSP ← aligned new RSP − frame size", source: "SDM Vol. 3A §6.14.2" },
  { id: "DELIVER-19", description: "CS ← gate selector with RPL = new CPL, cache from the descriptor; RIP ← gate offset", source: "SDM Vol. 2A INT n pseudo-code" },
  { id: "DELIVER-20", description: "TF, NT, RF, VM cleared; IF cleared for interrupt gates only; AC, DF, IOPL untouched", source: "SDM Vol. 3A §6.12.1.3; Vol. 2A INT n" },
  { id: "DELIVER-21", description: "Delivery ends HLT, ends any interrupt shadow, and (NMI) sets NMI blocking", source: "SDM Vol. 3A §6.7.1, §6.8.3" },
  { id: "DT-03", description: "64-bit TSS layout: RSPn at 04h + 8n (n = 0..2), ISTn at 24h + 8(n − 1) (n = 1..7), 8-byte fields at 4-mod-8 offsets", source: "SDM Vol. 3A §8.7, Figure 8-11" },
  { id: "DT-04", description: "Delivery reads the TSS through TR's cached base and limit; the TSS memory is read as it is now (rewriting RSP0 takes effect without reloading TR)", source: "SDM Vol. 3A §8.2.4, §6.14.5" },
  { id: "SMAP-03", description: "Delivery frame pushes (and IRET pops) are explicit accesses at the new (current) CPL — below 3 supervisor, so SMAP honours RFLAGS.AC — not implicit ones [unverified]", source: "SDM Vol. 3A §4.6.1; digest SMAP-03" },
  { id: "DELIVER-22", description: "GS and the GS bases are not touched by delivery", source: "SDM Vol. 2B SWAPGS", recordedWith: "DELIVER-19" },
]);

/** The 16-byte IA-32e IDT gate (SDM Vol. 3A §6.14.1, Figure 6-8). */
export interface IdtGate {
  readonly offset: bigint;
  readonly selector: number;
  readonly ist: number;
  readonly type: number;
  readonly s: number;
  readonly dpl: number;
  readonly present: number;
}

export function parseGate(low: bigint, high: bigint): IdtGate {
  // The gate's doublewords as Figure 6-8 draws them (bits within a doubleword as plain numbers,
  // split from the quadwords without a BigInt-to-Number conversion: registers.ts split64).
  split64(low);
  const dword0 = splitLow(); //   selector 31:16, offset 15:0
  const dword1 = splitHigh(); //  offset 31:16, P 15, DPL 14:13, 0 12, type 11:8, IST 2:0
  split64(high);
  const dword2 = splitLow(); //   offset 63:32
  return {
    offset: joinHalves(((dword1 & 0xffff_0000) | (dword0 & 0xffff)) >>> 0, dword2),
    selector: dword0 >>> 16,
    ist: dword1 & 7,
    type: (dword1 >>> 8) & 0xf,
    s: (dword1 >>> 12) & 1,
    dpl: (dword1 >>> 13) & 3,
    present: (dword1 >>> 15) & 1,
  };
}

/** DELIVER-20: the RFLAGS bits a delivery keeps — all but TF, NT, RF and VM, and IF through an
 *  interrupt gate (masks made once: a BigInt expression allocates each time it is evaluated). */
const KEPT_BY_TRAP_GATE = ~(RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM);
const KEPT_BY_INTERRUPT_GATE = ~(RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM | RFLAGS.IF);
/** DELIVER-15: clears bits 3:0 (RSP aligned down to 16). */
const ALIGN_16 = ~0xfn;

/** The options of a push of the frame: a stack access (#SS, not #GP). */
const STACK = { stack: true } as const;

export const INTERRUPT_GATE = 0xe;
export const TRAP_GATE = 0xf;

/** TSS offsets (DT-03): RSPn at 04h + 8n, ISTn at 24h + 8(n − 1). */
export const tssRspOffset = (n: number): number => 4 + 8 * n;
export const tssIstOffset = (n: number): number => 0x24 + 8 * (n - 1);

/**
 * Delivers `event` on the transaction's machine, whose RIP is the RIP to save (EXC-03) and whose
 * RFLAGS are the ones to save (RF per RF-03). Returns the fault a check raised — nothing is
 * committed then (GLOBAL-05; A/D bits aside) — or undefined with the handler entered.
 */
export function deliverOnce(t: Transaction, event: InterruptEvent): Fault | undefined {
  // PF-01: a #PF writes CR2 before its delivery begins, and a fault of the delivery keeps it.
  const address = event.address;
  if (event.vector === PF && event.source === "exception" && address !== undefined) t.updateKeptOnFault("PF-01", () => ({ cr2: address }));
  const m = t.now;
  const v = event.vector;
  const ext = extBit(event);
  t.hit("EXC-05");
  const oldCpl = cpl(m);

  // ---- the IDT gate -------------------------------------------------------------------------
  if (v * 16 + 15 > m.idtr.limit) return t.fault("DELIVER-01", GP, idtErrorCode(t, v, ext));
  const gateAddress = BigInt.asUintN(64, m.idtr.base + BigInt(v * 16));
  if (!canonical(gateAddress) || !canonical(BigInt.asUintN(64, gateAddress + 15n))) return t.fault("DELIVER-02", GP, idtErrorCode(t, v, ext));
  const low = t.readLinear(gateAddress, 8, "implicit");
  if (isFault(low)) return low;
  const high = t.readLinear(gateAddress + 8n, 8, "implicit");
  if (isFault(high)) return high;
  t.hit("DELIVER-02");
  const gate = parseGate(low, high);
  if (gate.s !== 0 || (gate.type !== INTERRUPT_GATE && gate.type !== TRAP_GATE)) return t.fault("DELIVER-03", GP, idtErrorCode(t, v, ext));
  if (event.source === "software" && gate.dpl < oldCpl) return t.fault("DELIVER-04", GP, idtErrorCode(t, v, 0));
  if (gate.present === 0) return t.fault("DELIVER-05", NP, idtErrorCode(t, v, ext));

  // ---- the target code segment --------------------------------------------------------------
  if (isNullSelector(gate.selector)) return t.fault("DELIVER-06", GP, ext);
  const location = descriptorLocation(t, gate.selector);
  if (!location.inside || !canonical(location.address) || !canonical(BigInt.asUintN(64, location.address + 7n)))
    return t.fault("DELIVER-07", GP, selectorErrorCode(t, gate.selector, ext));
  const code = readDescriptor(t, location.address);
  if (isFault(code)) return code;
  if (!isCode(code) || code.dpl > oldCpl) return t.fault("DELIVER-08", GP, selectorErrorCode(t, gate.selector, ext));
  if (code.present === 0) return t.fault("DELIVER-09", NP, selectorErrorCode(t, gate.selector, ext));
  // DELIVER-10 [ambiguous in the digest]: the SDM INT n page lists "doesn't have the L-bit set, or has
  // both the L-bit and D-bit set" under #GP(selector); QEMU and Bochs agree. Chosen: #GP(sel | EXT).
  if (code.l !== 1 || code.db !== 0) return t.fault("DELIVER-10", GP, selectorErrorCode(t, gate.selector, ext));

  // DELIVER-11: a non-conforming segment with DPL < CPL raises the privilege; conforming keeps CPL.
  const newCpl = isConformingCode(code) ? oldCpl : code.dpl;
  const interPrivilege = newCpl < oldCpl;
  t.hit("DELIVER-11");

  // ---- the new stack ------------------------------------------------------------------------
  let newRsp = m.gpr[RSP]!;
  const tssOffset = gate.ist !== 0 ? tssIstOffset(gate.ist) : interPrivilege ? tssRspOffset(newCpl) : null;
  if (tssOffset !== null) {
    // DT-03: the field's offset in the 64-bit TSS. DT-04: located through TR's cached base and
    // limit (not the GDT), read from memory as it is now.
    t.hit("DT-03");
    if (tssOffset + 7 > m.tr.limit) return t.fault("DELIVER-12", TS, selectorErrorCode(t, m.tr.selector, ext));
    const fromTss = t.readLinear(BigInt.asUintN(64, m.tr.base + BigInt(tssOffset)), 8, "implicit");
    if (isFault(fromTss)) return fromTss;
    t.hit("DT-04");
    newRsp = fromTss;
    t.hit("DELIVER-12");
  }
  if (!canonical(newRsp)) return t.fault("DELIVER-13", SS, ext);
  if (!canonical(gate.offset)) return t.fault("DELIVER-14", GP, ext);
  const aligned = newRsp & ALIGN_16;
  t.hit("DELIVER-15");

  // DELIVER-16: SS, RSP, RFLAGS, CS, RIP (, error code), 8 bytes each, from the top down, with the
  // privilege of the new CPL.
  // RF-03 by the event's class (EXC-01: fault or trap); EXC-03: the saved RIP is the machine's.
  const rflagsImage = pushesRfSet(event) ? m.rflags | RFLAGS.RF : m.rflags;
  t.hit("EXC-01");
  t.hit("RF-03");
  t.hit("EXC-03");
  const frame = [BigInt(m.ss.selector), m.gpr[RSP]!, rflagsImage, BigInt(m.cs.selector), m.rip];
  if (pushesErrorCode(event)) {
    frame.push(BigInt(event.errorCode ?? 0));
    t.hit("EXC-02");
  }
  // Like the legacy "room on the new stack" check, the whole frame is checked before any push. Its
  // slots run down from `aligned` − 8 to `bottom`, and (the canonical ranges being contiguous) all
  // are canonical exactly when those two are.
  const slot = (i: number): bigint => BigInt.asUintN(64, aligned - smallBigInt(8 * (i + 1)));
  const bottom = slot(frame.length - 1);
  if (!canonical(slot(0)) || !canonical(bottom)) return t.fault("DELIVER-16", SS, ext);
  // SMAP-03: the pushes are explicit accesses at the new CPL, not implicit ones: below CPL 3 they
  // are "supervisor" accesses, which SMAP lets reach a user page only while RFLAGS.AC = 1.
  const mode = newCpl === 3 ? "user" : "supervisor";
  t.hit("SMAP-03");
  for (let i = 0; i < frame.length; i++) {
    const f = t.writeLinear(slot(i), 8, frame[i]!, mode, STACK);
    if (isFault(f)) return f;
  }
  t.hit("DELIVER-16");

  // SEG-06: loading CS sets the accessed bit of its descriptor (an implicit write that can fault:
  // a fault of the delivery).
  const accessed = setAccessed(t, code);
  if (isFault(accessed)) return accessed;

  // ---- commit (no fault past this line) -----------------------------------------------------
  t.update("DELIVER-17", { ss: interPrivilege ? nullSegment(newCpl) : m.ss });
  t.writeGpr("DELIVER-18", RSP, bottom);
  const cs: Segment = segmentFromDescriptor((gate.selector & 0xfffc) | newCpl, accessed);
  t.update("DELIVER-19", { cs, rip: gate.offset });
  t.update("DELIVER-20", { rflags: m.rflags & (gate.type === INTERRUPT_GATE ? KEPT_BY_INTERRUPT_GATE : KEPT_BY_TRAP_GATE) });
  t.updateCpu("DELIVER-21", { halted: false, shadow: "none", nmiBlocked: m.cpu.nmiBlocked || event.source === "nmi" });
  return undefined;
}
