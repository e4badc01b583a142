// What one step did (vector README, "Running a vector" 3) and why a run stopped.
import type { Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { Machine } from "../machine/machine.ts";
import type { StopReason as ContractStopReason } from "../../contract/engine.ts";

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
      readonly faults?: RaisedFaults;
    }
  /** HLT executed (`instruction`: the HLT), or the CPU is halted and nothing can wake it. */
  | { readonly kind: "halted"; readonly rip: bigint; readonly instruction?: Instruction }
  /** Triple fault: the CPU entered the shutdown state (`instruction`: the one whose fault or
   *  INT n escalated, if it was an instruction's). */
  | { readonly kind: "shutdown"; readonly rip: bigint; readonly instruction?: Instruction; readonly faults?: RaisedFaults }
  /** IN/OUT completed. `console`: the byte an OUT to the debug console appended (devices.ts). */
  | {
      readonly kind: "io";
      readonly rip: bigint;
      readonly direction: "in" | "out";
      readonly port: number;
      readonly size: 1 | 2 | 4;
      readonly value: bigint;
      readonly instruction: Instruction;
      readonly console?: number;
    }
  /** The machine stopped at a write to the exit port: no step (DEV-EXIT-02). */
  | { readonly kind: "exited"; readonly rip: bigint; readonly value: number }
  /** The step would back more pages of guest physical memory than a run may (the page budget,
   *  contract/limits.ts): the step is taken back, the machine is unchanged and the run cannot go on. */
  | { readonly kind: "memory-limit"; readonly rip: bigint; readonly reason: string }
  /** Bytes outside the modelled subset: the machine is unchanged and the run cannot go on. */
  | { readonly kind: "unsupported"; readonly rip: bigint; readonly bytes: Uint8Array; readonly reason: string }
  /** A fault that was not delivered (delivery turned off): the machine is at the faulting
   *  instruction, unchanged but for A/D bits. */
  | { readonly kind: "fault"; readonly rip: bigint; readonly fault: Fault; readonly instruction: Instruction | undefined };

/** The faults raised on the way to the handler (or the shutdown), for traces: the instruction's
 *  own, then each delivery attempt's that faulted (DeliveryOutcome.nested). */
export interface RaisedFaults {
  readonly instruction: Fault | undefined;
  readonly delivery: readonly Fault[];
}

export interface StepResult {
  readonly state: Machine;
  readonly event: StepEvent;
}

/** The project's stop reasons (contract/engine.ts) that `run` can give, and `fault`: a fault not
 *  delivered, with `delivery: "stop"` (unit tests only). */
export type StopReason = Extract<ContractStopReason, "hlt" | "shutdown" | "limit" | "exit" | "unsupported" | "memory-limit" | "timeout"> | "fault";

export interface RunResult {
  readonly state: Machine;
  readonly reason: StopReason;
  readonly steps: number;
  /** The event of the last step (absent when no step ran). */
  readonly last: StepEvent | undefined;
}
