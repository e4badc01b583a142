// `ringspec kernel check`: run a kernel with the context-switch checker (spec/context) watching
// every step, and report each invariant with its first violations, the instruction, the task and
// the state that shows it.
import type { EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { hex } from "../../contract/hex.ts";
import {
  INVARIANTS, initialContextModel, needsState, observe,
  type ContextConfig, type ContextModel, type Invariant, type Violation,
} from "../../spec/context/index.ts";
import type { KernelTarget } from "../target.ts";
import { runKernel, type KernelRunResult, type StepObserver } from "../run.ts";
import type { KernelEngineName } from "../engines.ts";
import { instructionAt } from "./disassemble.ts";

/** Violations kept per invariant (all are counted). */
const KEPT = 5;

export interface RecordedViolation extends Violation {
  /** The instruction at the violating step, disassembled. */
  readonly instruction: string;
}

export interface InvariantResult {
  readonly invariant: Invariant;
  readonly title: string;
  readonly rules: readonly string[];
  /** Boundaries at which it was checked; 0 means the run never exercised it. */
  readonly checks: number;
  readonly count: number;
  readonly violations: readonly RecordedViolation[];
  readonly passed: boolean;
}

export interface CheckReport {
  readonly image: string;
  readonly engine: KernelEngineName;
  readonly run: KernelRunResult;
  readonly consoleText: string;
  readonly invariants: readonly InvariantResult[];
  /** The command that reproduces this check. */
  readonly command: string;
  /** With `checkOther`: the other engine's own run in the lockstep, checked by its own checker. */
  readonly other?: CheckReport;
}

export interface CheckOptions {
  readonly engine: KernelEngineName;
  readonly maxSteps: number;
  readonly timeoutMs: number;
  readonly consoleLimit: number;
  readonly command: string;
  readonly onConsole?: (bytes: Uint8Array) => void;
  /** Runs the other engine in lockstep, comparing whole states every this many steps (and at
   *  every delivery, I/O and privilege change): the checked run is then also a lockstep run. */
  readonly lockstepEvery?: number;
  /** With `lockstepEvery`: a second checker watches the other engine's own events and states, and
   *  the report's `other` is that engine's check (one lockstep run checks both engines). */
  readonly checkOther?: { readonly command: string };
}

/** Watches a run with the context checker. */
export class ContextObserver implements StepObserver {
  private model: ContextModel;
  private readonly kept = new Map<Invariant, RecordedViolation[]>();
  private readonly counts = new Map<Invariant, number>();

  constructor(config: ContextConfig, initial: ArchState) {
    this.model = initialContextModel(config, initial);
  }

  wantsState(event: EngineEvent): boolean {
    return needsState(this.model, event);
  }

  observe(step: number, event: EngineEvent, after: ArchState | undefined): void {
    const r = observe(this.model, { step, event, after });
    this.model = r.model;
    for (const v of r.violations) {
      this.counts.set(v.invariant, (this.counts.get(v.invariant) ?? 0) + 1);
      const list = this.kept.get(v.invariant) ?? [];
      if (list.length < KEPT) list.push({ ...v, instruction: after === undefined ? "" : instructionAt(after, v.rip) });
      this.kept.set(v.invariant, list);
    }
  }

  results(): InvariantResult[] {
    return (Object.keys(INVARIANTS) as Invariant[]).map((invariant) => {
      const count = this.counts.get(invariant) ?? 0;
      const checks = this.model.checks[invariant];
      return {
        invariant, title: INVARIANTS[invariant].title, rules: INVARIANTS[invariant].rules,
        checks, count, violations: this.kept.get(invariant) ?? [], passed: count === 0 && checks > 0,
      };
    });
  }
}

export function checkKernel(target: KernelTarget, options: CheckOptions): CheckReport {
  const observer = new ContextObserver(target.context, target.state);
  const lockstep = options.lockstepEvery !== undefined;
  const otherObserver = lockstep && options.checkOther !== undefined ? new ContextObserver(target.context, target.state) : undefined;
  const run = runKernel(target.state, {
    engine: options.engine, profile: target.profile, maxSteps: options.maxSteps, timeoutMs: options.timeoutMs,
    consoleLimit: options.consoleLimit, observer, ...(options.onConsole !== undefined ? { onConsole: options.onConsole } : {}),
    ...(lockstep ? { lockstep: true, lockstepEvery: options.lockstepEvery } : {}),
    ...(otherObserver !== undefined ? { otherObserver } : {}),
  });
  const otherRun = run.other;
  return {
    image: target.name, engine: options.engine, run, consoleText: new TextDecoder().decode(run.console),
    invariants: observer.results(), command: options.command,
    ...(otherObserver !== undefined && otherRun !== undefined && options.checkOther !== undefined ? { other: {
      image: target.name, engine: options.engine === "spec" ? "impl" : "spec", run: otherRun, consoleText: new TextDecoder().decode(otherRun.console),
      invariants: otherObserver.results(), command: options.checkOther.command,
    } } : {}),
  };
}

/** A run's elapsed time in seconds as the reports give it (JSON `seconds`, Gradescope's
 *  execution_time): to the microsecond, so that a run that ends at once (well under a millisecond
 *  on a fast machine) is not 0. */
export function reportSeconds(elapsedMs: number): number {
  return Math.round(elapsedMs * 1000) / 1e6;
}

/** One line on how the run ended. */
export function runSummary(run: KernelRunResult): string {
  const seconds = run.elapsedMs / 1000;
  const mips = seconds > 0 ? run.instructions / seconds / 1e6 : 0;
  const how = run.stop === "exit" ? `exit ${run.exitValue}` : run.stop;
  return `${how} after ${run.steps} steps (${run.instructions} instructions) in ${seconds.toFixed(2)} s, ${mips.toFixed(2)} MIPS${run.detail !== undefined ? `: ${run.detail}` : ""}`;
}

/** The text report. */
export function textReport(report: CheckReport): string {
  const lines = [`ringspec kernel check ${report.image} (engine ${report.engine})`, `run: ${runSummary(report.run)}`];
  for (const r of report.invariants) {
    const head = `(${r.invariant}) ${r.title}`;
    if (r.passed) lines.push(`PASS ${head} (checked ${r.checks} times)`);
    else if (r.count === 0) lines.push(`FAIL ${head}: not exercised (the run never reached such a boundary)`);
    else {
      lines.push(`FAIL ${head}: ${r.count} violation${r.count === 1 ? "" : "s"}; the first:`);
      lines.push(...violationLines(r.violations[0]!).map((l) => `     ${l}`));
    }
  }
  const failed = report.invariants.filter((r) => !r.passed).length;
  lines.push(failed === 0 && report.run.stop === "exit" ? "all invariants hold" : `${failed} of ${report.invariants.length} invariants failed${report.run.stop === "exit" ? "" : `; the run did not finish (${report.run.stop})`}`);
  lines.push(`reproduce: ${report.command}`);
  return lines.join("\n") + "\n";
}

export function violationLines(v: RecordedViolation): string[] {
  return [
    `${v.rule} at step ${v.step}: ${v.message}`,
    `at ${hex(v.rip)}: ${v.instruction}`,
    ...(Object.keys(v.fields).length > 0 ? [Object.entries(v.fields).map(([k, x]) => `${k} = ${x}`).join(", ")] : []),
  ];
}

/** The report as JSON (bigints as hex strings). */
export function jsonReport(report: CheckReport): string {
  const { run } = report;
  return JSON.stringify({
    image: report.image,
    engine: report.engine,
    run: { stop: run.stop, exit_value: run.exitValue ?? null, steps: run.steps, instructions: run.instructions, seconds: reportSeconds(run.elapsedMs), detail: run.detail ?? null },
    console: report.consoleText,
    invariants: report.invariants.map((r) => ({
      invariant: r.invariant, title: r.title, rules: r.rules, passed: r.passed, checks: r.checks, violations: r.count,
      first: r.violations.map((v) => ({ rule: v.rule, step: v.step, rip: hex(v.rip), instruction: v.instruction, task: v.task, message: v.message, fields: v.fields })),
    })),
    command: report.command,
  }, null, 2) + "\n";
}
