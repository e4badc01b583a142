// The mode-transfer sequences in the SDM's order, one template per transition family: each item
// names its rule, says what it does with this transition's values, and (for a check) why it fails.
// The sequence of a step (sequence.ts) follows the order in which the engine reported the rules;
// a check the spec records only when it fails (`silent`) is placed where the template puts it.
import type { ArchState } from "../../contract/state.ts";
import { flagChanges } from "../text.ts";
import {
  canonicalText, faultName, gateTypeName, stackWords, vectorName, withSymbol,
  type DeliveryFacts,
} from "./facts.ts";
import { MASK64, canonical, cplOf, descriptorOf, hex, isCodeDescriptor, isConforming, modeOf, type DescriptorView } from "./machine.ts";
import type { Symbolizer } from "../symbols.ts";
import type { SequenceLine } from "./types.ts";

export interface TemplateItem<F> {
  readonly rule: string;
  readonly phase: SequenceLine["phase"];
  /** A check the engine records only when it fails: placed by the template when it passed. */
  readonly silent?: boolean;
  /** Whether the item belongs to this transition (default: always). */
  readonly applies?: (f: F) => boolean;
  /** What it did (several lines for the pushes). */
  readonly text: (f: F) => string | readonly string[];
  /** Why it failed, with the values. */
  readonly why?: (f: F) => string;
}

// ------------------------------------------------------------------------------------------------
// Delivery through the IDT (SDM Vol. 3A §6.14; spec/transitions/deliver.ts)

const flat = (f: DeliveryFacts) => f.gate !== null;
const sel = (v: number) => hex(v);

function codeText(d: DescriptorView | null): string {
  if (d === null) return "not readable";
  const kind = isCodeDescriptor(d) ? (isConforming(d) ? "conforming code" : "code") : d.s === 1 ? "data" : "a system descriptor";
  return `${kind}, DPL ${d.dpl}, P = ${d.present}, L = ${d.l}, D = ${d.db}`;
}

export const DELIVERY: readonly TemplateItem<DeliveryFacts>[] = [
  {
    rule: "PF-01", phase: "update",
    applies: (f) => f.vector === 14 && f.source === "exception",
    text: (f) => `CR2 ← ${hex(f.cr2)}, the faulting linear address, before delivery begins`,
  },
  {
    rule: "DELIVER-01", phase: "check", silent: true,
    text: (f) => `gate ${hex(f.vector)} lies within the IDT: 16·${hex(f.vector)} + 15 = ${hex(f.vector * 16 + 15)} ≤ IDTR.limit ${hex(f.on.idtr.limit)}`,
    why: (f) => `16·${hex(f.vector)} + 15 = ${hex(f.vector * 16 + 15)} > IDTR.limit ${hex(f.on.idtr.limit)}: the IDT has no gate ${hex(f.vector)}`,
  },
  {
    rule: "DELIVER-02", phase: "read",
    text: (f) =>
      f.gate === null
        ? `gate ${hex(f.vector)} read at IDTR.base + 16·${hex(f.vector)}`
        : `gate ${hex(f.vector)} read at ${hex(f.gate.address)} (IDTR.base + ${hex(f.vector * 16)}): target ${sel(f.gate.selector)}:${withSymbol(f.gate.offset, f.symbol)}, IST ${f.gate.ist}, DPL ${f.gate.dpl}, P = ${f.gate.present}`,
    why: (f) => `the gate's address ${f.gate === null ? "" : hex(f.gate.address) + " "}is not canonical`,
  },
  {
    rule: "DELIVER-03", phase: "check", silent: true, applies: flat,
    text: (f) => `gate type ${hex(f.gate!.type)}: ${gateTypeName(f.gate!.type, f.gate!.s)}`,
    why: (f) => `the descriptor in the IDT is ${gateTypeName(f.gate!.type, f.gate!.s)}`,
  },
  {
    rule: "DELIVER-04", phase: "check", silent: true,
    applies: (f) => flat(f) && f.source === "software",
    text: (f) => `INT n from CPL ${f.oldCpl}: gate DPL ${f.gate!.dpl} ≥ CPL ${f.oldCpl}`,
    why: (f) => `INT n from CPL ${f.oldCpl} through a gate with DPL ${f.gate!.dpl} < CPL: user code may not raise this vector`,
  },
  {
    rule: "DELIVER-05", phase: "check", silent: true, applies: flat,
    text: () => `gate present (P = 1)`,
    why: () => `gate not present (P = 0)`,
  },
  {
    rule: "DELIVER-06", phase: "check", silent: true, applies: flat,
    text: (f) => `gate selector ${sel(f.gate!.selector)} is not NULL`,
    why: () => `the gate's selector is NULL`,
  },
  {
    rule: "DELIVER-07", phase: "check", silent: true, applies: flat,
    text: (f) => `selector ${sel(f.gate!.selector)} within the GDT (limit ${hex(f.on.gdtr.limit)})`,
    why: (f) => `selector ${sel(f.gate!.selector)} lies beyond the GDT limit ${hex(f.on.gdtr.limit)}`,
  },
  {
    rule: "DELIVER-08", phase: "check", silent: true, applies: flat,
    text: (f) => `target ${sel(f.gate!.selector)} is ${codeText(f.code)} (DPL ≤ CPL ${f.oldCpl})`,
    why: (f) => `target ${sel(f.gate!.selector)} is ${codeText(f.code)}: not a code segment with DPL ≤ CPL ${f.oldCpl}`,
  },
  {
    rule: "DELIVER-09", phase: "check", silent: true, applies: flat,
    text: () => `target code segment present`,
    why: (f) => `target code segment ${sel(f.gate!.selector)} not present`,
  },
  {
    rule: "DELIVER-10", phase: "check", silent: true, applies: flat,
    text: () => `target is 64-bit code (L = 1, D = 0)`,
    why: (f) => `target is not 64-bit code (L = ${f.code?.l ?? "?"}, D = ${f.code?.db ?? "?"})`,
  },
  {
    rule: "DELIVER-11", phase: "check",
    text: (f) =>
      f.interPrivilege
        ? `DPL ${f.code?.dpl ?? f.newCpl} < CPL ${f.oldCpl}: privilege change, new CPL ${f.newCpl}`
        : `no privilege change: CPL stays ${f.oldCpl}`,
  },
  {
    rule: "DT-03", phase: "read", applies: (f) => f.tss !== null,
    text: (f) => `stack from TSS.${f.tss!.field}, at TSS + ${hex(f.tss!.offset)}`,
  },
  {
    rule: "DT-04", phase: "read", applies: (f) => f.tss !== null,
    text: (f) => `TSS read through TR.base ${hex(f.on.tr.base)} (TR.limit ${hex(f.on.tr.limit)})`,
  },
  {
    rule: "DELIVER-12", phase: "read",
    text: (f) =>
      f.tss === null
        ? `no stack switch (same privilege, IST 0): the frame goes on the current stack, RSP ${hex(f.on.gpr[4]!)}`
        : `new RSP ← TSS.${f.tss.field} = ${f.tss.value === null ? "(unreadable)" : hex(f.tss.value)}${f.gate !== null && f.gate.ist !== 0 ? ` (IST ${f.gate.ist}: switched whatever the privilege)` : ""}`,
    why: (f) => `TSS.${f.tss?.field ?? "?"} at offset ${hex(f.tss?.offset ?? 0)} + 7 lies beyond TR.limit ${hex(f.on.tr.limit)}`,
  },
  {
    rule: "DELIVER-13", phase: "check", silent: true,
    text: (f) => `new RSP ${f.newRsp === null ? "?" : hex(f.newRsp)} is canonical`,
    why: (f) => `new RSP ${f.newRsp === null ? "?" : hex(f.newRsp)} is not canonical`,
  },
  {
    rule: "DELIVER-14", phase: "check", silent: true, applies: flat,
    text: (f) => `handler ${hex(f.gate!.offset)} is canonical`,
    why: (f) => `the gate's target ${hex(f.gate!.offset)} is not canonical`,
  },
  {
    rule: "DELIVER-15", phase: "update",
    text: (f) =>
      f.newRsp === null || f.aligned === null
        ? `RSP aligned down to 16`
        : f.aligned === f.newRsp
          ? `RSP ${hex(f.newRsp)} is already 16-byte aligned`
          : `RSP aligned down to 16: ${hex(f.newRsp)} → ${hex(f.aligned)} (${Number(f.newRsp - f.aligned)} bytes skipped)`,
  },
  {
    rule: "RF-03", phase: "note",
    applies: (f) => f.source === "exception",
    text: (f) => {
      const image = f.slots.find((s) => s.name === "RFLAGS")?.value;
      const rf = image !== undefined && (image & (1n << 16n)) !== 0n;
      return `the pushed RFLAGS image has RF = ${rf ? 1 : 0}${rf ? " (a fault: the instruction restarts without a repeated instruction breakpoint)" : ""}`;
    },
  },
  {
    rule: "DELIVER-16", phase: "push",
    text: (f) => f.slots.map((s) => `push ${s.name} ${slotValue(s.name, s.value, f.symbol)} at ${hex(s.address)}`),
    why: () => `a frame slot is not canonical: #SS`,
  },
  {
    rule: "EXC-02", phase: "push", applies: (f) => f.errorCode !== null,
    text: (f) => `${vectorName(f.vector)} pushes an error code: ${hex(f.errorCode!)}${errorCodeMeaning(f.vector, f.errorCode!)}`,
  },
  {
    rule: "SEG-06", phase: "update",
    text: (f) => `the accessed bit of the CS descriptor ${f.gate === null ? "" : sel(f.gate.selector) + " "}is set`,
  },
  {
    rule: "DELIVER-17", phase: "update",
    text: (f) => (f.interPrivilege ? `SS ← NULL selector ${hex(f.newCpl)} (RPL = new CPL ${f.newCpl})` : `SS unchanged (no privilege change)`),
  },
  {
    rule: "DELIVER-18", phase: "update",
    text: (f) => {
      const bottom = f.slots[f.slots.length - 1];
      return `RSP ← ${bottom === undefined ? "the frame's last slot" : hex(bottom.address)} (${f.slots.length} slots of 8 bytes)`;
    },
  },
  {
    rule: "DELIVER-19", phase: "update",
    text: (f) => {
      const cs = f.entered?.cs.selector ?? ((f.gate?.selector ?? 0) & 0xfffc) | f.newCpl;
      const rip = f.entered?.rip ?? f.gate?.offset ?? 0n;
      return `CS:RIP ← ${hex(cs)}:${withSymbol(rip, f.symbol)}: CPL ${f.newCpl}`;
    },
  },
  {
    rule: "DELIVER-20", phase: "update",
    text: (f) => {
      const trap = f.gate?.type === 0xf;
      const change = f.entered === null ? "" : flagChanges(f.on.rflags, f.entered.rflags);
      return `${trap ? "trap gate: IF unchanged" : "interrupt gate: IF cleared"}; TF, NT, RF, VM cleared${change === "" ? "" : ` (${change})`}`;
    },
  },
  { rule: "RF-04", phase: "update", text: () => `RF = 0 in the handler` },
  {
    rule: "DELIVER-21", phase: "update",
    text: (f) => `${f.on.cpu.halted ? "HLT ended; " : ""}any interrupt shadow ended${f.source === "nmi" ? "; NMIs blocked until the next IRET" : ""}`,
  },
  {
    rule: "DELIVER-22", phase: "note",
    text: (f) => `GS untouched: GS.base ${hex(f.on.gs.base)}, KERNEL_GS_BASE ${hex(f.on.kernelGsBase)}${f.interPrivilege ? " (the handler's SWAPGS reaches per-CPU data)" : ""}`,
  },
];

function slotValue(name: string, value: bigint, symbol: Symbolizer): string {
  return name === "RIP" ? withSymbol(value, symbol) : hex(value);
}

/** What an error code says, for the vectors whose codes have fields (SDM Vol. 3A §6.13, §4.7). */
export function errorCodeMeaning(vector: number, code: number): string {
  if (vector === 14) {
    const bits = [
      code & 1 ? "P=1 protection" : "P=0 not present",
      code & 2 ? "W/R=1 write" : "W/R=0 read",
      code & 4 ? "U/S=1 user" : "U/S=0 supervisor",
      ...(code & 8 ? ["RSVD=1 reserved bit"] : []),
      ...(code & 16 ? ["I/D=1 instruction fetch"] : []),
    ];
    return ` (${bits.join(", ")})`;
  }
  if ([8, 17].includes(vector)) return "";
  if (code === 0) return "";
  const where = code & 2 ? `IDT vector ${hex(code >> 3)}` : `${code & 4 ? "LDT" : "GDT"} selector ${hex(code & 0xfff8)}`;
  return ` (${where}${code & 1 ? ", EXT = 1" : ""})`;
}

// ------------------------------------------------------------------------------------------------
// Instructions: the facts are the states before and after, and the symbolizer.

export interface InstructionFacts {
  readonly before: ArchState;
  /** The state after the step (the handler's entry state if the instruction faulted). */
  readonly after: ArchState;
  /** The instruction completed (no fault). */
  readonly completed: boolean;
  /** Operand size of IRET/far RET (8 for IRETQ). */
  readonly size: number;
  /** Length of the instruction. */
  readonly length: number;
  readonly symbol: Symbolizer;
}

const rcx = (s: ArchState) => s.gpr[1]!;
const r11 = (s: ArchState) => s.gpr[11]!;
const nextRip = (f: InstructionFacts) => (f.before.rip + BigInt(f.length)) & MASK64;

export const SYSCALL: readonly TemplateItem<InstructionFacts>[] = [
  {
    rule: "SYSCALL-01", phase: "check", silent: true,
    text: (f) => (modeOf(f.before) === "64" ? `in 64-bit mode (CS.L = 1)` : `in compatibility mode: allowed by this profile (enters through CSTAR)`),
    why: () => `SYSCALL outside 64-bit mode: #UD under the intel profile`,
  },
  {
    rule: "SYSCALL-02", phase: "check", silent: true,
    text: (f) => `EFER.SCE = 1 (EFER ${hex(f.before.efer)})`,
    why: (f) => `EFER.SCE = 0 (EFER ${hex(f.before.efer)}): SYSCALL is disabled`,
  },
  { rule: "SYSCALL-03", phase: "update", text: (f) => `RCX ← ${hex(rcx(f.after))}, the RIP of the next instruction` },
  { rule: "SYSCALL-04", phase: "update", text: (f) => `R11 ← RFLAGS ${hex(r11(f.after))}` },
  {
    rule: "SYSCALL-05", phase: "update",
    text: (f) => `RFLAGS ← RFLAGS & ~FMASK ${hex(f.before.fmask & 0xffff_ffffn)} = ${hex(f.after.rflags)}${flagText(f.before.rflags, f.after.rflags)}`,
  },
  {
    rule: "SYSCALL-11", phase: "note",
    text: (f) =>
      (f.before.fmask & (1n << 9n)) !== 0n
        ? `IF is in FMASK: no interrupt before the first handler instruction`
        : `IF is not in FMASK: an interrupt may arrive at the first handler instruction, on the user stack`,
  },
  {
    rule: "SYSCALL-06", phase: "update",
    text: (f) => `CS ← STAR[47:32] & 0xfffc = ${hex(f.after.cs.selector)} (flat 64-bit code, DPL 0; the GDT is not read): CPL 0`,
  },
  { rule: "SYSCALL-07", phase: "update", text: (f) => `SS ← STAR[47:32] + 8 = ${hex(f.after.ss.selector)} (flat data, DPL 0)` },
  { rule: "SYSCALL-V2", phase: "note", applies: () => false, text: () => `the SS selector is not masked (both profiles)` },
  { rule: "SYSCALL-08", phase: "update", applies: (f) => modeOf(f.before) === "64", text: (f) => `RIP ← LSTAR ${withSymbol(f.after.rip, f.symbol)}` },
  { rule: "SYSCALL-V1", phase: "update", applies: (f) => modeOf(f.before) !== "64", text: (f) => `RIP ← CSTAR ${withSymbol(f.after.rip, f.symbol)} (amd, from compatibility mode)` },
  {
    rule: "SYSCALL-09", phase: "note",
    text: (f) => `RSP unchanged (${hex(f.after.gpr[4]!)}: still the user stack), nothing pushed, GS not swapped: the entry code must SWAPGS and switch stacks`,
  },
  { rule: "SYSCALL-10", phase: "note", text: (f) => `TF after the mask is ${(f.after.rflags >> 8n) & 1n}: ${(f.after.rflags & 0x100n) !== 0n ? "a single-step trap follows" : "no single-step trap"}` },
];

export const SYSRET: readonly TemplateItem<InstructionFacts>[] = [
  {
    rule: "SYSRET-01", phase: "check", silent: true,
    text: (f) => `EFER.SCE = 1 and in 64-bit mode (EFER ${hex(f.before.efer)})`,
    why: (f) => ((f.before.efer & 1n) === 0n ? `EFER.SCE = 0: SYSRET is disabled` : `SYSRET outside 64-bit mode: #UD under the intel profile`),
  },
  {
    rule: "SYSRET-02", phase: "check", silent: true,
    text: () => `CPL 0`,
    why: (f) => `SYSRET at CPL ${cplOf(f.before)}: only the kernel may return with it`,
  },
  {
    rule: "SYSRET-03", phase: "check", silent: true,
    text: (f) => `RCX ${hex(rcx(f.before))} is canonical`,
    why: (f) => `RCX ${hex(rcx(f.before))} is not canonical: #GP(0) at CPL 0, before any change (intel; the CVE-2012-0217 case)`,
  },
  { rule: "SYSRET-V1", phase: "note", applies: (f) => !canonical(rcx(f.before)), text: (f) => `amd: the non-canonical RCX ${hex(rcx(f.before))} is loaded; the fetch at CPL 3 faults` },
  { rule: "SYSRET-04", phase: "update", text: (f) => `RIP ← RCX ${withSymbol(f.after.rip, f.symbol)}` },
  {
    rule: "SYSRET-05", phase: "update",
    text: (f) => `RFLAGS ← (R11 ${hex(r11(f.before))} & 0x3c7fd7) | 2 = ${hex(f.after.rflags)}${flagText(f.before.rflags, f.after.rflags)}`,
  },
  { rule: "SYSRET-V4", phase: "note", applies: () => false, text: () => `the amd profile computes the same RFLAGS` },
  {
    rule: "SYSRET-06", phase: "update",
    text: (f) => `CS ← ${f.after.cs.l === 1 ? "(STAR[63:48] + 16) | 3" : "STAR[63:48] | 3"} = ${hex(f.after.cs.selector)} (flat ${f.after.cs.l === 1 ? "64-bit" : "32-bit"} code, DPL 3): CPL 3`,
  },
  { rule: "SYSRET-V5", phase: "note", applies: () => false, text: () => `the SS selector's RPL is forced to 3 (both profiles)` },
  { rule: "SYSRET-07", phase: "update", applies: (f) => f.after.ss.dpl === 3, text: (f) => `SS ← (STAR[63:48] + 8) | 3 = ${hex(f.after.ss.selector)} (flat data, DPL 3)` },
  { rule: "SYSRET-V2", phase: "update", applies: (f) => f.after.ss.dpl !== 3, text: (f) => `amd: SS selector ← ${hex(f.after.ss.selector)}; its hidden part is kept` },
  { rule: "SYSRET-V3", phase: "update", applies: (f) => modeOf(f.before) !== "64", text: () => `amd: SYSRET to compatibility mode: IF ← 1, RIP ← ECX` },
  {
    rule: "SYSRET-08", phase: "note",
    text: (f) => `RSP unchanged (${hex(f.after.gpr[4]!)}): the entry code restored the user stack before SYSRET`,
  },
  {
    rule: "SYSRET-10", phase: "note",
    text: (f) => ((f.after.rflags & 0x200n) !== 0n ? `no interrupt shadow: a pending interrupt is taken at the first user instruction` : `IF = 0 after SYSRET`),
  },
  { rule: "SYSRET-09", phase: "note", text: (f) => ((f.after.rflags & 0x100n) !== 0n ? `TF = 1 from R11: a single-step trap at CPL 3` : `no single-step trap (TF = 0)`) },
];

export const SWAPGS: readonly TemplateItem<InstructionFacts>[] = [
  { rule: "SWAPGS-01", phase: "check", silent: true, text: () => `in 64-bit mode`, why: () => `SWAPGS outside 64-bit mode: #UD` },
  { rule: "SWAPGS-02", phase: "check", silent: true, text: () => `CPL 0`, why: (f) => `SWAPGS at CPL ${cplOf(f.before)}: #GP(0)` },
  {
    rule: "SWAPGS-03", phase: "update",
    text: (f) => `GS.base ${hex(f.before.gs.base)} ↔ KERNEL_GS_BASE ${hex(f.before.kernelGsBase)}: GS.base is now ${hex(f.after.gs.base)}`,
  },
];

function iretFrame(f: InstructionFacts): { rip: bigint | null; cs: bigint | null; rflags: bigint | null; rsp: bigint | null; ss: bigint | null } {
  const [rip, cs, rflags, rsp, ss] = stackWords(f.before, 5, f.size);
  return { rip: rip ?? null, cs: cs === undefined || cs === null ? null : cs & 0xffffn, rflags: rflags ?? null, rsp: rsp ?? null, ss: ss === undefined || ss === null ? null : ss & 0xffffn };
}

const h = (v: bigint | null) => (v === null ? "?" : hex(v));

function returnCs(f: InstructionFacts): DescriptorView | null {
  const cs = iretFrame(f).cs;
  return cs === null ? null : descriptorOf(f.before, Number(cs));
}

export const IRET: readonly TemplateItem<InstructionFacts>[] = [
  { rule: "IRETQ-00", phase: "update", applies: (f) => f.before.cpu.nmiBlocked, text: () => `NMI blocking ends (even if the IRET then faults)` },
  {
    rule: "IRETQ-01", phase: "check", silent: true,
    text: () => `RFLAGS.NT = 0`,
    why: () => `RFLAGS.NT = 1: no task return in IA-32e mode`,
  },
  {
    rule: "IRETQ-02", phase: "pop",
    text: (f) => {
      const r = iretFrame(f);
      return `read RIP ${r.rip === null ? "?" : withSymbol(r.rip, f.symbol)}, CS ${h(r.cs)}, RFLAGS ${h(r.rflags)} from [RSP ${hex(f.before.gpr[4]!)}]`;
    },
  },
  { rule: "IRETQ-03", phase: "check", silent: true, text: (f) => `return CS ${h(iretFrame(f).cs)} is not NULL`, why: () => `the return CS is NULL` },
  {
    rule: "IRETQ-04", phase: "check", silent: true,
    text: (f) => `return CS ${h(iretFrame(f).cs)} lies within the GDT (limit ${hex(f.before.gdtr.limit)})`,
    why: (f) => `return CS ${h(iretFrame(f).cs)} lies beyond the GDT limit ${hex(f.before.gdtr.limit)}`,
  },
  {
    rule: "IRETQ-05", phase: "check", silent: true,
    text: (f) => `return CS is a code segment (${codeText(returnCs(f))})`,
    why: (f) => `return CS ${h(iretFrame(f).cs)} is ${codeText(returnCs(f))}: not a code segment`,
  },
  {
    rule: "IRETQ-06", phase: "check", silent: true,
    text: (f) => `return CS.RPL ${Number(iretFrame(f).cs ?? 0n) & 3} ≥ CPL ${cplOf(f.before)}`,
    why: (f) => `return CS.RPL ${Number(iretFrame(f).cs ?? 0n) & 3} < CPL ${cplOf(f.before)}: IRET never returns to a more privileged level`,
  },
  {
    rule: "IRETQ-07", phase: "check", silent: true,
    text: () => `return CS is not L = 1 with D = 1`,
    why: () => `return CS has L = 1 and D = 1`,
  },
  {
    rule: "IRETQ-08", phase: "check", silent: true,
    text: (f) => `return CS DPL ${returnCs(f)?.dpl ?? "?"} matches RPL ${Number(iretFrame(f).cs ?? 0n) & 3}`,
    why: (f) => `return CS DPL ${returnCs(f)?.dpl ?? "?"} does not match RPL ${Number(iretFrame(f).cs ?? 0n) & 3}`,
  },
  { rule: "IRETQ-09", phase: "check", silent: true, text: () => `return CS present`, why: () => `return CS not present: #NP` },
  {
    rule: "IRETQ-10", phase: "pop",
    text: (f) => {
      const r = iretFrame(f);
      return `read SS ${h(r.ss)} and RSP ${h(r.rsp)} too (${(Number(r.cs ?? 0n) & 3) > cplOf(f.before) ? "return to an outer level" : "IRET in 64-bit mode always pops them"})`;
    },
  },
  {
    rule: "IRETQ-11", phase: "check", silent: true,
    text: (f) => `SS ${h(iretFrame(f).ss)} is usable at RPL ${Number(iretFrame(f).cs ?? 0n) & 3}`,
    why: (f) => `SS ${h(iretFrame(f).ss)} is not usable for a return to RPL ${Number(iretFrame(f).cs ?? 0n) & 3} (NULL above CPL 0..2, RPL or DPL mismatch, not writable, not present)`,
  },
  {
    rule: "IRETQ-12", phase: "check", silent: true,
    text: (f) => `return RIP ${h(iretFrame(f).rip)} is ${iretFrame(f).rip === null ? "?" : canonicalText(iretFrame(f).rip!)}`,
    why: (f) => `return RIP ${h(iretFrame(f).rip)} is not canonical (or beyond a compatibility CS limit): #GP(0) at the old CPL`,
  },
  {
    rule: "IRETQ-13", phase: "update",
    text: (f) => `RFLAGS ← ${hex(f.after.rflags)} from the image ${h(iretFrame(f).rflags)}${flagText(f.before.rflags, f.after.rflags)} (IF only if CPL ≤ IOPL, IOPL only at CPL 0)`,
  },
  { rule: "RF-02", phase: "note", applies: (f) => f.size >= 4, text: () => `RF is loaded from the image` },
  { rule: "IRETQ-14", phase: "update", text: (f) => `CS:RIP ← ${hex(f.after.cs.selector)}:${withSymbol(f.after.rip, f.symbol)}: CPL ${cplOf(f.after)}${modeOf(f.after) === "64" ? "" : " (compatibility mode)"}` },
  { rule: "IRETQ-15", phase: "update", text: (f) => `SS:RSP ← ${hex(f.after.ss.selector)}:${hex(f.after.gpr[4]!)}` },
  { rule: "IRETQ-16", phase: "update", applies: (f) => cplOf(f.after) > cplOf(f.before), text: () => `data segment registers the new CPL may not use become NULL` },
  { rule: "IRETQ-17", phase: "note", text: () => `no interrupt shadow after IRET` },
];

export const FAR_RET: readonly TemplateItem<InstructionFacts>[] = [
  {
    rule: "RETF-01", phase: "pop",
    text: (f) => {
      const [rip, cs] = stackWords(f.before, 2, f.size);
      return `read RIP ${rip === null || rip === undefined ? "?" : withSymbol(rip, f.symbol)} and CS ${cs === null || cs === undefined ? "?" : hex(cs & 0xffffn)} from [RSP ${hex(f.before.gpr[4]!)}]`;
    },
  },
  { rule: "RETF-02", phase: "check", silent: true, text: () => `return CS is not NULL`, why: () => `the return CS is NULL` },
  { rule: "RETF-03", phase: "check", silent: true, text: () => `return CS within the descriptor table`, why: () => `return CS beyond the descriptor-table limit` },
  { rule: "RETF-04", phase: "check", silent: true, text: () => `return CS is usable code`, why: () => `return CS is not a code segment (or L = 1 with D = 1)` },
  { rule: "RETF-05", phase: "check", silent: true, text: () => `return CS.RPL ≥ CPL`, why: (f) => `return CS.RPL < CPL ${cplOf(f.before)}` },
  { rule: "RETF-06", phase: "check", silent: true, text: () => `return CS DPL matches its RPL`, why: () => `return CS DPL does not match its RPL` },
  { rule: "RETF-07", phase: "check", silent: true, text: () => `return CS present`, why: () => `return CS not present: #NP` },
  { rule: "RETF-08", phase: "update", applies: (f) => cplOf(f.after) === cplOf(f.before), text: (f) => `same privilege: CS:RIP ← ${hex(f.after.cs.selector)}:${withSymbol(f.after.rip, f.symbol)}` },
  { rule: "RETF-09", phase: "check", applies: (f) => cplOf(f.after) > cplOf(f.before), text: (f) => `SS ${hex(f.after.ss.selector)} read and checked for the outer level`, why: () => `the popped SS is not usable at the new CPL` },
  { rule: "RETF-10", phase: "update", applies: (f) => cplOf(f.after) > cplOf(f.before), text: (f) => `CPL ${cplOf(f.after)}: CS:RIP ← ${hex(f.after.cs.selector)}:${withSymbol(f.after.rip, f.symbol)}, SS:RSP ← ${hex(f.after.ss.selector)}:${hex(f.after.gpr[4]!)}` },
  { rule: "RETF-11", phase: "update", applies: (f) => cplOf(f.after) > cplOf(f.before), text: () => `data segment registers the new CPL may not use become NULL` },
];

function flagText(before: bigint, after: bigint): string {
  const c = flagChanges(before, after);
  return c === "" ? "" : ` (${c})`;
}

// ------------------------------------------------------------------------------------------------
// What comes before a delivery (the event) and between attempts (nesting)

export interface EventFacts {
  readonly vector: number;
  readonly source: DeliverySource;
  /** The instruction, for a software interrupt. */
  readonly instruction: string | null;
  readonly halted: boolean;
}

type DeliverySource = DeliveryFacts["source"];

export const EVENT: readonly TemplateItem<EventFacts>[] = [
  { rule: "PRIO-01", phase: "check", text: (f) => `${f.source === "nmi" ? "an NMI" : f.source === "external" ? `external interrupt ${hex(f.vector)}` : "a single-step trap"} pending at this boundary comes before the next instruction` },
  { rule: "PRIO-02", phase: "note", text: (f) => (f.source === "external" ? `the interrupt is taken once: it is no longer pending` : `events not taken stay pending`) },
  { rule: "HLT-03", phase: "note", text: () => `it wakes the halted CPU (saved RIP after the HLT)` },
  { rule: "HLT-06", phase: "note", text: () => `the single-step trap of the HLT is taken as the CPU wakes` },
  { rule: "TF-02", phase: "note", text: () => `the single-step #DB is a trap: the saved RIP is the next instruction` },
  { rule: "NMI-01", phase: "note", text: () => `NMI: vector 2, not masked by IF, no DPL check, no error code` },
  { rule: "NMI-02", phase: "update", text: () => `NMIs blocked from now on (even if this delivery faults): a further NMI stays latched until IRET` },
  { rule: "PRIO-TPR", phase: "check", text: () => `its priority class is above CR8` },
  { rule: "SWINT-01", phase: "note", text: (f) => `${f.instruction ?? "INT n"}: vector ${hex(f.vector)}, EXT = 0, the gate's DPL is checked, no error code; saved RIP = the next instruction` },
  { rule: "SWINT-03", phase: "note", text: () => `INT3: vector 3 with the INT n rules` },
  { rule: "SWINT-04", phase: "note", text: () => `INT1: vector 1 like a hardware exception (no DPL check, EXT = 1)` },
  { rule: "SWINT-05", phase: "note", text: () => `INTO: vector 4 when OF = 1` },
  { rule: "SWINT-06", phase: "note", text: () => `delivery clears TF: no single-step trap for the INT itself` },
];

/** The lines between two delivery attempts (spec/transitions/double-fault.ts), from the rules. */
export function nestingLine(rule: string, failedVector: number, nextVector: number | null, failed: string): SequenceLine | null {
  switch (rule) {
    case "DF-02":
      return { rule, phase: "note", status: "reported", text: `${failed} was raised while delivering ${vectorName(failedVector)}: a second exception` };
    case "DF-06":
      return { rule, phase: "update", status: "reported", text: `CR2 holds the address of the #PF even though it escalates` };
    case "DF-04":
      return { rule, phase: "note", status: "reported", text: `→ #DF (vector 8, error code 0) through IDT entry 8` };
    case "DF-07":
      return { rule, phase: "note", status: "reported", text: `→ the second exception${nextVector === null ? "" : ` ${vectorName(nextVector)}`} is delivered serially (the first is dropped)` };
    case "DF-03":
      return { rule, phase: "note", status: "reported", text: `Table 6-5: contributory then contributory, or a page fault then a contributory or page fault, is a double fault` };
    case "DF-05":
      return { rule, phase: "fault", status: "reported", text: `a fault while delivering #DF: triple fault, the processor shuts down` };
    default:
      return null;
  }
}

export { faultName, canonical };
