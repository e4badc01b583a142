// What one step did (vector README, "Running a vector" 3) and why a run stopped.
import type { Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { Machine } from "../machine/machine.ts";

export type StepEvent =
  /** An instruction completed. */
  | { readonly kind: "retired"; readonly rip: bigint; readonly instruction: Instruction }
  /** An event went through the IDT: an instruction's fault or INT n (with the instruction at
   *  `rip`), or an event taken at a boundary (single-step trap, NMI, external interrupt). `vector`
   *  and `errorCode` are those of the handler entered: after a nested fault the serial second
   *  exception or #DF. `source`: "software" for INT n / INT3 / INTO / INT1, "exception" for every
   *  processor exception (faults, the single-step trap, #DF). */
  | {
      readonly kind: "delivered";
      readonly rip: bigint;
      readonly vector: number;
      readonly errorCode: number | undefined;
      readonly source: "exception" | "software" | "external" | "nmi";
      readonly instruction: Instruction | undefined;
    }
  /** HLT executed, or the CPU is halted and nothing can wake it. */
  | { readonly kind: "halted"; readonly rip: bigint }
  /** Triple fault: the CPU entered the shutdown state. */
  | { readonly kind: "shutdown"; readonly rip: bigint }
  /** IN/OUT completed. */
  | {
      readonly kind: "io";
      readonly rip: bigint;
      readonly direction: "in" | "out";
      readonly port: number;
      readonly size: 1 | 2 | 4;
      readonly value: bigint;
      readonly instruction: Instruction;
    }
  /** Bytes outside the modelled subset: the machine is unchanged and the run cannot go on. */
  | { readonly kind: "unsupported"; readonly rip: bigint; readonly bytes: Uint8Array; readonly reason: string }
  /** A fault that was not delivered (delivery turned off): the machine is at the faulting
   *  instruction, unchanged but for A/D bits. */
  | { readonly kind: "fault"; readonly rip: bigint; readonly fault: Fault; readonly instruction: Instruction | undefined };

export interface StepResult {
  readonly state: Machine;
  readonly event: StepEvent;
}

export type StopReason = "hlt" | "shutdown" | "limit" | "unsupported" | "fault" | "timeout";

export interface RunResult {
  readonly state: Machine;
  readonly reason: StopReason;
  readonly steps: number;
  /** The event of the last step (absent when no step ran). */
  readonly last: StepEvent | undefined;
}
