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
//
// Compared every step, the states are read as views (AsyncEngine.peekState, B's with only the
// memory compared), not copied: a copy of spec's state after every step made its next step copy
// the pages it writes again and start its code-page memo over, which cost more than the step. A
// divergence's report still shows engine A's full states before and after its last steps: they are
// rebuilt by running A again from where this comparison started, with the same raises before the
// same steps (an engine in this process repeats its run, AsyncEngine.repeatable; the replay checks
// that it did). An engine A that is not `repeatable` (another process, even one with peekState) is
// copied after every step as before.
import { ALL_MEMORY, RUN_ENDING_EVENTS, type AsyncEngine, type EngineEvent, type EngineStop, type PhysicalRange, type RaiseRequest, type StepView } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import { compareEvents, compareStates, unionRanges, type ComparisonRule, type FieldDifference } from "../../contract/compare.ts";
import { eventLine } from "../lockstep.ts";
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
  /** How the states were compared (the settings' rule, the fields either engine cannot observe):
   *  attribution compares further states the same way. */
  readonly compared: DivergenceComparison;
}

export interface DivergenceComparison {
  readonly rule: ComparisonRule;
  readonly unobservable: readonly string[];
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

/** What a step left to compare: both states as views to read at once (AsyncEngine.peekState), or
 *  copies where a view would not do (an A that is not replayed, a B without peekState), and the
 *  differences. */
interface AfterStep {
  /** A's state: `fullA`, else a view. */
  readonly viewA: ArchState;
  /** Copies made already: an A that is not replayed (its states are kept past its next step, even
   *  with peekState), a B without peekState. */
  readonly fullA: ArchState | undefined;
  readonly fullB: ArchState | undefined;
  readonly differences: FieldDifference[];
}

/** A step of engine A since the replay's start, as its replay must repeat it: its event, and a
 *  few registers of the state after it (cheap to read from a view, and what a run that went
 *  another way and came back would show). */
interface StepRecord {
  readonly step: number;
  readonly event: EngineEvent;
  readonly mark: StepMark;
}

interface StepMark {
  readonly rip: bigint;
  readonly rsp: bigint;
  readonly rflags: bigint;
  readonly cpl: number;
}

function markOf(s: ArchState): StepMark {
  return { rip: s.rip, rsp: s.gpr[4]!, rflags: s.rflags, cpl: s.cs.selector & 3 };
}

/** The first field where `b` does not show mark `a`, as "field was B, not A". */
function markDifference(a: StepMark, b: StepMark): string | undefined {
  for (const field of ["rip", "rsp", "rflags", "cpl"] as const) if (a[field] !== b[field]) return `${field} was ${b[field].toString(16)}, not ${a[field].toString(16)}`;
  return undefined;
}

class Pair {
  readonly memoryFromTouched: boolean;
  /** Engine A's runs can be repeated (AsyncEngine.repeatable, with views): steps keep only their events,
   *  and a report's states are rebuilt by a replay (`replay`). Else every step keeps A's copies. */
  readonly replays: boolean;
  /** Without replays: engine A's last steps, with its states (at most HISTORY). */
  readonly history: StepView[] = [];
  /** With replays: every step's event and mark since the replay's start (at most the case's
   *  maxSteps), where the replay starts, and the raises made before each step since then. */
  private records: StepRecord[] = [];
  private replayFrom: { readonly state: ArchState; readonly first: number } | null = null;
  private readonly raisedBefore = new Map<number, RaiseRequest[]>();
  /** The last step remembered (an error verdict's step count). */
  lastStep = 0;
  private profile: ProfileName;
  private fired = new Set<number>();

  constructor(
    readonly a: AsyncEngine,
    readonly b: AsyncEngine,
    readonly c: BuiltCase,
    readonly settings: LockstepSettings,
    readonly deadline: number,
  ) {
    this.memoryFromTouched = a.capabilities.touched && b.capabilities.touched;
    // A replay reads A's views (peekState) between its steps: an engine that repeats its runs
    // without views is copied.
    this.replays = a.repeatable === true && a.peekState !== undefined;
    this.profile = c.profile;
  }

  get unobservable(): readonly string[] {
    return [...this.a.capabilities.unobservable, ...this.b.capabilities.unobservable];
  }

  get compared(): DivergenceComparison {
    return { rule: this.settings.rule, unobservable: this.unobservable };
  }

  async load(state: ArchState, profile: ProfileName): Promise<void> {
    this.profile = profile;
    await on("a", this.a.load(state, profile));
    await on("b", this.b.load(state, profile));
  }

  private async ranges(): Promise<readonly PhysicalRange[] | "all"> {
    return this.memoryFromTouched ? unionRanges(await on("a", this.a.touched()), await on("b", this.b.touched())) : "all";
  }

  /** The states' differences, over `memory` (default: where either engine wrote). */
  async compare(stateA: ArchState, stateB: ArchState, memory?: readonly PhysicalRange[] | "all"): Promise<FieldDifference[]> {
    memory ??= await this.ranges();
    return [...compareStates(stateA, stateB, { rule: this.settings.rule, memory, unobservable: this.unobservable }).differences];
  }

  /** Both engines after a step: the events and the states compared (memory where either wrote). */
  async afterStep(eventA: EngineEvent, eventB: EngineEvent): Promise<AfterStep> {
    // An engine without a view is copied first, as before views (the same calls in the same order);
    // so is an A that is not replayed, whose states are kept past its next step.
    const fullA = !this.replays ? await on("a", this.a.state()) : undefined;
    const fullB = this.b.peekState === undefined ? await on("b", this.b.state()) : undefined;
    const memory = await this.ranges();
    const reach = memory === "all" ? ALL_MEMORY : memory;
    const viewA = fullA ?? (await on("a", this.a.peekState!(reach)));
    // B's view is read here and dropped: a divergence copies B's state (`diverged`).
    const viewB = fullB ?? (await on("b", this.b.peekState!(reach)));
    const differences = [...compareEvents(eventA, eventB), ...(await this.compare(viewA, viewB, memory))];
    return { viewA, fullA, fullB, differences };
  }

  /** Raises due at `state`'s boundary (before step `step`), made pending on both; the state after
   *  them (or `state`): a view when A replays. */
  async raisesAt(state: ArchState, step: number): Promise<ArchState> {
    let raised = false;
    const rip = state.rip;
    for (const [i, r] of this.c.raises.entries()) {
      if (this.fired.has(i) || r.rip !== rip) continue;
      this.fired.add(i);
      await this.raise(r.event);
      if (this.replays) {
        const before = this.raisedBefore.get(step);
        if (before === undefined) this.raisedBefore.set(step, [r.event]);
        else before.push(r.event);
      }
      raised = true;
    }
    if (!raised) return state;
    return this.replays ? on("a", this.a.peekState!(ALL_MEMORY)) : on("a", this.a.state());
  }

  private async raise(event: RaiseRequest): Promise<void> {
    await on("a", this.a.raise(event));
    await on("b", this.b.raise(event));
  }

  /** Step-by-step comparison starts at `state` (engine A loaded with it) with step `first`: where
   *  a replay starts. */
  startSteps(state: ArchState, first: number): void {
    this.replayFrom = { state, first };
    this.records = [];
    this.raisedBefore.clear();
  }

  remember(view: StepView): void {
    this.lastStep = view.step;
    this.history.push(view);
    if (this.history.length > HISTORY) this.history.shift();
  }

  /** Engine A's step `step`, to `after` (a view with replays, read now): with replays only its
   *  event and mark are kept; without, the step whole, from `copyBefore` (A's state before the
   *  step, a copy; with replays the boundary's view, stale once A stepped, is not passed). */
  record(step: number, event: EngineEvent, after: ArchState, copyBefore: ArchState | undefined): void {
    if (!this.replays) {
      this.remember({ step, before: copyBefore!, event, after });
      return;
    }
    this.lastStep = step;
    this.records.push({ step, event, mark: markOf(after) });
  }

  /** The divergence at step `step` (both engines just after it, the step recorded): both states
   *  copied, and engine A's state before it and its last steps, kept or rebuilt by a replay. */
  async diverged(step: number, eventA: EngineEvent, eventB: EngineEvent, after: AfterStep, located: CaseDivergence["located"]): Promise<CaseVerdict> {
    const stateA = after.fullA ?? (await on("a", this.a.state()));
    const stateB = after.fullB ?? (await on("b", this.b.state()));
    const differences = after.differences;
    const history = this.replays ? await this.replay(step, stateA, eventA) : [...this.history];
    return { kind: "diverge", steps: step, divergence: { step, before: history.at(-1)!.before, eventA, eventB, stateA, stateB, differences, history, located, compared: this.compared } };
  }

  /** Engine A's steps kept since the step-by-step comparison started (at most HISTORY), with its
   *  states: kept, or rebuilt by a replay up to the last step recorded (A's state now is the one
   *  after it). For a report made after that comparison agreed (an `--every` window). */
  async keptHistory(): Promise<StepView[]> {
    if (!this.replays) return [...this.history];
    if (this.records.length === 0) return [];
    const last = this.records.at(-1)!;
    return this.replay(last.step, await on("a", this.a.state()), last.event);
  }

  /** Engine A run again from the replay's start up to step `step`, with the same raises before
   *  the same steps: its last steps (at most HISTORY) with its states before and after each. Every
   *  step's event, the RIP, RSP, RFLAGS and CPL after every step, and the whole state reached must
   *  be those of the first run (`stateA`), else the replay is an error of engine A's. */
  private async replay(step: number, stateA: ArchState, eventA: EngineEvent): Promise<StepView[]> {
    try {
      return await this.replayed(step, stateA, eventA);
    } catch (e) {
      // A that fails while replayed (a call to engine A: SideError "a") is an error of the
      // replay's, not of the case's first run: the reason keeps the divergence it was replayed
      // for. Anything else (a bug of ours) goes on as it is.
      if (!(e instanceof SideError) || e.side !== "a" || errorKind(e.cause) === "replay") throw e;
      const message = e.cause instanceof Error ? e.cause.message : String(e.cause);
      throw this.replayError(`${this.a.capabilities.name} threw while replayed for the report of a divergence at step ${step}: ${message}`);
    }
  }

  private async replayed(step: number, stateA: ArchState, eventA: EngineEvent): Promise<StepView[]> {
    const from = this.replayFrom!;
    // The first step, without raises before it: nothing to rebuild (a shrunk case often parts there).
    if (step === from.first && !this.raisedBefore.has(step)) return [{ step, before: from.state, event: eventA, after: stateA }];
    // A time limit of its own (the case's, again, from here): a divergence found near the case's
    // limit is still reported. The replay is bounded by the steps run first (at most maxSteps) too.
    const deadline = Date.now() + this.settings.timeoutMs;
    await on("a", this.a.load(from.state, this.profile));
    const views: StepView[] = [];
    const kept = Math.max(from.first, step - HISTORY + 1);
    for (let k = from.first; k <= step; k++) {
      if (Date.now() > deadline) throw this.replayError(`${this.a.capabilities.name}'s replay for the report of a divergence at step ${step} took longer than ${this.settings.timeoutMs / 1000} s (at step ${k})`);
      const raises = this.raisedBefore.get(k) ?? [];
      for (const r of raises) await on("a", this.a.raise(r));
      const recorded = this.records[k - from.first]!;
      // The first step starts from the state loaded (the one the comparison started from).
      const before = k < kept ? undefined : k === from.first && raises.length === 0 ? from.state : await on("a", this.a.state());
      const event = await on("a", this.a.step());
      if (compareEvents(recorded.event, event).length > 0) throw this.notRepeated(`step ${k}'s event was ${eventLine(event)}, not ${eventLine(recorded.event)}`);
      // A step not kept is checked on a view with no memory (registers only: cheap).
      const after = k < kept ? await on("a", this.a.peekState!([])) : k === step ? stateA : await on("a", this.a.state());
      const moved = markDifference(recorded.mark, markOf(after));
      if (moved !== undefined) throw this.notRepeated(`after step ${k}, ${moved}`);
      if (k >= kept) views.push({ step: k, before: before!, event: recorded.event, after });
    }
    const again = await on("a", this.a.state());
    const changed = compareStates(stateA, again, { rule: "exact", memory: "all" }).differences;
    if (changed.length > 0) throw this.notRepeated(`after step ${step}, ${changed[0]!.field} was ${String(changed[0]!.b)}, not ${String(changed[0]!.a)}`);
    return views;
  }

  private notRepeated(what: string): SideError {
    return this.replayError(`${this.a.capabilities.name} did not repeat its run from the same state (replayed for the report): ${what}`);
  }

  private replayError(message: string): SideError {
    return new SideError("a", Object.assign(new Error(message), { kind: "replay" }));
  }

  checkDeadline(): void {
    if (Date.now() > this.deadline) throw new SideError("b", Object.assign(new Error(`the case took longer than ${this.settings.timeoutMs / 1000} s`), { kind: "timeout" }));
  }
}

/** Both engines step from `start` (already loaded) for up to `limit` steps, compared each step.
 *  `first` numbers the first step. */
async function stepByStep(p: Pair, start: ArchState, first: number, limit: number, located: CaseDivergence["located"]): Promise<CaseVerdict> {
  /** Engine A's state at this step boundary, for the checks before the next step: a view when A
   *  replays (stale once A steps: never kept), else a copy (kept as the step's state before). */
  let boundary = start;
  let steps = first - 1;
  const last = first - 1 + limit;
  p.startSteps(start, first);
  // Without raises, only steps and reads of engine B come until the next load: it may run them
  // ahead (a process engine: one exchange for several steps; AsyncEngine.expectSteps).
  if (p.c.raises.length === 0) p.b.expectSteps?.(limit + 1);
  for (;;) {
    p.checkDeadline();
    boundary = await p.raisesAt(boundary, steps + 1);
    const copyBefore = p.replays ? undefined : boundary;
    // The runner's order (engines/runner.ts): shutdown and an idle HLT end a run before the limit.
    let idle: EngineStop["reason"] | null = boundary.cpu.shutdown ? "shutdown" : null;
    if (idle === null && boundary.cpu.halted) {
      const r = await on("a", p.a.run(0));
      if (r.reason !== "limit") idle = r.reason;
    }
    if (idle !== null || steps >= last) {
      // A cannot step: B must not either. One more step of each shows it (an idle step changes
      // nothing); a B that still steps is a divergence.
      if (idle !== null) {
        const eventA = await on("a", p.a.step());
        const eventB = await on("b", p.b.step());
        const after = await p.afterStep(eventA, eventB);
        if (after.differences.length > 0) {
          p.record(steps + 1, eventA, after.viewA, copyBefore);
          return p.diverged(steps + 1, eventA, eventB, after, located);
        }
      }
      return { kind: "agree", steps, stop: idle ?? "limit" };
    }
    const eventA = await on("a", p.a.step());
    // Engine A is the reference: where it does not model the instruction, the case ends there
    // (what engine B does with it is outside what the reference can judge).
    if (eventA.kind === "unsupported") return { kind: "agree", steps, stop: "unsupported" };
    const eventB = await on("b", p.b.step());
    const after = await p.afterStep(eventA, eventB);
    steps++;
    p.record(steps, eventA, after.viewA, copyBefore);
    if (after.differences.length > 0) return p.diverged(steps, eventA, eventB, after, located);
    if (eventA.kind === "memory-limit") return { kind: "agree", steps: steps - 1, stop: eventA.kind };
    boundary = after.viewA;
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
      // Step by step they agree, in batches they do not (e.g. B's steps(n) is wrong): the report
      // shows the window's steps (engine A's, as it stepped them one by one).
      const history = await p.keptHistory();
      return {
        kind: "diverge",
        steps: steps + n,
        divergence: { step: steps + n, before: checkpoint, eventA: eventsA.at(-1), eventB: eventsB.at(-1), stateA, stateB, differences, history, located: "run", compared: p.compared },
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
      divergence: { step: high, before, eventA, eventB: undefined, stateA: atA, stateB: atB, differences: found.length > 0 ? found : differences, history: [...p.history], located: "bisection", compared: p.compared },
    };
  }
  return { kind: "diverge", steps: stopA.steps, divergence: { step: stopA.steps, before: start, eventA: undefined, eventB: undefined, stateA, stateB, differences, history: [], located: "run", compared: p.compared } };
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
    return { kind: "error", steps: p.lastStep, side, reason: message, errorKind: errorKind(cause) };
  }
}
