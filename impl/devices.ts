// The machine's devices, on the I/O port bus (docs/devices.md, docs/model-choices.md row "Devices"):
// the debug console (0xE9), the exit port (0xF4) and the deterministic timer (0xE0 PERIOD, 0xE4
// VECTOR, 0xEC EOI) that makes its vector pending after `period` completed instructions.
//
// Who calls what, per step: IN reads a device register in its handler (deviceRead); a step that
// completed an instruction is counted (countCompleted, by the engine: engine/execute.ts for an
// interpreted instruction, engine/run-block.ts for a compiled run), and only then does an OUT reach
// its device (deviceWrite) — the order docs/devices.md fixes ("Count", then the device access).
// The engine never lets a compiled block or a batch of string iterations run past the tick: it
// caps their step budget at the countdown. Not a cache.
import type { Machine } from "./machine.ts";
import * as constsModule from "./consts.ts";
import { DEVICE_PORT } from "../contract/state.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { IF } = constsModule;

// Module-local copies of the contract's port numbers (why: consts.ts, "Using these constants").
export const PORT_TIMER_PERIOD = DEVICE_PORT.timerPeriod, PORT_TIMER_VECTOR = DEVICE_PORT.timerVector,
  PORT_DEBUGCON = DEVICE_PORT.debugcon, PORT_TIMER_EOI = DEVICE_PORT.timerEoi, PORT_DEBUG_EXIT = DEVICE_PORT.debugExit;

/** Counts `n` completed instructions on a counting timer (Machine.timerCounting); the last one may
 *  tick: the vector becomes pending (cpu.pending_irq, the latest wins) and the timer waits for its
 *  EOI. */
export function countCompleted(m: Machine, n: number): void {
  const left = m.timerCountdown - n;
  if (left > 0) {
    m.timerCountdown = left;
    return;
  }
  tick(m);
}

function tick(m: Machine): void {
  m.pendingIrq = m.timerVector;
  m.timerWaitingEoi = true;
  m.timerCountdown = 0;
  m.timerCounting = false;
}

/** A halted CPU with nothing to deliver: if the timer is counting and its tick could be taken
 *  (IF = 1, and CR8 lets the vector through), virtual time jumps to the tick. Returns whether it
 *  did. (The idle check asks `tickCouldWake` without jumping.) */
export function jumpToTick(m: Machine): boolean {
  if (!tickCouldWake(m)) return false;
  tick(m);
  return true;
}

export function tickCouldWake(m: Machine): boolean {
  return m.timerCounting && (m.flags & IF) !== 0 && (m.cr8 === 0 || m.timerVector >> 4 > m.cr8);
}

/** What an IN of `size` bytes from `port` reads: a device register, else all ones. */
export function deviceRead(m: Machine, port: number, size: number): number {
  const mask = size === 1 ? 0xff : size === 2 ? 0xffff : -1;
  switch (port) {
    case PORT_TIMER_PERIOD:
      return m.timerPeriod & mask;
    case PORT_TIMER_VECTOR:
      return m.timerVector;
    case PORT_DEBUGCON:
      return 0xe9;
    default:
      return mask;
  }
}

/** The OUT the step just completed (Machine.ioPort / ioValue, the value zero-extended) reaches its
 *  device. */
export function deviceWrite(m: Machine): void {
  const value = m.ioValue >>> 0;
  switch (m.ioPort) {
    case PORT_TIMER_PERIOD:
      m.timerPeriod = value;
      m.timerCountdown = value;
      m.timerCounting = value !== 0 && !m.timerWaitingEoi;
      return;
    case PORT_TIMER_VECTOR:
      m.timerVector = value & 0xff;
      return;
    case PORT_DEBUGCON:
      appendConsole(m, value & 0xff);
      return;
    case PORT_TIMER_EOI:
      m.timerWaitingEoi = false;
      m.timerCountdown = m.timerPeriod;
      m.timerCounting = m.timerPeriod !== 0;
      return;
    case PORT_DEBUG_EXIT:
      m.exitValue = value;
      return;
  }
}

function appendConsole(m: Machine, byte: number): void {
  if (m.consoleLength === m.console.length) {
    const grown = new Uint8Array(m.console.length * 2);
    grown.set(m.console);
    m.console = grown;
  }
  m.console[m.consoleLength++] = byte;
}

/** What takeConsole hands out when nothing was written (most steps): one frozen empty array. */
const NO_CONSOLE = Object.freeze(new Uint8Array(0));

/** The console bytes written since the last call (Engine.takeConsole), forgotten here. */
export function takeConsole(m: Machine): Uint8Array {
  if (m.consoleLength === 0) return NO_CONSOLE;
  const out = m.console.slice(0, m.consoleLength);
  m.consoleLength = 0;
  return out;
}
