// The devices of docs/devices.md as pure functions: the console (0xE9), the exit port (0xF4) and
// the deterministic timer (0xE0 period, 0xE4 vector, 0xEC EOI). Engines will implement the same
// page independently; this model is what kernel/ drives them with until they do.

import { DEVICE_PORT as PORT, timerCounting, type DeviceState, type TimerState } from "../../contract/state.ts";

// The device state is the contract's (ArchState.devices).
export { RESET_DEVICES, RESET_TIMER, type DeviceState, type TimerState } from "../../contract/state.ts";

export { PORT };

export function isCounting(timer: TimerState): boolean {
  return timerCounting(timer);
}

/** The tick: the vector becomes pending (the caller sets cpu.pending_irq), the timer waits. */
export function tick(timer: TimerState): TimerState {
  return { ...timer, countdown: 0, waitingEoi: true };
}

/** Step 1 of a counted step: count one completed instruction. `ticked`: the vector must become
 *  pending at the next boundary. */
export function countInstruction(timer: TimerState): { readonly timer: TimerState; readonly ticked: boolean } {
  if (!isCounting(timer)) return { timer, ticked: false };
  const countdown = timer.countdown - 1;
  if (countdown <= 0) return { timer: tick(timer), ticked: true };
  return { timer: { ...timer, countdown }, ticked: false };
}

const MASK32 = 0xffff_ffff;

/** Step 2: an OUT that completed. Returns the new devices and the console byte it wrote, if any. */
export function deviceWrite(devices: DeviceState, port: number, value: bigint): { readonly devices: DeviceState; readonly consoleByte?: number } {
  const v = Number(value & 0xffff_ffffn) >>> 0;
  const timer = devices.timer;
  switch (port) {
    case PORT.debugcon:
      return { devices, consoleByte: v & 0xff };
    case PORT.debugExit:
      return { devices: { ...devices, exitValue: v } };
    case PORT.timerPeriod:
      return { devices: { ...devices, timer: { ...timer, period: v & MASK32, countdown: v & MASK32 } } };
    case PORT.timerVector:
      return { devices: { ...devices, timer: { ...timer, vector: v & 0xff } } };
    case PORT.timerEoi:
      return { devices: { ...devices, timer: { ...timer, waitingEoi: false, countdown: timer.period } } };
    default:
      return { devices };
  }
}

/** What an IN from `port` reads (zero-extended, truncated to `size` bytes); undefined: nothing
 *  answers (the engine's all ones). */
export function deviceRead(devices: DeviceState, port: number, size: 1 | 2 | 4): bigint | undefined {
  const mask = (1n << BigInt(8 * size)) - 1n;
  switch (port) {
    case PORT.debugcon:
      return 0xe9n & mask;
    case PORT.timerPeriod:
      return BigInt(devices.timer.period) & mask;
    case PORT.timerVector:
      return BigInt(devices.timer.vector) & mask;
    default:
      return undefined;
  }
}

/** Whether a halted CPU's tick could be taken (docs/devices.md, "A halted CPU"). */
export function tickCouldBeTaken(timer: TimerState, rflags: bigint, cr8: bigint): boolean {
  if ((rflags & 0x200n) === 0n) return false;
  const tpr = Number(cr8 & 0xfn);
  return tpr === 0 || timer.vector >> 4 > tpr;
}

/** Ports that belong to a device (an access to any other port is the engine's business). */
export function isDevicePort(port: number): boolean {
  return port === PORT.debugcon || port === PORT.debugExit || port === PORT.timerPeriod || port === PORT.timerVector || port === PORT.timerEoi;
}
