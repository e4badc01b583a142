// The general instruction subset's executors, registered with the step loop.
import "./rules.ts";
import { registerExecutors } from "../step/execute.ts";
import { aluExecutors } from "./alu.ts";
import { bitTestExecutors } from "./bit-test.ts";
import { controlFlowExecutors } from "./control-flow.ts";
import { dataMovementExecutors } from "./data-movement.ts";
import { flagControlExecutors } from "./flag-control.ts";
import { miscExecutors } from "./misc.ts";
import { multiplyDivideExecutors } from "./multiply-divide.ts";
import { portIoExecutors } from "./port-io.ts";
import { shiftExecutors } from "./shift.ts";
import { stackExecutors } from "./stack.ts";

registerExecutors({
  ...aluExecutors,
  ...shiftExecutors,
  ...multiplyDivideExecutors,
  ...bitTestExecutors,
  ...dataMovementExecutors,
  ...stackExecutors,
  ...controlFlowExecutors,
  ...flagControlExecutors,
  ...miscExecutors,
  ...portIoExecutors,
});
