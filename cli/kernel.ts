// `ringspec kernel [IMAGE]` boots a kernel and streams its console; `ringspec kernel check IMAGE`
// checks the context-switch invariants of its run and grades it. Parsing and printing only: the
// work is in kernel/.
import { existsSync, writeFileSync } from "node:fs";
import { parseArgs, parseMaxSteps, parseProfile, parseTimeout, UsageError, HELP_OPTION, DEFAULT_TIMEOUT_SECONDS } from "./args.ts";
import { InputError, oneLine, readInputBytes, readText, shownPath } from "./input.ts";
import { displayText } from "../contract/text.ts";
import type { Io } from "./io.ts";
import {
  DEFAULT_DESCRIPTION, LoaderError, MAX_IMAGE_BYTES, loadKernel, parseLoaderDescriptionText,
  type LoaderDescription,
} from "../kernel/loader/index.ts";
import { runKernel } from "../kernel/run.ts";
import { builtInTarget, loadedTarget, type KernelTarget } from "../kernel/target.ts";
import { VARIANT_NAMES } from "../kernel/demo/index.ts";
import { KERNEL_ENGINE_NAMES, type KernelEngineName } from "../kernel/engines.ts";
import { DEFAULT_RUBRIC, checkKernel, gradescopeResults, jsonReport, junitXml, parseRubricText, runSummary, textReport } from "../kernel/grade/index.ts";
import { hex } from "../contract/hex.ts";
import type { StepView } from "../contract/engine.ts";
import { traceRecord } from "../trace/record.ts";
import { traceLine } from "../trace/text.ts";
import { traceJsonLine } from "../trace/json.ts";
import { SymbolTable } from "../kernel/symbols.ts";

export const DEFAULT_KERNEL_STEPS = 10_000_000;
export const DEFAULT_CONSOLE_BYTES = 64 * 1024;

export const KERNEL_HELP = `Usage: ringspec kernel [IMAGE] [options]        boot a kernel, stream its console
       ringspec kernel check IMAGE [options]    check its context switches, grade it

IMAGE is an ELF64 executable, or a raw binary described by --loader; the machine starts in the
loader's long-mode boot state (docs/devices.md has the console, exit port and timer). Built in:
\`demo\` (the default), the teaching kernel of kernel/demo, and \`demo:VARIANT\`, one of its
deliberately broken variants: ${VARIANT_NAMES.join(", ")}.

Options:
  --loader FILE         a ringspec-loader/1 description (load addresses, entry registers,
                        memory size, symbols, limits, what the checker needs to know)
  --engine spec|impl    the engine (kernel: impl; kernel check: spec, the reference model)
  --lockstep            kernel: run spec and impl side by side and compare every step
  --compare-every N     kernel --lockstep: compare whole states every N steps (default 1) and
                        at every delivery, I/O and privilege change; events still every step
  --trace FROM:TO       kernel: print steps FROM to TO (1-based) as trace lines on stdout
                        (with --json: trace records as JSON lines) instead of the console
  --profile intel|amd   vendor behaviour (default: the loader's profile, else intel)
  --max-steps N         step limit (default: the loader's limits.max_steps, else ${DEFAULT_KERNEL_STEPS.toLocaleString("en-US")})
  --timeout SECONDS     wall-clock limit (default: the loader's limits.timeout_seconds, else ${DEFAULT_TIMEOUT_SECONDS})
  --json                kernel check: the report as JSON on stdout; kernel --trace: JSON lines
  --gradescope FILE     kernel check: write Gradescope's results.json (exit 0 whenever graded)
  --junit FILE          kernel check: write the results as JUnit XML
  --rubric FILE         kernel check: a ringspec-rubric/1 file (points per invariant, console
                        line and exit value; visibility); default: 1 point per invariant and
                        1 for exiting with 0
  -h, --help            this help

Exit status: kernel: 0 the kernel wrote 0 to the exit port, 1 any other end of the run;
kernel check: 0 every invariant held and the kernel exited, 1 otherwise (0 with --gradescope
whenever it could grade); 2 bad arguments or an unusable image, loader description or rubric.`;

const OPTIONS = [
  HELP_OPTION,
  { name: "loader", value: true },
  { name: "engine", value: true },
  { name: "lockstep", value: false },
  { name: "compare-every", value: true },
  { name: "trace", value: true },
  { name: "profile", value: true },
  { name: "max-steps", value: true },
  { name: "timeout", value: true },
  { name: "json", value: false },
  { name: "gradescope", value: true },
  { name: "junit", value: true },
  { name: "rubric", value: true },
];

function engineOf(text: string | undefined, fallback: KernelEngineName): KernelEngineName {
  if (text === undefined) return fallback;
  const found = KERNEL_ENGINE_NAMES.find((n) => n === text);
  if (found === undefined) throw new UsageError(`--engine: expected ${KERNEL_ENGINE_NAMES.join(" or ")}, got ${JSON.stringify(text)}`);
  return found;
}

function readImage(path: string): Uint8Array {
  return readInputBytes(path, { maxBytes: MAX_IMAGE_BYTES, what: "kernel images" });
}

/** `what` failed on a bad file: one line naming the file, then the field. */
function withFile<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LoaderError) throw new InputError(`${shownPath(file)}: ${oneLine(e.message)}`);
    throw e;
  }
}

interface Prepared {
  readonly target: KernelTarget;
  readonly maxSteps: number;
  readonly timeoutMs: number;
  readonly consoleLimit: number;
  readonly reproduce: string[];
}

/** A file path, unless it names a built-in kernel and no such file exists. */
export function targetOf(image: string, description: LoaderDescription, loaderFile: string | undefined): KernelTarget {
  if (!existsSync(image)) {
    let builtIn: KernelTarget | undefined;
    try {
      builtIn = builtInTarget(image);
    } catch (e) {
      throw new UsageError(`${shownPath(image)}: ${oneLine((e as Error).message)}`);
    }
    if (builtIn !== undefined) {
      if (loaderFile !== undefined) throw new UsageError(`--loader: the built-in ${image} needs no loader description`);
      return builtIn;
    }
  }
  const bytes = readImage(image);
  return loadedTarget(image, withFile(image, () => loadKernel(bytes, description)));
}

/** The loader description of --loader FILE, or the default (an ELF image). */
export function loaderDescription(loaderFile: string | undefined): LoaderDescription {
  return loaderFile === undefined ? DEFAULT_DESCRIPTION : withFile(loaderFile, () => parseLoaderDescriptionText(readText(loaderFile)));
}

function prepare(image: string, values: ReadonlyMap<string, string>): Prepared {
  const loaderFile = values.get("loader");
  const description = loaderDescription(loaderFile);
  let target = targetOf(image, description, loaderFile);
  const profile = values.get("profile");
  if (profile !== undefined) target = { ...target, profile: parseProfile(profile) };
  const steps = values.get("max-steps");
  const timeout = values.get("timeout");
  const limits = description.limits;
  const reproduce = [image, ...(loaderFile !== undefined ? ["--loader", loaderFile] : []), ...(profile !== undefined ? ["--profile", profile] : []),
    ...(steps !== undefined ? ["--max-steps", steps] : []), ...(timeout !== undefined ? ["--timeout", timeout] : [])];
  return {
    target, reproduce,
    maxSteps: steps !== undefined ? parseMaxSteps(steps) : limits?.max_steps ?? DEFAULT_KERNEL_STEPS,
    timeoutMs: timeout !== undefined ? parseTimeout(timeout) : Math.round((limits?.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000),
    consoleLimit: limits?.console_bytes ?? DEFAULT_CONSOLE_BYTES,
  };
}

const quote = (arg: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

export function kernelCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, OPTIONS, "kernel");
  if (args.flags.has("help")) {
    io.out(KERNEL_HELP + "\n");
    return 0;
  }
  const [first, ...rest] = args.positionals;
  if (first === "check") return check(rest, args.values, args.flags, io);
  for (const only of ["gradescope", "junit", "rubric"]) if (args.values.has(only)) throw new UsageError(`kernel: --${only} belongs to kernel check`);
  const traceRange = args.values.get("trace");
  if (args.flags.has("json") && traceRange === undefined) throw new UsageError("kernel: --json needs --trace (or belongs to kernel check)");
  if (rest.length > 0) throw new UsageError(`kernel: expected one IMAGE, got ${args.positionals.length}`);
  const p = prepare(first ?? "demo", args.values);
  const engine = engineOf(args.values.get("engine"), "impl");
  const lockstep = args.flags.has("lockstep");
  const everyText = args.values.get("compare-every");
  if (everyText !== undefined && !lockstep) throw new UsageError("kernel: --compare-every needs --lockstep");
  const every = everyText === undefined ? 1 : parseCompareEvery(everyText);
  const decoder = new TextDecoder();
  const trace = traceRange === undefined ? undefined : traceOptions(traceRange, p.target, args.flags.has("json"), io);
  const r = runKernel(p.target.state, {
    engine, profile: p.target.profile, maxSteps: p.maxSteps, timeoutMs: p.timeoutMs, consoleLimit: p.consoleLimit, lockstep, lockstepEvery: every,
    ...(trace !== undefined ? { trace } : { onConsole: (bytes: Uint8Array) => io.out(displayText(decoder.decode(bytes, { stream: true }), { lines: true })) }),
  });
  if (trace === undefined) io.out(displayText(decoder.decode(), { lines: true }));
  io.err(`stop: ${runSummary(r)} (engine ${engine})`);
  if (lockstep) {
    if (r.divergence === undefined) {
      const states = every === 1 ? "registers, segments, CPU state" : `whole states every ${every} steps and at every delivery, I/O and privilege change`;
      io.err(`lockstep: spec and impl agreed at every step (${r.compared ?? 0} steps: events, ${states} and console; memory at every privilege change, delivery and the end)`);
    }
    else {
      const d = r.divergence;
      io.err(`lockstep: spec and impl disagree at step ${d.step} (${hex(d.rip)}): spec ${d.spec}; impl ${d.impl}`);
      for (const f of d.differences.slice(0, 10)) io.err(`  ${f.field}: spec ${engine === "spec" ? f.a : f.b}, impl ${engine === "spec" ? f.b : f.a}`);
    }
  }
  return r.stop === "exit" && r.exitValue === 0 && r.divergence === undefined ? 0 : 1;
}

function parseCompareEvery(text: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--compare-every: expected a positive whole number of steps, got ${JSON.stringify(text)}`);
  return n;
}

/** `--trace FROM:TO`: trace lines (or JSON records) for those steps, addresses with symbols. */
function traceOptions(range: string, target: KernelTarget, json: boolean, io: Io) {
  const m = /^([0-9]+):([0-9]+)$/.exec(range);
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (m === null || !(from >= 1) || !(to >= from) || !Number.isSafeInteger(to)) throw new UsageError(`--trace: expected FROM:TO, steps from 1 with FROM <= TO, got ${JSON.stringify(range)}`);
  const symbols = new SymbolTable(target.symbols);
  return {
    from, to,
    onStep: (view: StepView) => {
      const record = traceRecord(view);
      if (json) {
        io.out(traceJsonLine(record) + "\n");
        return;
      }
      const where = symbols.describe(view.event.rip);
      const line = traceLine(record);
      io.out((where === undefined ? line : line.replace(record.linear, `${record.linear} <${where}>`)) + "\n");
    },
  };
}

function check(positionals: readonly string[], values: ReadonlyMap<string, string>, flags: ReadonlySet<string>, io: Io): number {
  if (positionals.length !== 1) throw new UsageError(`kernel check: expected one IMAGE, got ${positionals.length} (see kernel --help)`);
  if (flags.has("lockstep")) throw new UsageError("kernel check: --lockstep belongs to kernel (a check runs one engine)");
  const p = prepare(positionals[0]!, values);
  const rubricFile = values.get("rubric");
  const rubric = rubricFile === undefined ? DEFAULT_RUBRIC : withFile(rubricFile, () => parseRubricText(readText(rubricFile)));
  const engine = engineOf(values.get("engine"), "spec");
  const command = ["npx", "ringspec", "kernel", "check", ...p.reproduce, "--engine", engine].map(quote).join(" ");
  const report = checkKernel(p.target, { engine, maxSteps: p.maxSteps, timeoutMs: p.timeoutMs, consoleLimit: p.consoleLimit, command });

  const gradescope = values.get("gradescope");
  const junit = values.get("junit");
  const results = gradescopeResults(report, rubric);
  const write = (file: string, text: string) => {
    try {
      writeFileSync(file, text);
    } catch (e) {
      throw new InputError(`${shownPath(file)}: ${oneLine((e as Error).message)}`);
    }
  };
  if (gradescope !== undefined) write(gradescope, JSON.stringify(results, null, 2) + "\n");
  if (junit !== undefined) write(junit, junitXml(results));
  io.out(flags.has("json") ? jsonReport(report) : textReport(report));
  if (gradescope !== undefined) return 0;
  return report.run.stop === "exit" && report.invariants.every((r) => r.passed) ? 0 : 1;
}
