// The machine's devices (docs/devices.md): the debug console (port 0xE9), the exit port (0xF4)
// and the deterministic timer (0xE0 PERIOD, 0xE4 VECTOR, 0xEC EOI), which makes an external
// interrupt pending every `period` completed instructions and then waits for its EOI. They are
// part of the machine (`Machine.devices`), on the I/O port bus that IN/OUT reach once their
// privilege checks have passed (instructions/port-io.ts); the step (step/step.ts) counts the
// instructions and applies an OUT's write after the count, in the page's order. The console is
// output, not state: the byte an OUT appends leaves with the step's event.
import { patchRegisters, type MachineRegisters } from "../machine/machine.ts";
import { RFLAGS } from "../machine/registers.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";
import type { Transaction } from "../transaction/transaction.ts";
import type { PortIo } from "../transaction/semantics.ts";
import { DEVICE_PORT, timerCounting, type DeviceState, type TimerState } from "../../contract/state.ts";

export const DEVICE_RULES = defineRules([
  { id: "DEV-PORT", description: "A port access belongs to the device whose register is at its first port, whatever its width (port+1..+3 are not decoded); other ports: OUT has no effect, IN reads all ones", source: "docs/devices.md, Port map" },
  { id: "DEV-CON-01", description: "OUT to 0xE9 appends the low byte of the value to the console (output, not state)", source: "docs/devices.md, The console; QEMU/Bochs debugcon" },
  { id: "DEV-CON-02", description: "IN from 0xE9 reads 0xE9, zero-extended (the debugcon read-back)", source: "docs/devices.md, Port map" },
  { id: "DEV-EXIT-01", description: "OUT to 0xF4 sets the exit value (the value written, zero-extended) and stops the machine after that OUT", source: "docs/devices.md, The exit port" },
  { id: "DEV-EXIT-02", description: "An exited machine takes no step (event `exited`, run stop `exit`)", source: "docs/devices.md, The exit port" },
  { id: "DEV-TMR-01", description: "OUT to PERIOD (0xE0): period ← value, countdown ← period; waiting_eoi unchanged; period 0 stops the timer. IN reads the period", source: "docs/devices.md, EOI" },
  { id: "DEV-TMR-02", description: "OUT to VECTOR (0xE4): vector ← value & 0xFF. IN reads the vector", source: "docs/devices.md, Port map" },
  { id: "DEV-TMR-03", description: "OUT to EOI (0xEC), any value: waiting_eoi ← 0, countdown ← period", source: "docs/devices.md, EOI" },
  { id: "DEV-TMR-04", description: "A step that completed an instruction (retired, io, HLT) counts, before that instruction's own device access: while counting, countdown − 1; at 0 the tick: pending_irq ← vector, waiting_eoi ← 1", source: "docs/devices.md, Per step, exactly" },
  { id: "DEV-TMR-05", description: "Faulting instructions, INT n/INT3/INTO/INT1, events taken at a boundary and no-step events do not count", source: "docs/devices.md, What counts", recordedWith: "DEV-TMR-04" },
  { id: "DEV-TMR-06", description: "A halted CPU with nothing deliverable: time jumps to the tick when the timer is counting and its tick could be taken (IF = 1, CR8 lets the vector through)", source: "docs/devices.md, A halted CPU" },
]);


const MASK32 = 0xffff_ffffn;

/**
 * What an IN from `port` reads: a device register's answer, truncated to the access (DEV-CON-02,
 * DEV-TMR-01/02), or undefined when no device register is at that port (the bus's all ones).
 */
export function deviceIn(t: Transaction, port: number, size: 1 | 2 | 4): bigint | undefined {
  const mask = (1n << BigInt(8 * size)) - 1n;
  const timer = t.m.devices.timer;
  switch (port) {
    case DEVICE_PORT.debugcon:
      t.hit("DEV-CON-02");
      return 0xe9n & mask;
    case DEVICE_PORT.timerPeriod:
      t.hit("DEV-TMR-01");
      return BigInt(timer.period) & mask;
    case DEVICE_PORT.timerVector:
      t.hit("DEV-TMR-02");
      return BigInt(timer.vector) & mask;
    default:
      t.hit("DEV-PORT");
      return undefined;
  }
}

/** The tick: the vector becomes pending (one slot, the latest wins), the timer waits for its EOI. */
function tick(timer: TimerState): TimerState {
  return { ...timer, countdown: 0, waitingEoi: true };
}

/**
 * DEV-TMR-04: a step that completed an instruction counts, with the timer as it was at the start
 * of the step. Nothing happens while the timer is off or waiting for its EOI.
 */
export function countCompletedInstruction(t: Transaction): void {
  const devices = t.now.devices;
  const timer = devices.timer;
  if (!timerCounting(timer)) return;
  if (timer.countdown > 1) {
    t.update("DEV-TMR-04", { devices: { ...devices, timer: { ...timer, countdown: timer.countdown - 1 } } });
    return;
  }
  t.update("DEV-TMR-04", { devices: { ...devices, timer: tick(timer) }, cpu: { ...t.now.cpu, pendingIrq: timer.vector } });
}

/**
 * The device write of an OUT that completed, after the count (docs/devices.md, Per step 2).
 * Returns the byte appended to the console, if the OUT was to 0xE9.
 */
export function deviceOut(t: Transaction, io: PortIo): number | undefined {
  const devices = t.m.devices;
  const timer = devices.timer;
  const value = io.value & MASK32;
  switch (io.port) {
    case DEVICE_PORT.debugcon:
      t.hit("DEV-CON-01");
      return Number(value & 0xffn);
    case DEVICE_PORT.debugExit:
      t.update("DEV-EXIT-01", { devices: { ...devices, exitValue: Number(value) } });
      return undefined;
    case DEVICE_PORT.timerPeriod: {
      const period = Number(value);
      t.update("DEV-TMR-01", { devices: { ...devices, timer: { ...timer, period, countdown: period } } });
      return undefined;
    }
    case DEVICE_PORT.timerVector:
      t.update("DEV-TMR-02", { devices: { ...devices, timer: { ...timer, vector: Number(value & 0xffn) } } });
      return undefined;
    case DEVICE_PORT.timerEoi:
      t.update("DEV-TMR-03", { devices: { ...devices, timer: { ...timer, waitingEoi: false, countdown: timer.period } } });
      return undefined;
    default:
      t.hit("DEV-PORT");
      return undefined;
  }
}

/** Whether the timer's tick could be taken now: IF = 1, no interrupt shadow (a halted CPU has none
 *  unless a state file says so), and CR8 lets its priority class through (PRIO-TPR, boundary.ts). */
function tickCouldBeTaken(m: MachineRegisters, devices: DeviceState): boolean {
  if ((m.rflags & RFLAGS.IF) === 0n || m.cpu.shadow !== "none") return false;
  const tpr = Number(m.cr8 & 0xfn);
  return tpr === 0 || devices.timer.vector >> 4 > tpr;
}

/** DEV-TMR-06's condition, for a halted CPU that nothing else can wake: the jump would happen. */
export function timerWouldWake(m: MachineRegisters): boolean {
  const devices = m.devices;
  return timerCounting(devices.timer) && tickCouldBeTaken(m, devices);
}

/**
 * DEV-TMR-06: a halted CPU that nothing can wake jumps to the timer's tick (as QEMU's -icount does
 * when idle), when the tick could be taken; the caller checks that nothing else can wake it. The
 * machine with the tick pending, or the machine itself.
 */
export function jumpToTick(m: MachineRegisters, coverage: Set<RuleId> | null): MachineRegisters {
  if (!timerWouldWake(m)) return m;
  coverage?.add("DEV-TMR-06");
  recordExecuted("DEV-TMR-06");
  const timer = m.devices.timer;
  return patchRegisters(m, { devices: { ...m.devices, timer: tick(timer) }, cpu: { ...m.cpu, pendingIrq: timer.vector } });
}
