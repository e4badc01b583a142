// The one run loop (engines/runner.ts), sync and async, driven by small fake engines so that every
// stop is exercised whatever the model implements, then by the real engines.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { parseDocument } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { AsyncEngine, Engine, EngineEvent, EngineStop, PhysicalRange, StepView } from "../../contract/engine.ts";
import { asAsync } from "../../contract/async.ts";
import { nextChunk, runAsyncEngine, runEngine } from "../../engines/runner.ts";
import { createEngine, ENGINE_NAMES, engineEntry, ENGINES } from "../../engines/registry.ts";

const VECTOR = (name: string) => fileURLToPath(new URL(`../../conformance/vectors/${name}.json`, import.meta.url));
const state: ArchState = parseDocument(readFileSync(VECTOR("syscall-basic"), "utf8")).state;

/** Counts steps in RAX; halts after `haltAfter` steps, or reports unsupported bytes or a memory
 *  limit after so many, or exits (docs/devices.md) with value 7 after `exitAfter`. Records the
 *  run(n) calls. */
class CountingEngine implements Engine {
  steps = 0;
  runs: number[] = [];
  stateCalls = 0;
  private loaded: ArchState = state;
  constructor(private readonly behaviour: { haltAfter?: number; unsupportedAfter?: number; memoryLimitAfter?: number; exitAfter?: number } = {}) {}
  load(s: ArchState): void {
    this.loaded = s;
  }
  step(): EngineEvent {
    const { haltAfter, unsupportedAfter, memoryLimitAfter, exitAfter } = this.behaviour;
    if (exitAfter !== undefined && this.steps >= exitAfter) return { kind: "exited", rip: 0n, value: 7 };
    if (haltAfter !== undefined && this.steps >= haltAfter) return { kind: "halted", rip: 0n };
    if (unsupportedAfter !== undefined && this.steps >= unsupportedAfter)
      return { kind: "unsupported", rip: 5n, bytes: Uint8Array.of(0x0f, 0x0b), reason: "no semantics" };
    if (memoryLimitAfter !== undefined && this.steps >= memoryLimitAfter) return { kind: "memory-limit", rip: 5n, reason: "page budget exceeded" };
    this.steps++;
    return { kind: haltAfter !== undefined && this.steps === haltAfter ? "halted" : "retired", rip: 0n };
  }
  run(maxSteps: number): EngineStop {
    this.runs.push(maxSteps);
    const { haltAfter, unsupportedAfter, memoryLimitAfter, exitAfter } = this.behaviour;
    for (let n = 0; ; n++) {
      if (exitAfter !== undefined && this.steps >= exitAfter) return { reason: "exit", steps: n, exitValue: 7 };
      if (haltAfter !== undefined && this.steps >= haltAfter) return { reason: "hlt", steps: n };
      // run(0) steps nothing: an unsupported instruction or the memory cap shows only on a step.
      if (maxSteps === 0) return { reason: "limit", steps: 0 };
      if (unsupportedAfter !== undefined && this.steps >= unsupportedAfter)
        return { reason: "unsupported", steps: n, event: { kind: "unsupported", rip: 5n, bytes: Uint8Array.of(0x0f, 0x0b), reason: "no semantics" } };
      if (memoryLimitAfter !== undefined && this.steps >= memoryLimitAfter)
        return { reason: "memory-limit", steps: n, event: { kind: "memory-limit", rip: 5n, reason: "page budget exceeded" } };
      if (n >= maxSteps) return { reason: "limit", steps: n };
      this.steps++;
    }
  }
  state(): ArchState {
    this.stateCalls++;
    const halted = this.behaviour.haltAfter !== undefined && this.steps >= this.behaviour.haltAfter;
    const exited = this.behaviour.exitAfter !== undefined && this.steps >= this.behaviour.exitAfter;
    return {
      ...this.loaded, gpr: this.loaded.gpr.map((v, i) => (i === 0 ? BigInt(this.steps) : v)), cpu: { ...this.loaded.cpu, halted },
      devices: { ...this.loaded.devices, exitValue: exited ? 7 : null },
    };
  }
  raise(): void {}
  touched(): readonly PhysicalRange[] {
    return [];
  }
}

const LIMITS = { maxSteps: 1_000_000, timeoutMs: 60_000 };

describe("the exit port (docs/devices.md): a run ends with `exit` and the value", () => {
  it("without onStep: the engine's run(n) stop, with its value in the detail", () => {
    const r = runEngine(new CountingEngine({ exitAfter: 5000 }), LIMITS);
    expect(r.stop).toEqual({ reason: "exit", steps: 5000, exitValue: 7, detail: "exit value 7" });
    expect(r.state.devices.exitValue).toBe(7);
  });
  it("with onStep: the exited state stops the loop before the limit, and no exited event reaches the hook", () => {
    const kinds: string[] = [];
    const r = runEngine(new CountingEngine({ exitAfter: 3 }), { maxSteps: 3, timeoutMs: 60_000, onStep: (v) => void kinds.push(v.event.kind) });
    expect(r.stop).toEqual({ reason: "exit", steps: 3, exitValue: 7 });
    expect(kinds).toEqual(["retired", "retired", "retired"]);
  });
  it("an exited state from the start: no step", async () => {
    const exited = new CountingEngine({ exitAfter: 0 });
    expect(runEngine(exited, { ...LIMITS, onStep: () => undefined }).stop).toEqual({ reason: "exit", steps: 0, exitValue: 7 });
    const r = await runAsyncEngine(asAsync(new CountingEngine({ exitAfter: 0 }), { name: "counting", profiles: ["intel"], singleStep: true, raise: false, touched: false, unobservable: [] }), LIMITS);
    expect(r.stop).toEqual({ reason: "exit", steps: 0, exitValue: 7, detail: "exit value 7" });
  });
});

describe("runEngine with onEvent: one step at a time, events only", () => {
  it("hands every event over without asking for a state per step; exit, hlt and limit stop it as run(n) does", () => {
    const e = new CountingEngine({ exitAfter: 1000 });
    const seen: number[] = [];
    const r = runEngine(e, { ...LIMITS, onEvent: (step, event) => void seen.push(step, event.kind === "retired" ? 1 : 0) });
    expect(r.stop).toEqual({ reason: "exit", steps: 1000, exitValue: 7, detail: "exit value 7" });
    expect(seen.length).toBe(2000);
    expect(seen.slice(0, 4)).toEqual([1, 1, 2, 1]);
    expect(e.stateCalls).toBe(1); // the final state only
    expect(runEngine(new CountingEngine({ haltAfter: 10 }), { ...LIMITS, onEvent: () => undefined }).stop).toEqual({ reason: "hlt", steps: 10 });
    expect(runEngine(new CountingEngine(), { maxSteps: 5, timeoutMs: 60_000, onEvent: () => undefined }).stop).toEqual({ reason: "limit", steps: 5 });
  });

  it("\"stop\" ends the run after that step; an unsupported attempt is handed over and ends the run", () => {
    expect(runEngine(new CountingEngine(), { ...LIMITS, onEvent: (step) => (step === 3 ? "stop" : undefined) }).stop).toEqual({ reason: "stopped", steps: 3 });
    const kinds: string[] = [];
    const r = runEngine(new CountingEngine({ unsupportedAfter: 2 }), { ...LIMITS, onEvent: (_s, event) => void kinds.push(event.kind) });
    expect(r.stop).toMatchObject({ reason: "unsupported", steps: 2, detail: "no semantics (bytes 0f0b)" });
    expect(kinds).toEqual(["retired", "retired", "unsupported"]);
    expect(() => runEngine(new CountingEngine(), { ...LIMITS, onEvent: () => undefined, onStep: () => undefined })).toThrow(/onStep and onEvent/);
  });

  it("runAsyncEngine drives onEvent the same way", async () => {
    const caps = { name: "counting", profiles: ["intel"] as const, singleStep: true, raise: false, touched: false, unobservable: [] };
    let n = 0;
    const r = await runAsyncEngine(asAsync(new CountingEngine({ haltAfter: 7 }), caps), { ...LIMITS, onEvent: async () => void n++ });
    expect(r.stop).toEqual({ reason: "hlt", steps: 7 });
    expect(n).toBe(7);
  });
});

describe("runEngine without onStep: whole chunks through run(n)", () => {
  // The chunk sizes follow the wall clock (nextChunk), so this test checks only what holds on a
  // loaded machine too; the sizing policy itself is tested on its own below.
  it("runs to the step limit in run(n) calls of at most the remaining steps, never past the limit", () => {
    const e = new CountingEngine();
    const r = runEngine(e, { maxSteps: 150_000, timeoutMs: 60_000 });
    expect(r.stop).toEqual({ reason: "limit", steps: 150_000 });
    expect(r.state.gpr[0]).toBe(150_000n);
    expect(e.runs[0]).toBe(1024);
    expect(e.runs.reduce((x, y) => x + y, 0)).toBe(150_000);
    expect(e.runs.every((n) => n >= 1)).toBe(true);
  });

  it("chunk sizing: doubles while calls are fast, halves when slow, keeps between, bounded", () => {
    expect(nextChunk(1024, 0)).toBe(2048);
    expect(nextChunk(1024, 9)).toBe(2048);
    expect(nextChunk(1024, 10)).toBe(1024);
    expect(nextChunk(1024, 50)).toBe(1024);
    expect(nextChunk(1024, 51)).toBe(512);
    expect(nextChunk(1, 1000)).toBe(1);
    expect(nextChunk(1 << 26, 0)).toBe(1 << 26);
  });

  it("hlt, and 0 steps: a limit with nothing run", () => {
    expect(runEngine(new CountingEngine({ haltAfter: 70_000 }), LIMITS).stop).toEqual({ reason: "hlt", steps: 70_000 });
    const e = new CountingEngine();
    expect(runEngine(e, { maxSteps: 0, timeoutMs: 1000 }).stop).toEqual({ reason: "limit", steps: 0 });
    expect(e.runs).toEqual([0]);
  });

  it("stops at the timeout between chunks: after the first chunk that ends past it", () => {
    // On a clock of the test's own, each run(n) call taking 20 ms of it: whatever the machine's
    // speed, the third chunk ends past the 50 ms deadline, and the run must end right there (a
    // wall-clock bound on the run would fail on a loaded machine).
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const e = new CountingEngine();
      const run = e.run.bind(e);
      e.run = (maxSteps) => {
        // A runner that missed its deadline would loop for ever: fail instead.
        if (e.runs.length >= 100) throw new Error("the run went on long past its deadline");
        vi.advanceTimersByTime(20);
        return run(maxSteps);
      };
      const r = runEngine(e, { maxSteps: Number.MAX_SAFE_INTEGER, timeoutMs: 50 });
      expect(r.stop).toEqual({ reason: "timeout", steps: 3 * 1024, detail: "no stop within 0.05 s" });
      // 20 ms a chunk is neither fast nor slow (nextChunk): the size stays.
      expect(e.runs).toEqual([1024, 1024, 1024]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("unsupported and memory-limit stops carry their reason as one line", () => {
    expect(runEngine(new CountingEngine({ unsupportedAfter: 3 }), LIMITS).stop).toMatchObject({ reason: "unsupported", steps: 3, detail: "no semantics (bytes 0f0b)" });
    expect(runEngine(new CountingEngine({ memoryLimitAfter: 1 }), LIMITS).stop).toMatchObject({ reason: "memory-limit", steps: 1, detail: "page budget exceeded" });
  });

  it("bad limits are a caller's mistake", () => {
    expect(() => runEngine(new CountingEngine(), { maxSteps: -1, timeoutMs: 1 })).toThrow(/maxSteps/);
    expect(() => runEngine(new CountingEngine(), { maxSteps: 1, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe("runEngine with onStep: one step at a time", () => {
  it("hands every step over with the state before and after, numbered from 1", () => {
    const seen: StepView[] = [];
    const r = runEngine(new CountingEngine(), { maxSteps: 3, timeoutMs: 60_000, onStep: (v) => void seen.push(v) });
    expect(r.stop).toEqual({ reason: "limit", steps: 3 });
    expect(seen.map((v) => [v.step, v.before.gpr[0], v.after.gpr[0], v.event.kind])).toEqual([[1, 0n, 1n, "retired"], [2, 1n, 2n, "retired"], [3, 2n, 3n, "retired"]]);
    // The state after one step is the state before the next (read once).
    expect(seen[1]!.before).toBe(seen[0]!.after);
  });

  it("an HLT step with nothing to wake the CPU ends the run at hlt, even at the step limit", () => {
    const seen: string[] = [];
    const r = runEngine(new CountingEngine({ haltAfter: 2 }), { maxSteps: 2, timeoutMs: 60_000, onStep: (v) => void seen.push(v.event.kind) });
    expect(r.stop).toEqual({ reason: "hlt", steps: 2 });
    expect(seen).toEqual(["retired", "halted"]);
  });

  it("the unsupported attempt is shown but not counted", () => {
    const seen: number[] = [];
    const r = runEngine(new CountingEngine({ unsupportedAfter: 2 }), { ...LIMITS, onStep: (v) => void seen.push(v.step) });
    expect(r.stop).toMatchObject({ reason: "unsupported", steps: 2, detail: "no semantics (bytes 0f0b)" });
    expect(seen).toEqual([1, 2, 3]);
  });

  it("onStep returning stop ends the run with reason stopped", () => {
    const r = runEngine(new CountingEngine(), { ...LIMITS, onStep: (v) => (v.step === 5 ? "stop" : undefined) });
    expect(r.stop).toEqual({ reason: "stopped", steps: 5 });
  });

  it("a CPU already in shutdown stops at once", () => {
    const spec = createEngine("spec");
    spec.load({ ...state, cpu: { ...state.cpu, shutdown: true } }, "intel");
    expect(runEngine(spec, { ...LIMITS, onStep: () => undefined }).stop).toEqual({ reason: "shutdown", steps: 0 });
    spec.load({ ...state, cpu: { ...state.cpu, shutdown: true } }, "intel");
    expect(runEngine(spec, LIMITS).stop).toEqual({ reason: "shutdown", steps: 0 });
  });
});

describe("runAsyncEngine", () => {
  it("gives the same stops as the sync form over asAsync", async () => {
    const caps = { name: "counting", profiles: ["intel"] as const, singleStep: true, raise: false, touched: false, unobservable: [] };
    for (const make of [() => new CountingEngine(), () => new CountingEngine({ haltAfter: 7 }), () => new CountingEngine({ unsupportedAfter: 4 })]) {
      for (const onStep of [undefined, () => undefined]) {
        const sync = runEngine(make(), { maxSteps: 100, timeoutMs: 60_000, ...(onStep ? { onStep } : {}) });
        const async = await runAsyncEngine(asAsync(make(), caps), { maxSteps: 100, timeoutMs: 60_000, ...(onStep ? { onStep } : {}) });
        expect(async.stop).toEqual(sync.stop);
        expect(async.state.gpr[0]).toBe(sync.state.gpr[0]);
      }
    }
  });

  it("an engine that stops answering ends the run at the timeout with the last state it gave", async () => {
    const inner = new CountingEngine();
    const hung: AsyncEngine = {
      ...asAsync(inner, { name: "hung", profiles: ["intel"], singleStep: true, raise: false, touched: false, unobservable: [] }),
      capabilities: { name: "hung", profiles: ["intel"], singleStep: true, raise: false, touched: false, unobservable: [] },
      state: async () => inner.state(),
      step: () => (inner.steps >= 3 ? new Promise<EngineEvent>(() => {}) : Promise.resolve(inner.step())),
    };
    // On a clock of the test's own: the three steps before the hang take none of the 100 ms,
    // however slow the machine (on the wall clock, a pause of 100 ms before them ended the run
    // early, with another stop), and the run ends when exactly 100 ms have passed on it.
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    try {
      let ended = false;
      const running = runAsyncEngine(hung, { maxSteps: 100, timeoutMs: 100, onStep: () => undefined }).finally(() => (ended = true));
      await vi.advanceTimersByTimeAsync(99);
      expect(ended).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(ended).toBe(true);
      const r = await running;
      expect(r.stop).toEqual({ reason: "timeout", steps: 3, detail: "hung did not answer within 0.1 s" });
      expect(r.state.gpr[0]).toBe(3n);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the engine registry", () => {
  it("names spec and impl, both in-process, with full observation", () => {
    expect(ENGINE_NAMES).toEqual(["spec", "impl"]);
    for (const entry of ENGINES) {
      expect(entry.capabilities.name).toBe(entry.name);
      expect(entry.capabilities.unobservable).toEqual([]);
      expect(entry.create).toBeDefined();
    }
    expect(engineEntry("nosuch")).toBeUndefined();
    expect(() => createEngine("nosuch")).toThrow(/no in-process engine/);
  });

  it("spec and impl run a vector to the same stop and state, sync and async", async () => {
    const doc = parseDocument(readFileSync(VECTOR("int-interrupt-gate-if-cleared"), "utf8"));
    const results = [];
    for (const name of ENGINE_NAMES) {
      const engine = createEngine(name);
      engine.load(doc.state, doc.profile ?? "intel");
      results.push(runEngine(engine, LIMITS));
      const opened = await engineEntry(name)!.open();
      await opened.load(doc.state, doc.profile ?? "intel");
      results.push(await runAsyncEngine(opened, LIMITS));
      await opened.close();
    }
    for (const r of results.slice(1)) {
      expect(r.stop).toEqual(results[0]!.stop);
      expect(r.state.rip).toBe(results[0]!.state.rip);
    }
    expect(results[0]!.stop.reason).toBe("hlt");
  });
});
