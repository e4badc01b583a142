// The contract between the step loop and an instruction's semantics: what a semantics function is
// given and what it returns. spec/semantics-table.ts maps every mnemonic to one.
import type { Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { Transaction } from "./transaction.ts";

/** An event an instruction hands to the delivery mechanism (INT n, INT3, INT1, INTO). */
export interface SoftwareInterrupt {
  readonly kind: "software-interrupt";
  readonly vector: number;
  /** INT n / INT3 / INTO are software interrupts (gate DPL checked, EXT = 0); INT1 (ICEBP) is
   *  delivered like a hardware exception (no DPL check, EXT = 1) — SWINT-04. */
  readonly source: "int" | "int3" | "into" | "int1";
}

/** Port I/O performed by IN/OUT: reported as the step's event. */
export interface PortIo {
  readonly kind: "io";
  readonly direction: "in" | "out";
  readonly port: number;
  readonly size: 1 | 2 | 4;
  readonly value: bigint;
}

/** The instruction is valid here but its effect lies outside the modelled state (e.g. RDTSC: no TSC
 *  is modelled): the step stops with an `unsupported` event and the machine unchanged. */
export interface UnsupportedOutcome {
  readonly kind: "unsupported";
  readonly reason: string;
}

/**
 * What a semantics function returns. `undefined`: the instruction completed; RIP was already set to
 * the next instruction before it ran, so only branches write RIP. A Fault aborts the step (the
 * transaction's updates are dropped). The others complete the instruction and tell the step what
 * else happens.
 */
export type Outcome = undefined | Fault | SoftwareInterrupt | PortIo | UnsupportedOutcome;

/** Per-step environment a semantics function may consult. */
export interface Environment {
  /** Value returned by IN for a port (default: all ones, a floating bus). */
  readonly portIn: (port: number, size: 1 | 2 | 4) => bigint;
}

/** One instruction's semantics: checks, then updates on the step's transaction. */
export type Semantics = (t: Transaction, insn: Instruction, env: Environment) => Outcome;
