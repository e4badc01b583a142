// One case, two engines, in lockstep (any engines: in-process ones through asAsync, an emulator
// over the process protocol, QEMU, Bochs). Engine A is the reference. Three ways to compare,
// chosen by what engine B can do:
//   - every step (`every` = 1, the default): both engines step; the events and the full states
//     (registers, segment caches, CRs, MSRs, the run-time cpu block, every byte either engine
//     wrote) are compared after each step with the one comparison (contract/compare.ts);
//   - every N steps: `steps(N)` on both, events compared, states compared at each checkpoint; a
//     difference re-runs that window step by step from the last agreeing checkpoint, to find the
//     step where they part ways;
//   - whole runs (an engine that cannot single-step): both run to their stop; a difference is
//     located by bisection over the step limit (re-running both for k steps).
// Raises scheduled by the case (model-based sequences) are made pending on both engines before
// the first step that starts at their address.
import { RUN_ENDING_EVENTS, type AsyncEngine, type EngineEvent, type EngineStop, type RaiseRequest, type StepView } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import { compareEvents, compareStates, unionRanges, type ComparisonRule, type FieldDifference } from "../../contract/compare.ts";
import type { BuiltCase } from "./families.ts";

export interface LockstepSettings {
  /** Compare states every this many steps (1: every step). */
  readonly every: number;
  readonly rule: ComparisonRule;
  /** Wall-clock limit of the case (both engines, every step). */
  readonly timeoutMs: number;
}

export interface CaseDivergence {
  /** 1-based step at which the engines first disagree (0: before any step, e.g. at load). */
  readonly step: number;
  /** Engine A's state before that step (where a replay of that step starts). */
  readonly before: ArchState;
  readonly eventA: EngineEvent | undefined;
  readonly eventB: EngineEvent | undefined;
  readonly stateA: ArchState;
  readonly stateB: ArchState;
  /** Event fields first, then state fields; `a` is engine A's value. */
  readonly differences: readonly FieldDifference[];
  /** Engine A's last steps up to and including the diverging one (at most 8). */
  readonly history: readonly StepView[];
  /** How the difference was found: compared every step, in a re-run window, or by bisection. */
  readonly located: "step" | "window" | "bisection" | "run";
}

export type CaseVerdict =
  | { readonly kind: "agree"; readonly steps: number; readonly stop: EngineStop["reason"] }
  | { readonly kind: "diverge"; readonly steps: number; readonly divergence: CaseDivergence }
  /** An engine threw, timed out, crashed or spoke garbage: `side` says which. */
  | { readonly kind: "error"; readonly steps: number; readonly side: "a" | "b"; readonly reason: string; readonly errorKind: string }
  /** The case needs something engine B cannot do (raise an IRQ/NMI). */
  | { readonly kind: "skipped"; readonly steps: 0; readonly reason: string };

/** Which engine a failure came from, so that the campaign knows which one to restart. */
export class SideError extends Error {
  constructor(readonly side: "a" | "b", override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

const HISTORY = 8;

async function on<T>(side: "a" | "b", p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new SideError(side, e);
  }
}

function errorKind(e: unknown): string {
  const kind = typeof e === "object" && e !== null ? (e as { kind?: unknown }).kind : undefined;
  return typeof kind === "string" ? kind : "threw";
}

class Pair {
  readonly memoryFromTouched: boolean;
  readonly history: StepView[] = [];
  private fired = new Set<number>();

  constructor(
    readonly a: AsyncEngine,
    readonly b: AsyncEngine,
    readonly c: BuiltCase,
    readonly settings: LockstepSettings,
    readonly deadline: number,
  ) {
    this.memoryFromTouched = a.capabilities.touched && b.capabilities.touched;
  }

  get unobservable(): readonly string[] {
    return [...this.a.capabilities.unobservable, ...this.b.capabilities.unobservable];
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    await on("a", this.a.load(state, profile));
    await on("b", this.b.load(state, profile));
  }

  async compare(stateA: ArchState, stateB: ArchState): Promise<FieldDifference[]> {
    const memory = this.memoryFromTouched ? unionRanges(await on("a", this.a.touched()), await on("b", this.b.touched())) : "all";
    return [...compareStates(stateA, stateB, { rule: this.settings.rule, memory, unobservable: this.unobservable }).differences];
  }

  /** Raises due at `state`'s boundary, made pending on both; the state after them (or `state`). */
  async raisesAt(state: ArchState): Promise<ArchState> {
    let raised = false;
    for (const [i, r] of this.c.raises.entries()) {
      if (this.fired.has(i) || r.rip !== state.rip) continue;
      this.fired.add(i);
      await this.raise(r.event);
      raised = true;
    }
    return raised ? on("a", this.a.state()) : state;
  }

  private async raise(event: RaiseRequest): Promise<void> {
    await on("a", this.a.raise(event));
    await on("b", this.b.raise(event));
  }

  remember(view: StepView): void {
    this.history.push(view);
    if (this.history.length > HISTORY) this.history.shift();
  }

  checkDeadline(): void {
    if (Date.now() > this.deadline) throw new SideError("b", Object.assign(new Error(`the case took longer than ${this.settings.timeoutMs / 1000} s`), { kind: "timeout" }));
  }
}

/** Both engines step from `start` (already loaded) for up to `limit` steps, compared each step.
 *  `first` numbers the first step. */
async function stepByStep(p: Pair, start: ArchState, first: number, limit: number, located: CaseDivergence["located"]): Promise<CaseVerdict> {
  let before = start;
  let steps = first - 1;
  const last = first - 1 + limit;
  // Without raises, only steps and reads of engine B come until the next load: it may run them
  // ahead (a process engine: one exchange for several steps; AsyncEngine.expectSteps).
  if (p.c.raises.length === 0) p.b.expectSteps?.(limit + 1);
  for (;;) {
    p.checkDeadline();
    before = await p.raisesAt(before);
    // The runner's order (engines/runner.ts): shutdown and an idle HLT end a run before the limit.
    let idle: EngineStop["reason"] | null = before.cpu.shutdown ? "shutdown" : null;
    if (idle === null && before.cpu.halted) {
      const r = await on("a", p.a.run(0));
      if (r.reason !== "limit") idle = r.reason;
    }
    if (idle !== null || steps >= last) {
      // A cannot step: B must not either. One more step of each shows it (an idle step changes
      // nothing); a B that still steps is a divergence.
      if (idle !== null) {
        const eventA = await on("a", p.a.step());
        const eventB = await on("b", p.b.step());
        const stateA = await on("a", p.a.state());
        const stateB = await on("b", p.b.state());
        const differences = [...compareEvents(eventA, eventB), ...(await p.compare(stateA, stateB))];
        if (differences.length > 0) {
          p.remember({ step: steps + 1, before, event: eventA, after: stateA });
          return { kind: "diverge", steps: steps + 1, divergence: { step: steps + 1, before, eventA, eventB, stateA, stateB, differences, history: [...p.history], located } };
        }
      }
      return { kind: "agree", steps, stop: idle ?? "limit" };
    }
    const eventA = await on("a", p.a.step());
    // Engine A is the reference: where it does not model the instruction, the case ends there
    // (what engine B does with it is outside what the reference can judge).
    if (eventA.kind === "unsupported") return { kind: "agree", steps, stop: "unsupported" };
    const eventB = await on("b", p.b.step());
    const stateA = await on("a", p.a.state());
    const stateB = await on("b", p.b.state());
    steps++;
    p.remember({ step: steps, before, event: eventA, after: stateA });
    const differences = [...compareEvents(eventA, eventB), ...(await p.compare(stateA, stateB))];
    if (differences.length > 0)
      return { kind: "diverge", steps, divergence: { step: steps, before, eventA, eventB, stateA, stateB, differences, history: [...p.history], located } };
    if (eventA.kind === "memory-limit") return { kind: "agree", steps: steps - 1, stop: eventA.kind };
    before = stateA;
  }
}

/** Compared every `every` steps; a difference re-runs the window step by step. */
async function checkpoints(p: Pair, start: ArchState, profile: ProfileName): Promise<CaseVerdict> {
  let checkpoint = start;
  let steps = 0;
  for (;;) {
    p.checkDeadline();
    const n = Math.min(p.settings.every, p.c.maxSteps - steps);
    if (n <= 0) return { kind: "agree", steps, stop: "limit" };
    const eventsA = await on("a", p.a.steps(n));
    if (eventsA.some((e) => e.kind === "unsupported")) {
      // The reference stops inside this window: step through it (stepByStep ends at that step).
      await p.load(checkpoint, profile);
      return stepByStep(p, checkpoint, steps + 1, n, "window");
    }
    const eventsB = await on("b", p.b.steps(n));
    const stateA = await on("a", p.a.state());
    const stateB = await on("b", p.b.state());
    let differences: FieldDifference[] = eventsA.length === eventsB.length ? [] : [{ field: "event.count", a: eventsA.length, b: eventsB.length }];
    for (let i = 0; i < Math.min(eventsA.length, eventsB.length) && differences.length === 0; i++) differences = compareEvents(eventsA[i]!, eventsB[i]!);
    if (differences.length === 0) differences = await p.compare(stateA, stateB);
    if (differences.length > 0) {
      // Back to the last checkpoint both agreed on, then one step at a time.
      await p.load(checkpoint, profile);
      const window = await stepByStep(p, checkpoint, steps + 1, n, "window");
      if (window.kind !== "agree") return window;
      return {
        kind: "diverge",
        steps: steps + n,
        divergence: { step: steps + n, before: checkpoint, eventA: eventsA.at(-1), eventB: eventsB.at(-1), stateA, stateB, differences, history: [...p.history], located: "run" },
      };
    }
    const ended = eventsA.some((e) => RUN_ENDING_EVENTS.has(e.kind)) || eventsA.length < n;
    steps += eventsA.filter((e) => e.kind !== "unsupported" && e.kind !== "memory-limit").length;
    if (ended) return { kind: "agree", steps, stop: eventsA.at(-1)?.kind === "unsupported" ? "unsupported" : stateA.cpu.shutdown ? "shutdown" : "hlt" };
    checkpoint = stateA;
  }
}

/** Whole runs compared; a difference is located by bisection over the step limit. */
async function wholeRuns(p: Pair, start: ArchState, profile: ProfileName): Promise<CaseVerdict> {
  let stopA = await on("a", p.a.run(p.c.maxSteps));
  if (stopA.reason === "unsupported") {
    // The reference stops at an instruction it does not model: compare the runs up to it.
    await p.load(start, profile);
    stopA = await on("a", p.a.run(stopA.steps));
    if (stopA.reason === "limit") stopA = { reason: "unsupported", steps: stopA.steps };
  }
  const stopB = await on("b", p.b.run(stopA.reason === "unsupported" ? stopA.steps : p.c.maxSteps));
  const stateA = await on("a", p.a.state());
  const stateB = await on("b", p.b.state());
  // Step counts are not compared: an engine that cannot single-step may count steps its own way.
  const sameStop = stopA.reason === stopB.reason || (stopA.reason === "unsupported" && stopB.reason === "limit");
  const differences: FieldDifference[] = sameStop ? [] : [{ field: "run.stop", a: stopA.reason, b: stopB.reason }];
  differences.push(...(await p.compare(stateA, stateB)));
  if (differences.length === 0) return { kind: "agree", steps: stopA.steps, stop: stopA.reason };
  // The first k at which k-step runs differ (runs of the same length agree below it).
  const differAfter = async (k: number): Promise<boolean> => {
    await p.load(start, profile);
    await on("a", p.a.run(k));
    await on("b", p.b.run(k));
    return (await p.compare(await on("a", p.a.state()), await on("b", p.b.state()))).length > 0;
  };
  let low = 0;
  let high = Math.max(1, stopA.steps);
  if (await differAfter(high)) {
    while (high - low > 1) {
      p.checkDeadline();
      const mid = (low + high) >> 1;
      if (await differAfter(mid)) high = mid;
      else low = mid;
    }
    await p.load(start, profile);
    await on("a", p.a.run(low));
    await on("b", p.b.run(low));
    const before = await on("a", p.a.state());
    const eventA = p.a.capabilities.singleStep ? await on("a", p.a.step()) : undefined;
    await on("b", p.b.run(1));
    const atA = await on("a", p.a.state());
    const atB = await on("b", p.b.state());
    if (eventA !== undefined) p.remember({ step: high, before, event: eventA, after: atA });
    const found = await p.compare(atA, atB);
    return {
      kind: "diverge",
      steps: high,
      divergence: { step: high, before, eventA, eventB: undefined, stateA: atA, stateB: atB, differences: found.length > 0 ? found : differences, history: [...p.history], located: "bisection" },
    };
  }
  return { kind: "diverge", steps: stopA.steps, divergence: { step: stopA.steps, before: start, eventA: undefined, eventB: undefined, stateA, stateB, differences, history: [], located: "run" } };
}

/** Runs `c` on both engines in lockstep. Engine failures come back as an `error` verdict (never
 *  thrown): the campaign reports them for the case and restarts the engine. */
export async function lockstepCase(a: AsyncEngine, b: AsyncEngine, c: BuiltCase, settings: LockstepSettings): Promise<CaseVerdict> {
  const canRaise = a.capabilities.raise && b.capabilities.raise && a.capabilities.singleStep && b.capabilities.singleStep;
  if (c.raises.length > 0 && !canRaise)
    return { kind: "skipped", steps: 0, reason: `the case raises IRQs/NMIs between steps, which ${a.capabilities.raise && a.capabilities.singleStep ? b.capabilities.name : a.capabilities.name} cannot do` };
  const p = new Pair(a, b, c, settings, Date.now() + settings.timeoutMs);
  try {
    await p.load(c.state, c.profile);
    if (!b.capabilities.singleStep || !a.capabilities.singleStep) return await wholeRuns(p, c.state, c.profile);
    if (settings.every > 1 && c.raises.length === 0) return await checkpoints(p, c.state, c.profile);
    return await stepByStep(p, c.state, 1, c.maxSteps, "step");
  } catch (e) {
    const side = e instanceof SideError ? e.side : "b";
    const cause = e instanceof SideError ? e.cause : e;
    const message = (cause instanceof Error ? cause.message : String(cause)).replace(/\s*\n\s*/g, " ");
    return { kind: "error", steps: p.history.at(-1)?.step ?? 0, side, reason: message, errorKind: errorKind(cause) };
  }
}
