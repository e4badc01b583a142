// `ringspec trace FILE --html OUT | --json`: the trace of a run as one self-contained HTML page (or
// its model as JSON), from a state or vector file, a kernel image or built-in kernel, or a
// divergence document; `--lockstep` runs spec and impl side by side and draws their first
// divergence. Parsing, running and printing only: the model is trace/model, the page trace/html.
import { statSync, writeFileSync } from "node:fs";
import { parseArgs, parseMaxSteps, runSettings, engineHelp, RUN_OPTIONS, DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_SECONDS, UsageError } from "./args.ts";
import { InputError, STATE_FILE_LIMITS, loadDocument, oneLine, readInputBytes, readText, shownPath } from "./input.ts";
import { parseJsonDocument } from "../contract/load.ts";
import type { Io } from "./io.ts";
import { loaderDescription, targetOf } from "./kernel.ts";
import { FINISHED_STOPS, type Engine, type StepView } from "../contract/engine.ts";
import { stateToJson, type ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { createEngine, engineEntry } from "../engines/registry.ts";
import { runAsyncEngine, runEngine, type RunResult } from "../engines/runner.ts";
import { lockstep } from "../conformance/lockstep.ts";
import { createEngine as createKernelEngine, KERNEL_ENGINE_NAMES, type KernelEngineName } from "../kernel/engines.ts";
import { isElf } from "../kernel/loader/index.ts";
import { ruleById } from "../spec/index.ts";
import { describeInstructionAt, pageReader } from "../trace/disassemble.ts";
import { TraceModelBuilder } from "../trace/model/build.ts";
import { BUILT_IN_LAYOUTS } from "../trace/model/frame.ts";
import { DIVERGENCE_FORMAT, DivergenceError, divergenceModel, parseDivergence, type DivergenceDocumentIn } from "../trace/model/divergence.ts";
import type { FrameLayout, RuleInfo, TraceModel } from "../trace/model/types.ts";
import { traceRecord, type TraceRecord } from "../trace/record.ts";
import { renderPage, type PageData } from "../trace/html/render.ts";

export const TRACE_HELP = `Usage: ringspec trace FILE (--html OUT | --json) [options]

Draws every user/kernel transition of a run: the privilege timeline (CPL lanes, compatibility
mode, IF, the stack in use, GS.base after SWAPGS), and for each transition its mode-transfer
sequence (each line with the rule that decided it, linked to the rule's description and SDM
source; for a fault, the check that failed) and its stack frame drawn before and after.

FILE is a ringspec-state/1 or ringspec-vector/1 file; a kernel image (ELF64, or raw with
--loader) or a built-in kernel (demo, demo:VARIANT), run with the devices of docs/devices.md until
it exits; or a ringspec-divergence/1 document (drawn as a divergence page).

Options:
  --html OUT            write one self-contained HTML page (opens from disk, fetches nothing)
  --json                print the trace model as JSON (with --lockstep and a divergence: the
                        ringspec-divergence/1 document)
  --lockstep            state or vector files: run spec and impl side by side, comparing every
                        step; at the first divergence the page shows both states (only the
                        differing fields highlighted), the last steps and the replay command
  --loader FILE         a kernel image's ringspec-loader/1 description
  --frame NAME|FILE     name the cells around a delivery frame with a kernel's register frame:
                        regstate (the project's kernels; the default for kernels), pt_regs
                        (Linux), none, or a JSON file {"name", "fields": [...], "rip"}
  --symbols FILE        name addresses with a symbol map: \`nm\` output ("ADDRESS TYPE NAME" lines)
                        or a JSON object {"name": "0xADDRESS"} (kernels: added to the image's)
  --title TEXT          the page's heading (default: FILE)
  --max-records N       steps listed on the page at most (default 100000; the timeline and the
                        transitions always cover the whole run)
  --profile intel|amd   vendor behaviour (default: the file's profile, else intel)
  --max-steps N         step limit (default: a vector's limits.max_steps, a kernel's loader
                        limit, else ${DEFAULT_MAX_STEPS.toLocaleString("en-US")})
  --timeout SECONDS     wall-clock limit for the run (default ${DEFAULT_TIMEOUT_SECONDS}, at most 86400)
${engineHelp()}
  -h, --help            this help

Exit status: 0 the run stopped at hlt, shutdown, limit or the kernel's exit and the page was
written; 1 the run could not finish (unsupported, memory-limit, timeout) or the engines diverged
(the page is written either way); 2 bad arguments or an unusable file.`;

const OPTIONS = [
  ...RUN_OPTIONS,
  { name: "html", value: true },
  { name: "json", value: false },
  { name: "lockstep", value: false },
  { name: "loader", value: true },
  { name: "frame", value: true },
  { name: "title", value: true },
  { name: "symbols", value: true },
  { name: "max-records", value: true },
];

/** The rule catalogue of the reference model, as the trace model reads it. */
export function ruleCatalogue(id: string): RuleInfo | undefined {
  const rule = ruleById(id);
  if (rule === undefined) return undefined;
  return { description: rule.description, source: rule.source, ...(rule.recordedWith === undefined ? {} : { recordedWith: rule.recordedWith }) };
}

/** A word for a shell command line. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const FrameLayoutJson = {
  parse(path: string): FrameLayout {
    let value: unknown;
    try {
      value = JSON.parse(readText(path));
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`${shownPath(path)}: not valid JSON (${oneLine((e as Error).message)})`);
    }
    const v = value as { name?: unknown; fields?: unknown; rip?: unknown };
    const name = typeof v?.name === "string" && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(v.name) ? v.name : null;
    if (name === null) throw new InputError(`${shownPath(path)}: $.name: expected a C identifier`);
    if (!Array.isArray(v.fields) || v.fields.length === 0 || v.fields.length > 64 || !v.fields.every((f) => typeof f === "string" && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(f)))
      throw new InputError(`${shownPath(path)}: $.fields: expected 1 to 64 field names (C identifiers), lowest address first`);
    const fields = v.fields as string[];
    if (typeof v.rip !== "string" || !fields.includes(v.rip)) throw new InputError(`${shownPath(path)}: $.rip: expected the name of the field that holds the saved RIP`);
    return { name, fields, rip: v.rip };
  },
};

/** Symbols at most in a --symbols file, and the longest name. */
const MAX_SYMBOLS = 1_000_000;
const SYMBOL_NAME = /^[A-Za-z_.$][A-Za-z0-9_.$@]{0,255}$/;

/** A symbol map: `nm` output, or a JSON object of names to hex addresses. */
export function parseSymbols(path: string, text: string): Map<string, bigint> {
  const symbols = new Map<string, bigint>();
  const add = (name: string, address: string, where: string) => {
    if (!SYMBOL_NAME.test(name)) throw new InputError(`${shownPath(path)}: ${where}: ${JSON.stringify(name.slice(0, 40))} is not a symbol name`);
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(address)) throw new InputError(`${shownPath(path)}: ${where}: ${JSON.stringify(address.slice(0, 40))} is not a 64-bit hex address`);
    if (symbols.size >= MAX_SYMBOLS) throw new InputError(`${shownPath(path)}: more than ${MAX_SYMBOLS} symbols`);
    symbols.set(name, BigInt(address.startsWith("0x") ? address : "0x" + address));
  };
  if (text.trimStart().startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new InputError(`${shownPath(path)}: not valid JSON (${oneLine((e as Error).message)})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InputError(`${shownPath(path)}: expected an object of symbol names to "0x" addresses`);
    for (const [name, address] of Object.entries(value)) {
      if (typeof address !== "string") throw new InputError(`${shownPath(path)}: ${name}: expected a "0x" address string`);
      add(name, address, name);
    }
    return symbols;
  }
  text.split("\n").forEach((line, i) => {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === "") return;
    // nm: "ADDRESS TYPE NAME"; undefined symbols ("U NAME") have no address.
    if (fields.length === 2 && /^[Uvw]$/.test(fields[0]!)) return;
    if (fields.length !== 3) throw new InputError(`${shownPath(path)}: line ${i + 1}: expected "ADDRESS TYPE NAME" (nm output)`);
    add(fields[2]!, fields[0]!, `line ${i + 1}`);
  });
  return symbols;
}

function frameLayout(text: string | undefined, kernel: boolean): FrameLayout | undefined {
  if (text === undefined) return kernel ? BUILT_IN_LAYOUTS.regstate : undefined;
  if (text === "none") return undefined;
  return BUILT_IN_LAYOUTS[text] ?? FrameLayoutJson.parse(text);
}

type Input =
  | { readonly kind: "document"; readonly file: string }
  | { readonly kind: "divergence"; readonly file: string; readonly value: unknown }
  | { readonly kind: "kernel"; readonly file: string };

/** What FILE is: a JSON document (state, vector, divergence), or a kernel. */
function classify(file: string, loaderFile: string | undefined): Input {
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    isFile = false;
  }
  // Not a regular file: the kernel path reports what it is (or the built-in demo kernel).
  if (!isFile || loaderFile !== undefined) return { kind: "kernel", file };
  const bytes = readInputBytes(file, STATE_FILE_LIMITS);
  if (isElf(bytes.subarray(0, 4))) return { kind: "kernel", file };
  let value: unknown;
  try {
    value = parseJsonDocument(bytes);
  } catch {
    return { kind: "document", file }; // loadDocument reports the JSON error
  }
  if (typeof value === "object" && value !== null && (value as { format?: unknown }).format === DIVERGENCE_FORMAT) return { kind: "divergence", file, value };
  return { kind: "document", file };
}

export async function traceCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, OPTIONS, "trace");
  if (args.flags.has("help")) {
    io.out(TRACE_HELP + "\n");
    return 0;
  }
  if (args.positionals.length !== 1) throw new UsageError(`trace: expected one FILE, got ${args.positionals.length} (see trace --help)`);
  const file = args.positionals[0]!;
  const html = args.values.get("html");
  const json = args.flags.has("json");
  if (html === undefined && !json) throw new UsageError("trace: expected --html OUT or --json (see trace --help)");
  const settings = runSettings(args);
  const maxRecords = args.values.has("max-records") ? parseMaxSteps(args.values.get("max-records")!) : undefined;
  const loaderFile = args.values.get("loader");
  const input = classify(file, loaderFile);
  const title = args.values.get("title");
  const symbolsFile = args.values.get("symbols");
  const symbols = symbolsFile === undefined ? undefined : parseSymbols(symbolsFile, readText(symbolsFile));
  if (args.flags.has("lockstep") && input.kind !== "document") throw new UsageError("trace: --lockstep takes a state or vector file (kernels: ringspec kernel --lockstep)");

  const write = (data: PageData, jsonValue: unknown): void => {
    if (json) io.out(JSON.stringify(jsonValue) + "\n");
    if (html !== undefined) {
      try {
        writeFileSync(html, renderPage(data));
      } catch (e) {
        throw new InputError(`--html ${html}: ${oneLine((e as Error).message)}`);
      }
    }
  };

  if (input.kind === "divergence") {
    let doc;
    try {
      doc = parseDivergence(input.value);
    } catch (e) {
      if (e instanceof DivergenceError) throw new InputError(`${file}: ${oneLine(e.message)}`);
      throw e;
    }
    const model = divergenceModel(doc, ruleCatalogue);
    write({ kind: "divergence", model }, model);
    if (html !== undefined) io.err(`wrote ${html}: ${model.title} (${model.differences.length} differing fields)`);
    return 0;
  }

  // The command that makes this page again.
  const passed = ["engine", "profile", "max-steps", "timeout", "loader", "symbols", "frame", "title", "max-records"].flatMap((o) => (args.values.has(o) ? [`--${o}`, args.values.get(o)!] : []));
  const command = ["npx", "ringspec", "trace", file, ...passed, ...(args.flags.has("lockstep") ? ["--lockstep"] : []), ...(html !== undefined ? ["--html", html] : ["--json"])].map(shellQuote).join(" ");

  if (input.kind === "kernel") {
    const description = loaderDescription(loaderFile);
    const target = targetOf(file, description, loaderFile);
    const profile = settings.profile ?? target.profile;
    const maxSteps = settings.maxSteps ?? description.limits?.max_steps ?? DEFAULT_MAX_STEPS;
    const timeoutMs = args.values.has("timeout") ? settings.timeoutMs : Math.round((description.limits?.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000);
    if (!(KERNEL_ENGINE_NAMES as readonly string[]).includes(settings.engine)) throw new UsageError(`trace: a kernel runs on ${KERNEL_ENGINE_NAMES.join(" or ")}, not ${settings.engine}`);
    const engine = createKernelEngine(settings.engine as KernelEngineName, { rules: true });
    engine.load(target.state, profile);
    const layout = frameLayout(args.values.get("frame"), true);
    const builder = new TraceModelBuilder(target.state, {
      title: title ?? target.name, file, engine: settings.engine, profile, command,
      engineReportsRules: engineEntry(settings.engine)?.capabilities.rules === true,
      catalogue: ruleCatalogue, symbols: new Map([...target.symbols, ...(symbols ?? [])]),
      stackWindow: target.context.kernelStackSize,
      ...(layout === undefined ? {} : { frameLayout: layout }),
      ...(maxRecords === undefined ? {} : { maxRecords }),
    });
    const result = runEngine(engine, { maxSteps, timeoutMs, onStep: (view) => void builder.add(view) });
    const exited = result.stop.reason === "exit";
    const reason = exited ? `exit ${result.stop.exitValue}` : result.stop.reason;
    const model = builder.finish({ reason, steps: result.stop.steps, ...(result.stop.detail === undefined ? {} : { detail: result.stop.detail }), at: describeInstructionAt(result.state, pageReader(result.state.memory)) });
    write({ kind: "trace", model }, model);
    report(io, html, model);
    return exited || FINISHED_STOPS.includes(result.stop.reason) ? 0 : 1;
  }

  const doc = loadDocument(file);
  const profile = settings.profile ?? doc.profile ?? "intel";
  const maxSteps = settings.maxSteps ?? (doc.kind === "vector" ? doc.vector.limits.max_steps : DEFAULT_MAX_STEPS);
  const layout = frameLayout(args.values.get("frame"), false);

  if (args.flags.has("lockstep")) {
    const found = lockstepDivergence(file, doc.state, profile, maxSteps, settings.timeoutMs, command);
    if (found !== null) {
      const model = divergenceModel(parseDivergence(found), ruleCatalogue);
      write({ kind: "divergence", model }, found);
      io.err(`lockstep: spec and impl diverge at step ${found.step}${html === undefined ? "" : `; wrote ${html}`}`);
      return 1;
    }
    io.err(`lockstep: spec and impl agreed at every step`);
  }

  const entry = engineEntry(settings.engine)!;
  const engine = await entry.open({ rules: true });
  const builder = new TraceModelBuilder(doc.state, {
    title: title ?? file, file, engine: settings.engine, profile, command,
    engineReportsRules: entry.capabilities.rules === true,
    catalogue: ruleCatalogue,
    ...(symbols === undefined ? {} : { symbols }),
    ...(layout === undefined ? {} : { frameLayout: layout }),
    ...(maxRecords === undefined ? {} : { maxRecords }),
  });
  let result: RunResult;
  try {
    await engine.load(doc.state, profile);
    result = await runAsyncEngine(engine, { maxSteps, timeoutMs: settings.timeoutMs, onStep: (view) => void builder.add(view) });
  } finally {
    await engine.close();
  }
  const model = builder.finish({
    reason: result.stop.reason, steps: result.stop.steps, ...(result.stop.detail === undefined ? {} : { detail: result.stop.detail }),
    at: describeInstructionAt(result.state, pageReader(result.state.memory)),
  });
  write({ kind: "trace", model }, model);
  report(io, html, model);
  return FINISHED_STOPS.includes(result.stop.reason) ? 0 : 1;
}

function report(io: Io, html: string | undefined, model: TraceModel): void {
  io.err(`stop: ${model.stop.reason} after ${model.stop.steps} step${model.stop.steps === 1 ? "" : "s"}${model.stop.detail === undefined ? "" : `: ${model.stop.detail}`}; at ${model.stop.at}`);
  if (html !== undefined) io.err(`wrote ${html}: ${model.transitions.length} transitions over ${model.stop.steps} steps`);
}

/** Steps of engine A recorded before a divergence, for the page. */
const LAST_STEPS = 8;

/**
 * spec against impl from `state`; the first divergence as a ringspec-divergence/1 document (null
 * when they agree). The last steps come from a second, traced run of spec to the divergence.
 */
export function lockstepDivergence(
  file: string, state: ArchState, profile: ProfileName, maxSteps: number, timeoutMs: number, command: string,
  engines: { readonly a: () => Engine; readonly b: () => Engine; readonly names?: { readonly a: string; readonly b: string } } = {
    a: () => createEngine("spec", { rules: true }),
    b: () => createEngine("impl"),
  },
): DivergenceDocumentIn | null {
  const a = engines.a();
  const b = engines.b();
  const names = engines.names ?? { a: "spec", b: "impl" };
  const result = lockstep(a, b, state, profile, maxSteps, { timeoutMs });
  const d = result.divergence;
  if (d === null) return null;
  const stateA = a.state();
  const stateB = b.state();
  // The same steps again, traced (the engines are deterministic).
  const replay = engines.a();
  replay.load(state, profile);
  const records: TraceRecord[] = [];
  runEngine(replay, {
    maxSteps: d.step, timeoutMs,
    onStep: (view: StepView) => {
      records.push(traceRecord(view));
      if (records.length > LAST_STEPS) records.shift();
    },
  });
  const last = records[records.length - 1];
  const withoutMemory = (s: ArchState) => {
    const { memory: _memory, ...rest } = stateToJson(s);
    return rest;
  };
  return {
    format: DIVERGENCE_FORMAT,
    source: "lockstep",
    engines: names,
    step: d.step,
    events: { a: d.eventA, b: d.eventB },
    states: { a: withoutMemory(stateA), b: withoutMemory(stateB) },
    differences: d.differences.map((x) => ({ field: x.field, a: x.a, b: x.b })),
    last_steps: records as DivergenceDocumentIn["last_steps"],
    replay: `npx ringspec run ${shellQuote(file)} --trace --max-steps ${d.step} --profile ${profile} --engine ${names.a}   # and --engine ${names.b}; page: ${command}`,
    ...(last?.step === d.step && last.rules !== undefined ? { rules: [...last.rules] } : {}),
  };
}
