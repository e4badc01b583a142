// One case in lockstep, three ways (conformance/campaign/lockstep-case.ts): compared every step,
// every N steps with the failing window re-run step by step (`--every N`), and on whole runs
// located by bisection (an engine that cannot single-step). All three must find the same step and
// the same differing fields. The engines: spec against impl with SWAPGS broken (a planted bug),
// on model-based sequences whose kernel entry runs SWAPGS several steps in.
import { describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { lockstepCase, type CaseVerdict } from "../../conformance/campaign/lockstep-case.ts";
import { MODEL_FAMILY } from "../../conformance/generate/model.ts";
import { familyByName, type BuiltCase, type Family } from "../../conformance/campaign/families.ts";
import { PlantedEngine, plantedBug } from "../../conformance/planted.ts";
import { asAsync } from "../../contract/async.ts";
import type { AsyncEngine, Engine, EngineEvent } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import { engineEntry } from "../../engines/registry.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";

const SPEC = engineEntry("spec")!.capabilities;
const IMPL = engineEntry("impl")!.capabilities;

function engines(options: { bSingleSteps: boolean }): { a: AsyncEngine; b: AsyncEngine } {
  const broken = new PlantedEngine(new ImplEngine(), plantedBug("swapgs-noop")!);
  return { a: asAsync(new SpecEngine(), SPEC), b: asAsync(broken, { ...IMPL, name: "impl with swapgs-noop", singleStep: options.bSingleSteps }) };
}

async function verdict(c: ReturnType<typeof MODEL_FAMILY.build>, every: number, bSingleSteps = true): Promise<CaseVerdict> {
  const { a, b } = engines({ bSingleSteps });
  return lockstepCase(a, b, c, { every, rule: "exact", timeoutMs: 60_000 });
}

const fieldsOf = (v: CaseVerdict) => (v.kind === "diverge" ? v.divergence.differences.map((d) => d.field).filter((f) => !f.startsWith("event.")) : []);

describe("a case compared every step, every N steps, and on whole runs", () => {
  it("finds the same diverging step and fields each way (--every re-runs the window; whole runs bisect)", async () => {
    // Model cases without raises (checkpoints are used only then) that reach a SYSCALL.
    const cases = fc.sample(MODEL_FAMILY.arbitrary, { seed: 11, numRuns: 60 }).map((v) => MODEL_FAMILY.build(v)).filter((c) => c.raises.length === 0);
    let checked = 0;
    for (const c of cases) {
      const each = await verdict(c, 1);
      if (each.kind !== "diverge" || each.divergence.step < 6) continue;
      expect(each.divergence.located).toBe("step");
      expect(fieldsOf(each)).toContain("msrs.KERNEL_GS_BASE");
      for (const every of [4, 7]) {
        const windowed = await verdict(c, every);
        expect(windowed.kind).toBe("diverge");
        if (windowed.kind !== "diverge") continue;
        expect(windowed.divergence.located).toBe("window");
        expect(windowed.divergence.step).toBe(each.divergence.step);
        expect(windowed.divergence.differences).toEqual(each.divergence.differences);
      }
      const bisected = await verdict(c, 1, false);
      expect(bisected.kind).toBe("diverge");
      if (bisected.kind !== "diverge") continue;
      expect(bisected.divergence.located).toBe("bisection");
      expect(bisected.divergence.step).toBe(each.divergence.step);
      expect(fieldsOf(bisected)).toEqual(fieldsOf(each));
      if (++checked === 3) break;
    }
    expect(checked).toBe(3);
  }, 120_000);

  it("agreeing engines agree each way", async () => {
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 12, numRuns: 1 })[0]!);
    for (const every of [1, 5]) {
      const v = await lockstepCase(asAsync(new SpecEngine(), SPEC), asAsync(new ImplEngine(), IMPL), { ...c, raises: [] }, { every, rule: "exact", timeoutMs: 60_000 });
      expect(v.kind).toBe("agree");
    }
  });
});

// Engine A in this process hands out views after each step and keeps only its events; a
// divergence's states (A before the step, its last 8 steps) are rebuilt by running A again
// (lockstep-case.ts `replay`). Engine A that is not `repeatable` (another process) is copied after
// every step instead.
// Both must give the same verdict, state for state.

/** `e` neither repeatable nor with views: the lockstep copies its state after every step (the way
 *  it treats an engine in another process). */
function copying(e: AsyncEngine): AsyncEngine {
  return {
    capabilities: e.capabilities,
    load: (s, p) => e.load(s, p),
    step: () => e.step(),
    steps: (n) => e.steps(n),
    run: (n) => e.run(n),
    state: () => e.state(),
    raise: (r) => e.raise(r),
    touched: () => e.touched(),
    close: () => e.close(),
  };
}

/** A verdict written out whole, pages as hex (vitest's deep equality over every byte of every
 *  page of 18 states is too slow here). */
function written(v: CaseVerdict): string {
  return JSON.stringify(v, (_, x: unknown) =>
    typeof x === "bigint" ? `${x}n` : x instanceof Map ? [...x.entries()] : x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x,
  );
}

/** Spec behind the Engine interface with some of its calls replaced: `overrides` gets the spec
 *  instance the other calls go to. */
function specWith(overrides: (spec: SpecEngine) => Partial<Engine>): Engine {
  const spec = new SpecEngine();
  return {
    load: (s, p) => spec.load(s, p),
    step: () => spec.step(),
    run: (n) => spec.run(n),
    state: () => spec.state(),
    peekState: (m) => spec.peekState(m),
    raise: (r) => spec.raise(r),
    touched: () => spec.touched(),
    ...overrides(spec),
  };
}

describe("a divergence's states rebuilt by a replay of engine A", () => {
  const broken = (bug: string): AsyncEngine => asAsync(new PlantedEngine(new ImplEngine(), plantedBug(bug)!), { ...IMPL, name: `impl with ${bug}` });
  /** impl whose batched `steps(n)` leaves R15 one higher (a batching bug): step by step it agrees,
   *  so an `--every` window agrees where its checkpoint did not. */
  const batchingBug = (): AsyncEngine => {
    const e = asAsync(new ImplEngine(), { ...IMPL, name: "impl with a batching bug" });
    let profile: ProfileName = "intel";
    return {
      capabilities: e.capabilities,
      load: (s, p) => e.load(s, (profile = p)),
      step: () => e.step(),
      steps: async (n) => {
        const events = await e.steps(n);
        const s = await e.state();
        await e.load({ ...s, gpr: s.gpr.map((r, i) => (i === 15 ? r + 1n : r)) }, profile);
        return events;
      },
      run: (n) => e.run(n),
      state: () => e.state(),
      peekState: (m) => e.peekState!(m),
      raise: (r) => e.raise(r),
      touched: () => e.touched(),
      close: () => e.close(),
    };
  };

  it("are those kept by copying A's state after every step (steps, windows, raises, 8 steps of history, the first step)", async () => {
    const seen = { raises: 0, fullHistory: 0, laterWindow: 0, firstStep: 0, windowAgrees: 0, raiseBeforeKept: 0, raiseBeforeFirst: 0 };
    const bugged = (bug: string) => () => broken(bug);
    const all = (): boolean => true;
    // Cases with a raise at the initial RIP (made pending before step 1): the first 12 of seed 7
    // hold one, which diverges at step 1 under ist-off-by-one and at step 7 under swapgs-noop.
    const raiseAtStart = (c: BuiltCase): boolean => c.raises.some((r) => r.rip === c.state.rip);
    const runs: [() => AsyncEngine, Family, number, (c: BuiltCase) => boolean][] = [
      [bugged("iretq-same-level-keeps-ss-rsp"), MODEL_FAMILY, 8, all],
      [bugged("swapgs-noop"), MODEL_FAMILY, 8, all],
      [bugged("pf-error-code-no-us"), familyByName("paging")!, 8, all],
      [batchingBug, MODEL_FAMILY, 1, all],
      [bugged("swapgs-noop"), MODEL_FAMILY, 12, raiseAtStart],
      [bugged("ist-off-by-one"), MODEL_FAMILY, 12, raiseAtStart],
    ];
    const pending = (s: ArchState): boolean => s.cpu.pendingIrq !== null || s.cpu.pendingNmi;
    for (const [engineB, family, numRuns, chosen] of runs) {
      for (const value of fc.sample(family.arbitrary, { seed: 7, numRuns })) {
        const c = family.build(value);
        if (!chosen(c)) continue;
        for (const every of [1, 4]) {
          const settings = { every, rule: "exact", timeoutMs: 60_000 } as const;
          const replayed = await lockstepCase(asAsync(new SpecEngine(), SPEC), engineB(), c, settings);
          const copied = await lockstepCase(copying(asAsync(new SpecEngine(), SPEC)), engineB(), c, settings);
          expect(written(replayed)).toBe(written(copied));
          if (replayed.kind !== "diverge") continue;
          const d = replayed.divergence;
          if (d.located === "run") {
            // The window, stepped one by one, agreed where its checkpoint did not: the report shows
            // the window's steps, up to the checkpoint.
            expect(d.history.length).toBe(Math.min(every, 8));
            expect(d.history.at(-1)!.step).toBe(d.step);
            seen.windowAgrees++;
            continue;
          }
          // The history ends with the diverging step, from the state the divergence starts from.
          expect(d.history.at(-1)!.step).toBe(d.step);
          expect(d.history.at(-1)!.before).toBe(d.before);
          expect(d.history.at(-1)!.after).toBe(d.stateA);
          if (c.raises.length > 0) seen.raises++;
          // A kept step with a raise made pending before it: its state before shows the raise.
          if (d.step > 1 && d.history.some((h) => pending(h.before))) seen.raiseBeforeKept++;
          if (d.step === 1 && pending(d.before)) seen.raiseBeforeFirst++;
          if (d.history.length === 8) seen.fullHistory++;
          if (d.located === "window" && d.step > every) seen.laterWindow++;
          if (d.step === 1) seen.firstStep++;
        }
      }
    }
    // The cases reached what the replay must rebuild: raises made before steps, a history of 8
    // steps, a window re-run from a later checkpoint; and a divergence at the first step (kept
    // without a replay).
    expect(seen.firstStep).toBeGreaterThan(0);
    expect(seen.raises).toBeGreaterThan(0);
    expect(seen.fullHistory).toBeGreaterThan(0);
    expect(seen.laterWindow).toBeGreaterThan(0);
    expect(seen.windowAgrees).toBeGreaterThan(0);
    expect(seen.raiseBeforeKept).toBeGreaterThan(0);
    expect(seen.raiseBeforeFirst).toBeGreaterThan(0);
  }, 120_000);

  it("an engine A that does not repeat its run is an error of A's, not a report", async () => {
    // Spec, but from its second load on (the replay's) with CSTAR one higher (no case writes it).
    let loads = 0;
    const drifting = specWith((spec) => ({ load: (s, p) => spec.load(++loads < 2 ? s : { ...s, cstar: s.cstar + 1n }, p) }));
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const settings = { every: 1, rule: "exact", timeoutMs: 60_000 } as const;
    const honest = await lockstepCase(asAsync(new SpecEngine(), SPEC), broken("swapgs-noop"), c, settings);
    expect(honest.kind).toBe("diverge");
    const v = await lockstepCase(asAsync(drifting, SPEC), broken("swapgs-noop"), c, settings);
    expect(v).toMatchObject({ kind: "error", side: "a", errorKind: "replay", steps: honest.steps });
    if (v.kind === "error") expect(v.reason).toMatch(/did not repeat its run .*msrs\.CSTAR/);
  });

  /** Spec whose replay (its run from its second load on) differs at step `at` only as `drift`
   *  says: its event, or its state after that step (as read until its next step). */
  function replayDrifting(at: number, drift: { event?: (e: EngineEvent) => EngineEvent; state?: (s: ArchState) => ArchState }): Engine {
    let loads = 0;
    let steps = 0;
    const seen = (s: ArchState): ArchState => (loads >= 2 && steps === at && drift.state !== undefined ? drift.state(s) : s);
    return specWith((spec) => ({
      load: (s, p) => {
        loads++;
        steps = 0;
        spec.load(s, p);
      },
      step: () => {
        const e = spec.step();
        return loads >= 2 && ++steps === at && drift.event !== undefined ? drift.event(e) : e;
      },
      state: () => seen(spec.state()),
      peekState: (m) => seen(spec.peekState(m)),
    }));
  }

  it("the replay checks every step's event and registers, not only the state it reaches", async () => {
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const settings = { every: 1, rule: "exact", timeoutMs: 60_000 } as const;
    const honest = await lockstepCase(asAsync(new SpecEngine(), SPEC), broken("swapgs-noop"), c, settings);
    expect(honest.kind === "diverge" && honest.divergence.step).toBeGreaterThan(2);
    // Only step 2's event differs (its RIP as reported), not any state.
    const byEvent = await lockstepCase(asAsync(replayDrifting(2, { event: (e) => ({ ...e, rip: e.rip + 1n }) }), SPEC), broken("swapgs-noop"), c, settings);
    expect(byEvent).toMatchObject({ kind: "error", side: "a", errorKind: "replay", steps: honest.steps });
    if (byEvent.kind === "error") expect(byEvent.reason).toMatch(/did not repeat its run .*: step 2's event was /);
    // Only the state after step 2 differs (RFLAGS.CF, until step 3), not the state reached.
    const byState = await lockstepCase(asAsync(replayDrifting(2, { state: (s) => ({ ...s, rflags: s.rflags ^ 1n }) }), SPEC), broken("swapgs-noop"), c, settings);
    expect(byState).toMatchObject({ kind: "error", side: "a", errorKind: "replay", steps: honest.steps });
    if (byState.kind === "error") expect(byState.reason).toMatch(/did not repeat its run .*: after step 2, rflags was /);
  });

  it("a replay has a time limit of its own: a divergence found near the case's limit is still reported, a replay that runs too long is stopped", async () => {
    // The clock jumps (no wait, no timing): past the case's limit at the diverging step of the
    // first run; an hour once the replay has loaded A.
    const now = Date.now.bind(Date);
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const settings = { every: 1, rule: "exact", timeoutMs: 60_000 } as const;
    const honest = await lockstepCase(asAsync(new SpecEngine(), SPEC), broken("swapgs-noop"), c, settings);
    expect(honest.kind === "diverge" && honest.divergence.step).toBeGreaterThan(1);
    let loads = 0;
    let steps = 0;
    const jumping = (jumpAtStep: boolean, jumpAtReplay: boolean) =>
      specWith((spec) => ({
        load: (s, p) => {
          if (++loads === 2 && jumpAtReplay) vi.spyOn(Date, "now").mockImplementation(() => now() + 3_600_000);
          spec.load(s, p);
        },
        step: () => {
          if (loads === 1 && ++steps === honest.steps && jumpAtStep) vi.spyOn(Date, "now").mockImplementation(() => now() + 61_000);
          return spec.step();
        },
      }));
    try {
      const late = await lockstepCase(asAsync(jumping(true, false), SPEC), broken("swapgs-noop"), c, settings);
      expect(loads).toBe(2);
      expect(Date.now()).toBeGreaterThan(now() + 60_000);
      expect(written(late)).toBe(written(honest));
    } finally {
      vi.restoreAllMocks();
    }
    loads = 0;
    try {
      const v = await lockstepCase(asAsync(jumping(false, true), SPEC), broken("swapgs-noop"), c, settings);
      expect(loads).toBe(2);
      expect(v).toMatchObject({ kind: "error", side: "a", errorKind: "replay", steps: honest.steps });
      if (v.kind === "error") expect(v.reason).toBe(`spec's replay for the report of a divergence at step ${honest.steps} took longer than 60 s (at step 1)`);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("a failure of the lockstep's own code while replaying is not called engine A's", async () => {
    // From the replay's load on, A's state() hands out registers the lockstep's reading of a step
    // (its mark) cannot read: a TypeError in our code, after A's call returned.
    let loads = 0;
    const odd = specWith((spec) => ({
      load: (s, p) => (++loads, spec.load(s, p)),
      state: () => (loads >= 2 ? { ...spec.state(), gpr: undefined as unknown as bigint[] } : spec.state()),
    }));
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const v = await lockstepCase(asAsync(odd, SPEC), broken("swapgs-noop"), c, { every: 1, rule: "exact", timeoutMs: 60_000 });
    expect(loads).toBe(2);
    expect(v).toMatchObject({ kind: "error", errorKind: "threw" });
    if (v.kind === "error") {
      expect(v.reason).toMatch(/^Cannot read properties of undefined/);
      expect(v.reason).not.toMatch(/replayed/);
    }
  });

  it("an engine A with views that does not say it repeats its runs is copied, never replayed", async () => {
    // impl behind the process-like interface with peekState (views of its own pages, which its
    // next step overwrites), but not `repeatable`: were it replayed, its second load would be
    // seen; were its views kept for the report, its states would be wrong.
    let loads = 0;
    const inner = asAsync(new ImplEngine(), IMPL);
    const viewing: AsyncEngine = { ...copying(inner), load: (s, p) => (++loads, inner.load(s, p)), peekState: (m) => inner.peekState!(m) };
    expect(viewing.repeatable).toBeUndefined();
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const settings = { every: 1, rule: "exact", timeoutMs: 60_000 } as const;
    const copied = await lockstepCase(copying(asAsync(new ImplEngine(), IMPL)), broken("swapgs-noop"), c, settings);
    expect(copied.kind === "diverge" && copied.divergence.step).toBeGreaterThan(1);
    const v = await lockstepCase(viewing, broken("swapgs-noop"), c, settings);
    expect(loads).toBe(1);
    expect(written(v)).toBe(written(copied));
  });

  it("an engine A that throws while replayed is an error of the replay's, naming the divergence", async () => {
    // Spec, but from its second load on (the replay's) its steps throw.
    let loads = 0;
    const failing = specWith((spec) => ({
      load: (s, p) => (++loads, spec.load(s, p)),
      step: () => {
        if (loads >= 2) throw new Error("the replay's step failed");
        return spec.step();
      },
    }));
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 7, numRuns: 40 }).find((v) => MODEL_FAMILY.build(v).raises.length === 0)!);
    const settings = { every: 1, rule: "exact", timeoutMs: 60_000 } as const;
    const honest = await lockstepCase(asAsync(new SpecEngine(), SPEC), broken("swapgs-noop"), c, settings);
    expect(honest.kind).toBe("diverge");
    const v = await lockstepCase(asAsync(failing, SPEC), broken("swapgs-noop"), c, settings);
    expect(loads).toBe(2);
    expect(v).toMatchObject({ kind: "error", side: "a", errorKind: "replay", steps: honest.steps });
    if (v.kind === "error") expect(v.reason).toBe(`spec threw while replayed for the report of a divergence at step ${honest.steps}: the replay's step failed`);
  });
});
