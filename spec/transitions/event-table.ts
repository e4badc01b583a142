// The event-delivery family's executors, registered with the step loop: IRET and the software
// interrupts. Their delivery through the IDT is the step loop's (spec/step/step.ts).
import { registerExecutors } from "../step/execute.ts";
import { iretOn, iretSize } from "./iret.ts";
import { softwareInterruptExecutors } from "./software-interrupt.ts";
import "./boundary.ts";
import "./deliver.ts";
import "./double-fault.ts";
import "./exception-classes.ts";

registerExecutors({
  ...softwareInterruptExecutors,
  // IRETQ-00 (NMI unblocking that survives a fault) is applied by the step loop before this runs.
  iret: (t, insn) => iretOn(t, iretSize(insn.operandSize)),
});
