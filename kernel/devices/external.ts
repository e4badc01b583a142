// The devices of docs/devices.md driven from outside an engine, for engines that do not implement
// them (capabilities.devices false). ExternalDevices wraps any Engine and is itself an Engine: it
// watches every step's event, counts completed instructions, makes a tick pending with
// `raise({ irq })`, applies OUT writes to device ports, performs the halted-CPU jump to the next
// tick, and reports its device state in state() (so its states compare with an engine's own).
// What it cannot do without the engine: answer an IN from a device register (the engine reads
// all ones).
import type { Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import { RESET_DEVICES, countInstruction, deviceWrite, isCounting, tick, tickCouldBeTaken, type DeviceState } from "./model.ts";

export class ExternalDevices implements Engine {
  private current: DeviceState = RESET_DEVICES;
  private console: number[] = [];
  /** The CPU executed HLT and no delivery has woken it since. */
  private halted = false;
  private shutdown = false;

  constructor(readonly inner: Engine) {}

  get devices(): DeviceState {
    return this.current;
  }

  /** The machine stopped at a write to the exit port. */
  get exited(): boolean {
    return this.current.exitValue !== null;
  }

  /** Bytes written to the console since the last call. */
  takeConsole(): Uint8Array {
    const bytes = Uint8Array.from(this.console);
    this.console = [];
    return bytes;
  }

  load(state: ArchState, profile: ProfileName): void {
    this.inner.load(state, profile);
    this.current = state.devices;
    this.console = [];
    this.halted = state.cpu.halted;
    this.shutdown = state.cpu.shutdown;
  }

  step(): EngineEvent {
    if (this.current.exitValue !== null) return { kind: "exited", rip: this.inner.state().rip, value: this.current.exitValue };
    const wasHalted = this.halted;
    let event = this.inner.step();
    if (event.kind === "halted" && wasHalted) {
      // Nothing can be delivered: the halted CPU jumps to the timer's tick if it could be taken.
      if (!this.tryIdleTick()) return event;
      event = this.inner.step();
      if (event.kind === "halted") return event;
    }
    const counts = event.kind === "retired" || event.kind === "io" || (event.kind === "halted" && !wasHalted);
    if (counts) {
      const counted = countInstruction(this.current.timer);
      this.current = { ...this.current, timer: counted.timer };
      if (counted.ticked) this.inner.raise({ irq: counted.timer.vector });
    }
    if (event.kind === "io" && event.direction === "out") {
      const written = deviceWrite(this.current, event.port, event.value);
      this.current = written.devices;
      if (written.consoleByte !== undefined) this.console.push(written.consoleByte);
    }
    if (event.kind === "halted") this.halted = true;
    else if (event.kind === "delivered") this.halted = false;
    if (event.kind === "shutdown") this.shutdown = true;
    return event;
  }

  /** The halted-CPU jump: the tick now, when the timer is counting and the tick could be taken. */
  private tryIdleTick(): boolean {
    const timer = this.current.timer;
    if (!isCounting(timer)) return false;
    const s = this.inner.state();
    if (s.cpu.shadow !== "none" || !tickCouldBeTaken(timer, s.rflags, s.cr8)) return false;
    this.current = { ...this.current, timer: tick(timer) };
    this.inner.raise({ irq: timer.vector });
    return true;
  }

  /** Why the machine cannot step, or undefined when it can. */
  private idle(): "exit" | "hlt" | "shutdown" | undefined {
    if (this.exited) return "exit";
    if (!this.halted && !this.shutdown) return undefined;
    const stop = this.inner.run(0);
    if (stop.reason === "shutdown") return "shutdown";
    if (stop.reason !== "hlt") return undefined;
    const timer = this.current.timer;
    if (!isCounting(timer)) return "hlt";
    const s = this.inner.state();
    return s.cpu.shadow === "none" && tickCouldBeTaken(timer, s.rflags, s.cr8) ? undefined : "hlt";
  }

  run(maxSteps: number): EngineStop {
    let steps = 0;
    for (;;) {
      const idle = this.idle();
      if (idle === "exit") return { reason: "exit", steps, exitValue: this.current.exitValue! };
      if (idle !== undefined) return { reason: idle, steps };
      if (steps >= maxSteps) return { reason: "limit", steps };
      const event = this.step();
      if (event.kind === "unsupported" || event.kind === "memory-limit") return { reason: event.kind, steps, event };
      steps++;
    }
  }

  state(memory?: readonly PhysicalRange[]): ArchState {
    return { ...this.inner.state(memory), devices: this.current };
  }

  raise(event: RaiseRequest): void {
    this.inner.raise(event);
  }

  touched(): readonly PhysicalRange[] {
    return this.inner.touched();
  }
}
