// What a transition's sequence lines say, read from the states: the delivery's gate, target code
// segment, TSS field, aligned stack and frame slots; an instruction's operands (RCX, R11, STAR,
// the IRET frame). Derived here from the state before the step (and after it, for what was
// written), so the engines need not report them.
import type { ArchState } from "../../contract/state.ts";
import type { Symbolizer } from "../symbols.ts";
import {
  MASK64, canonical, cplOf, descriptorOf, gateOf, hex, isConforming, readLinear64, tssField,
  type DescriptorView, type GateView, type TssField,
} from "./machine.ts";

export type DeliverySource = "exception" | "software" | "external" | "nmi";

/** EXC-02: vectors whose exceptions push an error code. */
const HAS_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

export const VECTOR_NAMES: Readonly<Record<number, string>> = {
  0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 9: "coprocessor overrun",
  10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM", 20: "#VE", 21: "#CP",
};

export function vectorName(vector: number): string {
  return VECTOR_NAMES[vector] ?? `vector ${hex(vector)}`;
}

/** `#GP(0x8)`, `#UD`, `#PF(0x4)`. */
export function faultName(vector: number, errorCode: number | null | undefined): string {
  const name = vectorName(vector);
  return errorCode === null || errorCode === undefined ? name : `${name}(${hex(errorCode)})`;
}

export interface FrameSlot {
  readonly name: string;
  readonly address: bigint;
  readonly value: bigint;
}

/** One attempt to deliver an event through the IDT, as the states show it. */
export interface DeliveryFacts {
  readonly vector: number;
  readonly source: DeliverySource;
  /** EXC-05: 1 for everything but INT n / INT3 / INTO. */
  readonly ext: number;
  /** The error code pushed (EXC-02), or null. */
  readonly errorCode: number | null;
  /** The machine the delivery is attempted on (the state before the step). */
  readonly on: ArchState;
  /** The handler's entry state when this attempt succeeded; null for a failed attempt. */
  readonly entered: ArchState | null;
  readonly savedRip: bigint;
  readonly gate: GateView | null;
  readonly code: DescriptorView | null;
  readonly oldCpl: number;
  readonly newCpl: number;
  readonly interPrivilege: boolean;
  /** The TSS field the new RSP comes from (IST n, or RSPn on a privilege change); null: no switch. */
  readonly tss: TssField | null;
  /** RSP before alignment (from the TSS, or the current RSP). */
  readonly newRsp: bigint | null;
  readonly aligned: bigint | null;
  /** SS, RSP, RFLAGS, CS, RIP (, error code), top down: the values written (entered) or due. */
  readonly slots: readonly FrameSlot[];
  /** CR2 after the step (a #PF's address, written before its delivery began: PF-01). */
  readonly cr2: bigint;
  readonly symbol: Symbolizer;
}

export function pushesErrorCode(vector: number, source: DeliverySource): boolean {
  return source === "exception" && HAS_ERROR_CODE.has(vector);
}

/**
 * The facts of delivering `vector` on `on` (RIP to save `savedRip`), and, when the attempt
 * succeeded, of the handler entered in `entered` (the frame is read from its memory).
 */
export function deliveryFacts(
  on: ArchState,
  entered: ArchState | null,
  event: { readonly vector: number; readonly source: DeliverySource; readonly errorCode: number | null },
  savedRip: bigint,
  cr2: bigint,
  symbol: Symbolizer,
): DeliveryFacts {
  const { vector, source } = event;
  const ext = source === "software" ? 0 : 1;
  const oldCpl = cplOf(on);
  const gate = gateOf(on, vector);
  const code = gate === null ? null : descriptorOf(on, gate.selector);
  const newCpl = code === null ? oldCpl : isConforming(code) ? oldCpl : Math.min(code.dpl, oldCpl);
  const interPrivilege = newCpl < oldCpl;
  const tssName = gate !== null && gate.ist !== 0 ? `IST${gate.ist}` : interPrivilege ? `RSP${newCpl}` : null;
  const tss = tssName === null ? null : tssField(on, tssName);
  const newRsp = tss === null ? on.gpr[4]! : tss.value;
  const aligned = newRsp === null ? null : newRsp & ~0xfn;
  const errorCode = pushesErrorCode(vector, source) ? (event.errorCode ?? 0) : null;
  const slots: FrameSlot[] = [];
  if (aligned !== null) {
    const rflagsImage = source === "exception" && isFaultClass(vector) ? on.rflags | (1n << 16n) : on.rflags;
    const due: [string, bigint][] = [
      ["SS", BigInt(on.ss.selector)], ["RSP", on.gpr[4]!], ["RFLAGS", rflagsImage], ["CS", BigInt(on.cs.selector)], ["RIP", savedRip],
    ];
    if (errorCode !== null) due.push(["error code", BigInt(errorCode)]);
    due.forEach(([name, value], i) => {
      const address = (aligned - 8n * BigInt(i + 1)) & MASK64;
      const written = entered === null ? null : readLinear64(entered, address);
      slots.push({ name, address, value: written ?? value });
    });
  }
  return { vector, source, ext, errorCode, on, entered, savedRip, gate, code, oldCpl, newCpl, interPrivilege, tss, newRsp, aligned, slots, cr2, symbol };
}

/** Fault-class exceptions push RFLAGS with RF = 1 (RF-03): everything but the traps (#DB as a
 *  trap, #BP, #OF) and the aborts' #MC/#DF count as faults; #DF also sets it. */
function isFaultClass(vector: number): boolean {
  return vector !== 1 && vector !== 3 && vector !== 4 && vector !== 2 && vector !== 18;
}

export const GATE_TYPES: Readonly<Record<number, string>> = { 0xe: "64-bit interrupt gate", 0xf: "64-bit trap gate" };

export function gateTypeName(type: number, s: number): string {
  if (s !== 0) return `a code/data descriptor (S = 1, type ${hex(type)})`;
  return GATE_TYPES[type] ?? `type ${hex(type)}, not an interrupt or trap gate`;
}

/** `0x230000 <entry_SYSCALL_64>` where a symbol is known. */
export function withSymbol(address: bigint, symbol: Symbolizer): string {
  const name = symbol(address);
  return name === undefined ? hex(address) : `${hex(address)} <${name}>`;
}

export function canonicalText(v: bigint): string {
  return canonical(v) ? "canonical" : "non-canonical";
}

/** The IRET/far RET frame at RSP before the step: up to `count` 8-byte slots. */
export function stackWords(s: ArchState, count: number, size = 8): (bigint | null)[] {
  const out: (bigint | null)[] = [];
  for (let i = 0; i < count; i++) {
    const word = readLinear64(s, (s.gpr[4]! + BigInt(i * size)) & MASK64);
    out.push(word === null ? null : size === 8 ? word : word & ((1n << BigInt(size * 8)) - 1n));
  }
  return out;
}
