// An in-process Engine as an AsyncEngine: every call answers at once, and `steps(n)`/`run(n)` are
// one call each, so the asynchronous boundary costs an in-process engine a promise per exchange,
// not per step.
import type { ArchState } from "./state.ts";
import type { ProfileName } from "./profile.ts";
import { peekedState, RUN_ENDING_EVENTS, type AsyncEngine, type Engine, type EngineCapabilities, type EngineEvent, type EngineStop, type PhysicalRange, type RaiseRequest } from "./engine.ts";

class InProcess implements AsyncEngine {
  /** Engine's promise: the same load and raises give the same run (nothing else steers it). */
  readonly repeatable = true;
  private closed = false;
  constructor(private readonly engine: Engine, readonly capabilities: EngineCapabilities) {}

  private open(): Engine {
    if (this.closed) throw new Error(`${this.capabilities.name}: engine closed`);
    return this.engine;
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    this.open().load(state, profile);
  }
  async step(): Promise<EngineEvent> {
    return this.open().step();
  }
  async steps(n: number): Promise<readonly EngineEvent[]> {
    const engine = this.open();
    const events: EngineEvent[] = [];
    for (let i = 0; i < n; i++) {
      const event = engine.step();
      events.push(event);
      if (RUN_ENDING_EVENTS.has(event.kind)) break;
      // run(0) steps nothing: `hlt` when the CPU is halted with nothing to wake it, `exit` once
      // the kernel has written the exit port.
      if (engine.run(0).reason !== "limit") break;
    }
    return events;
  }
  async run(maxSteps: number): Promise<EngineStop> {
    return this.open().run(maxSteps);
  }
  async state(): Promise<ArchState> {
    return this.open().state();
  }
  async peekState(memory: readonly PhysicalRange[]): Promise<ArchState> {
    return peekedState(this.open(), memory);
  }
  async raise(event: RaiseRequest): Promise<void> {
    this.open().raise(event);
  }
  async touched(): Promise<readonly PhysicalRange[]> {
    return this.open().touched();
  }
  async takeConsole(): Promise<Uint8Array> {
    return this.open().takeConsole?.() ?? new Uint8Array(0);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** `engine` behind the AsyncEngine interface, described by `capabilities`. */
export function asAsync(engine: Engine, capabilities: EngineCapabilities): AsyncEngine {
  return new InProcess(engine, capabilities);
}
