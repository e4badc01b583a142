// A fault is a value, never a thrown exception: a check that fails returns one, and the step that
// receives it delivers it (or stops with it when delivery is off). One idiom throughout spec/:
//
//   if (v * 16 + 15 > m.idtr.limit) return t.fault("DELIVER-01", GP, idtErrorCode(v, ext));  // raise
//   const low = t.readLinear(gateAddress, 8, "implicit");
//   if (isFault(low)) return low;                                                          // pass on
//
// `t.fault` (spec/transaction/transaction.ts) records the rule; code without a transaction (the
// decoder, the page walk) builds the value with `fault` below. (The memory path passes a walk's
// fault on with `"kind" in w`, for speed: see Transaction.translateOrFault.)
import type { RuleId } from "./rules/rule.ts";

export const DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8;
export const TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18;

export const VECTOR_NAMES: Readonly<Record<number, string>> = {
  0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
  10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC",
};

export interface Fault {
  readonly kind: "fault";
  readonly vector: number;
  /** Present exactly for the vectors that push one (EXC-02). */
  readonly errorCode: number | undefined;
  /** #PF only: the linear address that goes to CR2 (PF-01). */
  readonly address: bigint | undefined;
  /** The rule whose check failed. */
  readonly rule: RuleId;
}

/** EXC-02: vectors whose exceptions push an error code. */
export const HAS_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

export function fault(rule: RuleId, vector: number, errorCode?: number, address?: bigint): Fault {
  return {
    kind: "fault",
    vector,
    errorCode: HAS_ERROR_CODE.has(vector) ? (errorCode ?? 0) : undefined,
    address,
    rule,
  };
}

/** Whether a result is a fault (every other result a semantics function passes on is a bigint, a
 *  number, undefined, or an object without `kind: "fault"`). */
export function isFault(x: unknown): x is Fault {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "fault";
}

export function describeFault(f: Fault): string {
  const name = VECTOR_NAMES[f.vector] ?? `vector ${f.vector}`;
  const code = f.errorCode === undefined ? "" : `(0x${f.errorCode.toString(16)})`;
  const cr2 = f.address === undefined ? "" : ` at 0x${f.address.toString(16)}`;
  return `${name}${code}${cr2} [${f.rule}]`;
}
