// `ringspec run FILE`: run a state or vector file and report the final state and the stop reason.
import { closeSync, openSync, writeSync } from "node:fs";
import { parseArgs, runSettings, engineHelp, RUN_OPTIONS, DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_SECONDS, UsageError } from "./args.ts";
import { loadDocument, InputError, oneLine, shownPath } from "./input.ts";
import { BufferedOut, type Io } from "./io.ts";
import { writeStateDocument, stopLine } from "./format.ts";
import { FINISHED_STOPS, type StepView } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import { engineEntry } from "../engines/registry.ts";
import { runAsyncEngine, type RunResult } from "../engines/runner.ts";
import { describeInstructionAt, pageReader } from "../trace/disassemble.ts";
import { tracer } from "../trace/record.ts";
import { TraceModelBuilder } from "../trace/model/build.ts";
import { explainTransition } from "../trace/explain.ts";
import { ruleCatalogue } from "./trace.ts";
import { traceLine } from "../trace/text.ts";
import { traceJsonLine } from "../trace/json.ts";

export const RUN_HELP = `Usage: ringspec run FILE [options]

Runs a ringspec-state/1 or ringspec-vector/1 file (a vector runs from its initial state, with its
inject events pending; its expected section is not compared: use \`ringspec vectors check\`).

Output: the final state as a ringspec-state/1 document on stdout (it can be run again), and one
line on stderr: "stop: REASON after N steps[: DETAIL]; at ADDRESS: INSTRUCTION". REASON is hlt,
shutdown or limit (the run finished), or unsupported, memory-limit or timeout (the engine could
not go on).

Options:
  --profile intel|amd   vendor behaviour (default: the file's profile, else intel)
  --max-steps N         step limit (default: a vector's limits.max_steps, else ${DEFAULT_MAX_STEPS.toLocaleString("en-US")};
                        given explicitly, it overrides the vector's limit)
  --timeout SECONDS     wall-clock limit for the run (default ${DEFAULT_TIMEOUT_SECONDS}, at most 86400)
${engineHelp()}
  --trace               print every step on stdout instead of the final state: step number,
                        address, disassembly (AT&T syntax), what the step did, and the registers,
                        flags, segment fields, CPU state and memory bytes it changed (new values)
  --json                with --trace: one JSON trace record per line instead (fields named as
                        in the vector format, values before and after; \`ringspec schema trace\`
                        prints its JSON Schema)
  --explain             with --trace: after each user/kernel transition (SYSCALL, SYSRET, an
                        interrupt or exception, IRET, far RET, SWAPGS), its mode-transfer
                        sequence (each line with its rule ID; for a fault, the check that failed)
                        and its stack frame drawn as memory cells (ringspec trace --html draws the
                        same as a page)
  --out FILE            write the final state document to FILE instead of stdout
  -h, --help            this help

Exit status: 0 the run stopped at hlt, shutdown or limit; 1 unsupported, memory-limit or timeout;
2 bad arguments or an unusable file (one line on stderr naming the file and the bad field).`;

export async function runCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, [...RUN_OPTIONS, { name: "trace", value: false }, { name: "json", value: false }, { name: "explain", value: false }, { name: "out", value: true }], "run");
  if (args.flags.has("help")) {
    io.out(RUN_HELP + "\n");
    return 0;
  }
  const settings = runSettings(args);
  if (args.positionals.length !== 1) throw new UsageError(`run: expected one FILE, got ${args.positionals.length} (see run --help)`);
  const file = args.positionals[0]!;
  const trace = args.flags.has("trace");
  const json = args.flags.has("json");
  if (json && !trace) throw new UsageError(`run: --json goes with --trace (the final state is JSON already)`);
  const explain = args.flags.has("explain");
  if (explain && (!trace || json)) throw new UsageError(`run: --explain goes with --trace, without --json (the model as JSON: ringspec trace FILE --json)`);
  const outFile = args.values.get("out");

  const doc = loadDocument(file);
  const profile = settings.profile ?? doc.profile ?? "intel";
  const maxSteps = settings.maxSteps ?? (doc.kind === "vector" ? doc.vector.limits.max_steps : DEFAULT_MAX_STEPS);

  const buffered = new BufferedOut(io);
  const render = json ? traceJsonLine : traceLine;
  const engine = await engineEntry(settings.engine)!.open({ rules: trace, emulator: settings.emulator, ...(settings.command === undefined ? {} : { command: settings.command }) });
  let result: RunResult;
  try {
    await engine.load(doc.state, profile);
    result = await runAsyncEngine(engine, {
      maxSteps,
      timeoutMs: settings.timeoutMs,
      ...(trace ? { onStep: explain ? explainer(doc.state, file, settings.engine, profile, buffered) : tracer((record) => buffered.line(render(record))) } : {}),
    });
  } finally {
    buffered.flush();
    await engine.close();
  }

  const { stop, state } = result;
  // The document is written in chunks, and only where it goes (never built with --trace alone).
  if (outFile !== undefined) {
    let fd: number | undefined;
    try {
      fd = openSync(outFile, "w");
      const target = fd;
      writeStateDocument(state, profile, (chunk) => {
        writeSync(target, chunk);
      });
    } catch (e) {
      throw new InputError(`--out ${shownPath(outFile)}: ${oneLine((e as Error).message)}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  } else if (!trace) writeStateDocument(state, profile, io.out);
  const at = describeInstructionAt(state, pageReader(state.memory));
  io.err(stopLine(stop.reason, stop.steps, at, stop.detail));
  return FINISHED_STOPS.includes(stop.reason) ? 0 : 1;
}

/** Trace lines, each transition followed by its sequence and frame as text. */
function explainer(initial: ArchState, file: string, engine: string, profile: string, out: BufferedOut): (view: StepView) => void {
  let explained = false;
  const builder = new TraceModelBuilder(initial, {
    file, engine, profile, command: "", catalogue: ruleCatalogue,
    engineReportsRules: engineEntry(engine)?.capabilities.rules === true,
    maxRecords: 0, retainTransitions: false,
    onTransition: (t, record) => {
      out.line(traceLine(record));
      out.line(explainTransition(t));
      explained = true;
    },
  });
  return (view) => {
    explained = false;
    const record = builder.add(view);
    if (!explained) out.line(traceLine(record));
  };
}
