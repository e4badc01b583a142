// INT n, INT3, INT1 (ICEBP), INTO — SDM Vol. 2A "INT n/INTO/INT3/INT1—Call to Interrupt Procedure".
// The instruction names the event; the step then delivers it (`deliverSoftwareInterrupt`, through
// deliver.ts) on the machine after the instruction (RIP = next instruction, EXC-03), and a fault
// raised by that delivery counts as a fault of the INT instruction itself (saved RIP = the INT).
import { UD, type Fault } from "../fault.ts";
import type { Instruction } from "../decode/instruction.ts";
import type { MachineRegisters } from "../machine/machine.ts";
import { in64BitMode, RFLAGS } from "../machine/registers.ts";
import { defineRules } from "../rules/rule.ts";
import type { SoftwareInterrupt } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import type { RegisterJournal } from "../transaction/register-journal.ts";
import { deliverWithNestingOn, type DeliveryOutcome } from "./double-fault.ts";
import { softwareEvent } from "./exception-classes.ts";

export const SOFTWARE_INTERRUPT_RULES = defineRules([
  { id: "SWINT-01", description: "INT imm8: vector imm8, EXT = 0, gate DPL checked, no error code even for 8/10–14/17, saved RIP = next instruction", source: "SDM Vol. 2A INT n" },
  { id: "SWINT-02", description: "INT n at CPL 3 to a DPL-0 gate → #GP(n·8 + 2), the handler for n is not entered", source: "SDM Vol. 2A INT n; Vol. 3A §6.12.1.1", recordedWith: "DELIVER-04" },
  { id: "SWINT-03", description: "INT3 (CC) and CD 03: vector 3 with INT n rules, saved RIP after the instruction", source: "SDM Vol. 2A INT3" },
  { id: "SWINT-04", description: "INT1 (F1): vector 1 like a hardware exception — no DPL check, EXT = 1, trap (saved RIP after F1)", source: "SDM Vol. 2A INT1" },
  { id: "SWINT-05", description: "INTO: #UD in 64-bit mode; in compatibility mode vector 4 as INT n when OF = 1", source: "SDM Vol. 2A INTO" },
  { id: "SWINT-06", description: "Delivery clears TF: no single-step trap for the INT instruction itself", source: "SDM Vol. 3A §18.3.1.4; Vol. 2A INT n" },
]);

/** SWINT-01: INT imm8 — vector = imm8, a software interrupt. */
export function execInt(t: Transaction, insn: Instruction): SoftwareInterrupt {
  const op = insn.operands[0];
  const vector = op !== undefined && op.kind === "imm" ? Number(op.value & 0xffn) : 0;
  t.hit("SWINT-01");
  return { kind: "software-interrupt", vector, source: "int" };
}

/** SWINT-03: INT3 (CC) — vector 3, same rules as INT n. */
export function execInt3(t: Transaction): SoftwareInterrupt {
  t.hit("SWINT-03");
  return { kind: "software-interrupt", vector: 3, source: "int3" };
}

/** SWINT-04: INT1 (F1) — vector 1 delivered like a hardware exception (no DPL check, EXT = 1). */
export function execInt1(t: Transaction): SoftwareInterrupt {
  t.hit("SWINT-04");
  return { kind: "software-interrupt", vector: 1, source: "int1" };
}

/** SWINT-05: INTO (CE) — #UD in 64-bit mode; in compatibility mode vector 4 if OF = 1, else nothing. */
export function execInto(t: Transaction): Fault | SoftwareInterrupt | undefined {
  if (in64BitMode(t.m)) return t.fault("SWINT-05", UD);
  t.hit("SWINT-05");
  if ((t.m.rflags & RFLAGS.OF) === 0n) return undefined;
  return { kind: "software-interrupt", vector: 4, source: "into" };
}

/**
 * The event of a completed INT n / INT3 / INT1 / INTO, delivered on the machine after the
 * instruction; a fault raised on the way is delivered on `atInstruction` (or the machine a
 * function given there makes, only then), as a fault of the INT.
 */
export function deliverSoftwareInterrupt(t: Transaction, atInstruction: MachineRegisters | (() => MachineRegisters), si: SoftwareInterrupt, heldTrap: boolean, journal?: RegisterJournal): DeliveryOutcome<MachineRegisters> {
  // SWINT-06: delivery clears TF, so the INT leaves no single-step trap of its own; one held by a
  // MOV SS shadow stays pending and is taken at the handler (SHADOW-06).
  t.updateCpu("SWINT-06", { pendingDebugTrap: heldTrap });
  // SWINT-04: INT1 is delivered like a hardware exception (EXT = 1, no DPL check).
  const event = softwareEvent(si.vector, si.source === "int1" ? "int1" : "software");
  return deliverWithNestingOn(t.m, atInstruction, t.workingMemory, event, t.profile, t.coverage, journal);
}
