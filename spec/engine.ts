// The spec behind the Engine interface (contract/engine.ts): a thin adapter so conformance,
// the CLI and lockstep tests drive spec/ and impl/ the same way.
import type { Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../contract/engine.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { ArchState } from "../contract/state.ts";
import { machineFromState, stateFromMachine, type Machine } from "./machine/machine.ts";
import { INTEL, profileByName, type Profile } from "../contract/profile.ts";
import type { StepEvent } from "./step/events.ts";
import { run, step } from "./step/step.ts";

function engineEvent(e: StepEvent): EngineEvent {
  switch (e.kind) {
    case "retired":
      return { kind: "retired", rip: e.rip };
    case "delivered":
      return { kind: "delivered", rip: e.rip, vector: e.vector, errorCode: e.errorCode, source: e.source };
    case "halted":
    case "shutdown":
      return { kind: e.kind, rip: e.rip };
    case "io":
      return { kind: "io", rip: e.rip, direction: e.direction, port: e.port, size: e.size, value: e.value };
    case "unsupported":
      return { kind: "unsupported", rip: e.rip, bytes: e.bytes, reason: e.reason };
    case "fault":
      // Only with delivery "stop", which the engine never asks for.
      throw new Error("spec engine: undelivered fault");
  }
}

export class SpecEngine implements Engine {
  private machine: Machine | null = null;
  private loaded: Machine | null = null;
  private profile: Profile = INTEL;

  load(state: ArchState, profile: ProfileName): void {
    this.machine = this.loaded = machineFromState(state);
    this.profile = profileByName(profile);
  }

  private current(): Machine {
    if (this.machine === null) throw new Error("spec engine: load() a state first");
    return this.machine;
  }

  step(): EngineEvent {
    const result = step(this.current(), { profile: this.profile });
    this.machine = result.state;
    return engineEvent(result.event);
  }

  run(maxSteps: number): EngineStop {
    const result = run(this.current(), { profile: this.profile, maxSteps });
    this.machine = result.state;
    const last = result.last;
    if (result.reason === "unsupported" && last?.kind === "unsupported")
      return { reason: "unsupported", steps: result.steps, event: { kind: "unsupported", rip: last.rip, bytes: last.bytes, reason: last.reason } };
    if (result.reason === "hlt" || result.reason === "shutdown" || result.reason === "limit") return { reason: result.reason, steps: result.steps };
    throw new Error(`spec engine: unexpected stop ${result.reason}`);
  }

  state(): ArchState {
    return stateFromMachine(this.current());
  }

  raise(event: RaiseRequest): void {
    const m = this.current();
    const cpu = "irq" in event ? { ...m.cpu, pendingIrq: event.irq } : { ...m.cpu, pendingNmi: true };
    this.machine = { ...m, cpu };
  }

  /** Whole pages whose contents object changed since `load` (persistent memory copies a page on
   *  every write, so an untouched page is still the very same object). */
  touched(): readonly PhysicalRange[] {
    const now = this.current().memory;
    const before = this.loaded!.memory;
    const pages = [...new Set([...now.pages().keys()])].filter((n) => now.page(n) !== before.page(n)).sort((a, b) => a - b);
    const ranges: PhysicalRange[] = [];
    for (const n of pages) {
      const start = BigInt(n) * 4096n;
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.end === start) ranges[ranges.length - 1] = { start: last.start, end: start + 4096n };
      else ranges.push({ start, end: start + 4096n });
    }
    return ranges;
  }
}
