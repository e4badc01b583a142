// The system-instruction family's executors: the privilege transitions that are not event
// delivery (SYSCALL/SYSRET, SWAPGS, MSRs, control and descriptor-table registers, segment loads,
// far RET/JMP, CLI/STI, HLT, STAC/CLAC and the privileged no-ops).
import { registerExecutors } from "../step/execute.ts";
import { cltsExecutor, movFromCrExecutor, movToCrExecutor } from "./control-registers.ts";
import { lgdtExecutor, lidtExecutor, ltrExecutor, sgdtExecutor, sidtExecutor } from "./descriptor-tables.ts";
import { farJumpExecutor } from "./far-jump.ts";
import { farReturnExecutor } from "./far-return.ts";
import { hltExecutor } from "./halt.ts";
import { cliExecutor, stiExecutor } from "./interrupt-flag.ts";
import { rdmsrExecutor, wrmsrExecutor } from "./msr.ts";
import { invdExecutor, invlpgExecutor, rdtscExecutor, sysexitExecutor, wbinvdExecutor } from "./privileged.ts";
import { movFromSregExecutor, movToSregExecutor, popSregExecutor, pushSregExecutor } from "./segment-load.ts";
import { clacExecutor, stacExecutor } from "./smap-flags.ts";
import { swapgsExecutor } from "./swapgs.ts";
import { syscallExecutor } from "./syscall.ts";
import { sysretExecutor } from "./sysret.ts";

registerExecutors({
  syscall: syscallExecutor,
  sysret: sysretExecutor,
  sysexit: sysexitExecutor,
  swapgs: swapgsExecutor,
  rdmsr: rdmsrExecutor,
  wrmsr: wrmsrExecutor,
  rdtsc: rdtscExecutor,
  mov_to_cr: movToCrExecutor,
  mov_from_cr: movFromCrExecutor,
  clts: cltsExecutor,
  lgdt: lgdtExecutor,
  lidt: lidtExecutor,
  sgdt: sgdtExecutor,
  sidt: sidtExecutor,
  ltr: ltrExecutor,
  mov_to_sreg: movToSregExecutor,
  mov_from_sreg: movFromSregExecutor,
  push_sreg: pushSregExecutor,
  pop_sreg: popSregExecutor,
  retf: farReturnExecutor,
  jmp_far: farJumpExecutor,
  cli: cliExecutor,
  sti: stiExecutor,
  hlt: hltExecutor,
  stac: stacExecutor,
  clac: clacExecutor,
  wbinvd: wbinvdExecutor,
  invd: invdExecutor,
  invlpg: invlpgExecutor,
});
