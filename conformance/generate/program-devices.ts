// Random programs that exercise the devices of docs/devices.md, for lockstep between engines (the
// device family of docs/devices.md, "Checking the two engines agree"): programming the timer with
// random periods (0 and 1 included) and vectors, EOIs at random points (twice, or never), running
// with IF = 0 across ticks, `sti; hlt` (the halted-CPU jump), CR8 above and below the vector's
// class, faults and INT n between ticks (which do not count), console writes, and the exit at the
// end. Plain data (fast-check shrinks it), assembled with the guest kit.
import { DEFAULT_LAYOUT, Program, buildGuest, defineLayout, iced, mem } from "../../guest/index.ts";
import type { ArchState } from "../../contract/state.ts";

const { Code: C, Register: R } = iced;

/** One operation of a device program: which (`op`, taken modulo the operations) and a parameter. */
export interface DeviceOp {
  readonly op: number;
  readonly value: number;
}

export interface DeviceProgram {
  /** The timer's period (an index into PERIODS) before the first operation, and whether IF = 1. */
  readonly startPeriod: number;
  readonly startIf: boolean;
  readonly ops: readonly DeviceOp[];
  /** Whether the timer's handler writes EOI before its IRETQ (a kernel that forgets sees no more ticks). */
  readonly handlerEoi: boolean;
  /** The exit value written at the end. */
  readonly exitValue: number;
}

export interface DeviceProgramOptions {
  /** Include IN from the device registers: only where both engines implement the devices (the
   *  outside model of kernel/devices cannot answer an IN). */
  readonly reads: boolean;
}

const CODE = 0x10000n;
const TIMER_HANDLER = 0x14000n;
const UD_HANDLER = 0x14100n;
const PERIODS = [0, 1, 2, 3, 5, 8, 13, 40, 0x1_0003];
const VECTORS = [0x20, 0x21, 0x2f, 0x130 /* VECTOR keeps the low byte: 0x30 */];

type Emit = (p: Program, value: number, options: DeviceProgramOptions) => void;

const outEax = (p: Program, port: number) => p.emit(C.Out_imm8_EAX, port, R.EAX);
const movEax = (p: Program, v: number) => p.emit(C.Mov_r32_imm32, R.EAX, v >>> 0);

/** The operations, in `op` order. */
const OPERATIONS: readonly Emit[] = [
  (p, v) => { movEax(p, PERIODS[v % PERIODS.length]!); outEax(p, 0xe0); }, // PERIOD
  (p, v) => { movEax(p, VECTORS[v % VECTORS.length]!); outEax(p, 0xe4); }, // VECTOR
  (p) => outEax(p, 0xec), // EOI
  (p) => p.emit(C.Nopd),
  (p) => p.emit(C.Sti),
  (p) => p.emit(C.Cli),
  (p, v) => { p.emit(C.Mov_r32_imm32, R.ECX, v % 4); p.emit(C.Mov_cr_r64, R.CR8, R.RCX); }, // CR8 0..3
  (p) => p.emit(C.Ud2), // #UD: the handler skips it
  (p) => p.emit(C.Int_imm8, 0x21), // INT n to the timer's handler
  (p) => { p.emit(C.Sti); p.emit(C.Hlt); }, // wakes on the tick, or the run ends idle
  (p, v) => { p.emit(C.Mov_r8_imm8, R.AL, 0x20 + (v % 0x5f)); p.emit(C.Out_imm8_AL, 0xe9, R.AL); }, // console
  (p, v, o) => { if (o.reads) p.emit(C.In_EAX_imm8, R.EAX, [0xe0, 0xe4, 0xe9, 0xec][v % 4]!); else p.emit(C.Nopd); }, // IN
  (p, v) => { for (let i = 0; i < 1 + (v % 6); i++) p.emit(C.Nopd); }, // a run of NOPs
];

export const DEVICE_OPERATION_COUNT = OPERATIONS.length;

/** The kernel-mode machine that runs `program` from 0x10000 (IF = 0, timer off) and writes the
 *  exit port at the end. */
export function deviceProgramState(program: DeviceProgram, options: DeviceProgramOptions): ArchState {
  const body = new Program(CODE);
  OPERATIONS[0]!(body, program.startPeriod, options);
  if (program.startIf) body.emit(C.Sti);
  for (const { op, value } of program.ops) OPERATIONS[op % OPERATIONS.length]!(body, value, options);
  movEax(body, program.exitValue);
  outEax(body, 0xf4);
  body.emit(C.Hlt);

  // Vectors 0x20–0x3F: EOI (or not) and return; #UD: skip the 2-byte UD2 and return.
  const timer = new Program(TIMER_HANDLER);
  if (program.handlerEoi) outEax(timer, 0xec);
  timer.emit(C.Iretq);
  const ud = new Program(UD_HANDLER);
  ud.emit(C.Add_rm64_imm8, mem(R.RSP), 2);
  ud.emit(C.Iretq);

  const layout = defineLayout({
    idt: { handler: (v) => (v === 6 ? UD_HANDLER : v >= 0x20 && v < 0x40 ? TIMER_HANDLER : DEFAULT_LAYOUT.idt.stubs!.base + BigInt(DEFAULT_LAYOUT.idt.stubs!.stride * v)) },
  });
  const code = [body.assemble(), timer.assemble(), ud.assemble()];
  return buildGuest(layout, { code, start: { ring: 0, rip: CODE, rflags: 0x2n } }).state;
}
