// The transitions callable on their own (state in, new state or fault out), for other projects
// using the spec as a library. Each takes the machine with RIP at the instruction.
export { syscall } from "./syscall.ts";
export { sysret, type SysretForm } from "./sysret.ts";
export { swapgs } from "./swapgs.ts";
export { deliver } from "./double-fault.ts";
export { iret } from "./iret.ts";
export { cli, sti } from "./interrupt-flag.ts";
export { hlt } from "./halt.ts";
export { stac, clac } from "./smap-flags.ts";
export { rdmsr, wrmsr } from "./msr.ts";
export { movToCr, clts } from "./control-registers.ts";
export { farReturn } from "./far-return.ts";
export { movToSreg } from "./segment-load.ts";
export {
  exceptionEvent, externalEvent, softwareEvent, NMI_EVENT, type InterruptEvent, type EventSource,
} from "./exception-classes.ts";
