// The stack frame of a transition, drawn as memory cells: what delivery pushed (SS, RSP, RFLAGS,
// CS, RIP, error code) on the stack it switched to, what IRETQ or far RET popped, and the
// registers that carry the return state instead (SYSCALL: RCX, R11). Read from the states before
// and after the step; named with a kernel's frame layout when one is given.
import type { ArchState } from "../../contract/state.ts";
import type { Symbolizer } from "../symbols.ts";
import type { DeliveryFacts } from "./facts.ts";
import { MASK64, hex, readLinear64, wide } from "./machine.ts";
import type { Frame, FrameCell, FrameLayout, RegisterChange, StackMark } from "./types.ts";

/** struct regstate of the project's C kernel (kernel/c/src/kernel.h). */
export const REGSTATE_LAYOUT: FrameLayout = {
  name: "regstate",
  fields: ["r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx", "rcx", "rbx", "rax", "vector", "errcode", "rip", "cs", "rflags", "rsp", "ss"],
  rip: "rip",
};

/** Linux's struct pt_regs on x86-64 (arch/x86/include/asm/ptrace.h). */
export const PT_REGS_LAYOUT: FrameLayout = {
  name: "pt_regs",
  fields: ["r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss"],
  rip: "ip",
};

export const BUILT_IN_LAYOUTS: Readonly<Record<string, FrameLayout>> = { regstate: REGSTATE_LAYOUT, pt_regs: PT_REGS_LAYOUT };

interface Naming {
  readonly layout: FrameLayout | null;
  readonly symbol: Symbolizer;
}

/** The layout's field at `address`, given the address of the hardware RIP slot. */
function layoutField(layout: FrameLayout | null, ripSlot: bigint | null, address: bigint): string | null {
  if (layout === null || ripSlot === null) return null;
  const anchor = layout.fields.indexOf(layout.rip);
  const index = anchor + Number((address - ripSlot) / 8n);
  if ((address - ripSlot) % 8n !== 0n || index < 0 || index >= layout.fields.length) return null;
  return `${layout.name}.${layout.fields[index]}`;
}

function cellAt(before: ArchState, after: ArchState, address: bigint): { before: string | null; after: string | null } {
  const b = readLinear64(before, address);
  const a = readLinear64(after, address);
  return { before: b === null ? null : wide(b), after: a === null ? null : wide(a) };
}

/** The frame a successful delivery pushed. */
export function deliveryFrame(f: DeliveryFacts, naming: Naming): Frame | null {
  const entered = f.entered;
  if (entered === null || f.aligned === null || f.newRsp === null || f.slots.length === 0) return null;
  const bottom = f.slots[f.slots.length - 1]!.address;
  const ripSlot = f.slots.find((s) => s.name === "RIP")?.address ?? null;
  const top = f.newRsp > f.aligned ? ((f.newRsp + 7n) & ~7n) : f.aligned;
  const cells: FrameCell[] = [];
  // One slot above the frame: the stack's top (TSS value) or what was on the stack before.
  const from = (top + 8n) & MASK64;
  const lowest = f.slots.length > 0 ? bottom : top;
  // Layout fields below the hardware frame (the rest of a regstate the entry code will push).
  const layoutBelow = naming.layout === null || ripSlot === null ? 0 : naming.layout.fields.indexOf(naming.layout.rip) - (f.errorCode === null ? 0 : 1);
  const extra = Math.min(Math.max(layoutBelow, 2), 24);
  for (let a = from; a >= lowest - 8n * BigInt(extra) && a >= 8n; a = (a - 8n) & MASK64) {
    const slot = f.slots.find((s) => s.address === a);
    const padding = slot === undefined && a >= f.aligned && a < f.newRsp;
    const v = cellAt(f.on, entered, a);
    cells.push({
      address: hex(a),
      ...v,
      name: slot?.name ?? (padding ? "padding" : null),
      field: layoutField(naming.layout, ripSlot, a),
      role: slot !== undefined ? "pushed" : padding ? "padding" : "context",
      ...(slot?.name === "RIP" ? symbolOf(slot.value, naming.symbol) : {}),
    });
    if (cells.length > 40) break;
  }
  const stackName = f.tss === null ? "the current stack" : `TSS.${f.tss.field}`;
  const marks: StackMark[] = [];
  if (f.tss !== null && f.tss.value !== null) marks.push({ label: `TSS.${f.tss.field}`, address: hex(f.tss.value) });
  if (f.tss === null) marks.push({ label: "RSP before", address: hex(f.on.gpr[4]!) });
  if (f.aligned !== f.newRsp) marks.push({ label: "aligned to 16", address: hex(f.aligned) });
  marks.push({ label: "RSP after", address: hex(entered.gpr[4]!) });
  const registers: RegisterChange[] = [
    { name: "RSP", before: hex(f.on.gpr[4]!), after: hex(entered.gpr[4]!), note: f.tss === null ? "same stack" : `switched to ${stackName}` },
    { name: "CS:RIP", before: `${hex(f.on.cs.selector)}:${hex(f.on.rip)}`, after: `${hex(entered.cs.selector)}:${hex(entered.rip)}` },
    { name: "SS", before: hex(f.on.ss.selector), after: hex(entered.ss.selector) },
    { name: "RFLAGS", before: hex(f.on.rflags), after: hex(entered.rflags) },
  ];
  const notes: string[] = [];
  if (f.tss !== null) notes.push(`the stack switched: RSP came from TSS.${f.tss.field} (TSS + ${hex(f.tss.offset)})${f.gate !== null && f.gate.ist !== 0 ? `, gate ${hex(f.vector)} has IST ${f.gate.ist}` : ""}`);
  else notes.push(`no stack switch: the frame is pushed on the stack in use`);
  if (f.aligned !== f.newRsp) notes.push(`RSP aligned down from ${hex(f.newRsp)} to ${hex(f.aligned)} before the first push`);
  if (f.errorCode !== null) notes.push(`error code ${hex(f.errorCode)} pushed last, below RIP: the handler must pop it before IRETQ`);
  else notes.push(`no error code for this event: RSP points at the saved RIP`);
  return { title: `${f.slots.length} slots pushed on ${stackName}`, stack: stackName, cells, marks, registers, notes };
}

function symbolOf(value: bigint, symbol: Symbolizer): { symbol?: string } {
  const s = symbol(value);
  return s === undefined ? {} : { symbol: s };
}

/** The frame IRET (or far RET) read at RSP: popped (it completed) or read before its fault. */
export function popFrame(
  before: ArchState,
  after: ArchState,
  names: readonly string[],
  size: number,
  completed: boolean,
  naming: Naming,
  title: string,
): Frame {
  const rsp = before.gpr[4]!;
  const ripSlot = rsp;
  const cells: FrameCell[] = [];
  const layoutBelow = naming.layout === null ? 2 : Math.min(naming.layout.fields.indexOf(naming.layout.rip), 24);
  const highest = (rsp + BigInt(Math.max(names.length, 1) * 8)) & MASK64;
  for (let a = highest; a >= rsp - 8n * BigInt(Math.max(layoutBelow, 1)); a = (a - 8n) & MASK64) {
    const i = Number((a - rsp) / 8n);
    const name = size === 8 && i >= 0 && i < names.length ? names[i]! : null;
    const v = cellAt(before, after, a);
    const raw = readLinear64(before, a);
    cells.push({
      address: hex(a), ...v, name,
      field: size === 8 ? layoutField(naming.layout, ripSlot, a) : null,
      role: name !== null ? (completed ? "popped" : "context") : "context",
      ...(name === "RIP" && raw !== null ? symbolOf(raw, naming.symbol) : {}),
    });
    if (a === 0n || cells.length > 40) break;
  }
  const marks: StackMark[] = [{ label: "RSP before", address: hex(rsp) }];
  if (completed) marks.push({ label: "RSP after", address: hex(after.gpr[4]!) });
  const registers: RegisterChange[] = completed
    ? [
        { name: "RSP", before: hex(rsp), after: hex(after.gpr[4]!), note: names.includes("RSP") ? "popped from the frame" : "moved past the frame" },
        { name: "CS:RIP", before: `${hex(before.cs.selector)}:${hex(before.rip)}`, after: `${hex(after.cs.selector)}:${hex(after.rip)}` },
        { name: "SS", before: hex(before.ss.selector), after: hex(after.ss.selector) },
        { name: "RFLAGS", before: hex(before.rflags), after: hex(after.rflags) },
      ]
    : [];
  const notes = size === 8 ? [] : [`${size * 8}-bit operand size: the slots are ${size} bytes wide (cells show 8-byte words)`];
  return { title, stack: "current", cells, marks, registers, notes };
}

/** SYSCALL, SYSRET, SWAPGS push nothing: the registers that carry the state across. */
export function registerFrame(before: ArchState, after: ArchState, kind: "syscall" | "sysret" | "swapgs"): Frame {
  const r = (name: string, b: bigint, a: bigint, note?: string): RegisterChange => ({ name, before: hex(b), after: hex(a), ...(note === undefined ? {} : { note }) });
  const registers: RegisterChange[] =
    kind === "swapgs"
      ? [r("GS.base", before.gs.base, after.gs.base), r("KERNEL_GS_BASE", before.kernelGsBase, after.kernelGsBase)]
      : [
          r("RIP", before.rip, after.rip, kind === "syscall" ? "← LSTAR" : "← RCX"),
          r("RCX", before.gpr[1]!, after.gpr[1]!, kind === "syscall" ? "← the return RIP" : undefined),
          r("R11", before.gpr[11]!, after.gpr[11]!, kind === "syscall" ? "← RFLAGS" : undefined),
          r("RFLAGS", before.rflags, after.rflags, kind === "syscall" ? "& ~FMASK" : "← R11 & 0x3c7fd7 | 2"),
          r("CS", BigInt(before.cs.selector), BigInt(after.cs.selector)),
          r("SS", BigInt(before.ss.selector), BigInt(after.ss.selector)),
          r("RSP", before.gpr[4]!, after.gpr[4]!, "unchanged: no stack switch"),
        ];
  const title =
    kind === "syscall" ? "SYSCALL pushes nothing: the return RIP and RFLAGS travel in RCX and R11"
    : kind === "sysret" ? "SYSRET pops nothing: RIP and RFLAGS come back from RCX and R11"
    : "SWAPGS exchanges GS.base and KERNEL_GS_BASE";
  return { title, stack: "none", cells: [], marks: [], registers, notes: [] };
}
