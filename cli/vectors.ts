// `ringspec vectors check PATH...`: run vectors and compare them with their `expected` sections.
import { parseArgs, runSettings, engineHelp, RUN_OPTIONS, DEFAULT_TIMEOUT_SECONDS, UsageError } from "./args.ts";
import { expandPaths, loadDocument, InputError, oneLine, shownPath } from "./input.ts";
import { displayJson, displayText } from "../contract/text.ts";
import { BufferedOut, type Io } from "./io.ts";
import { describeInstructionAt, pageReader } from "../trace/disassemble.ts";
import { checkVector, type VectorResult } from "../conformance/vector-check.ts";
import type { LoadedVector } from "../contract/load.ts";
import { engineEntry } from "../engines/registry.ts";

export const VECTORS_HELP = `Usage: ringspec vectors check PATH... [options]
       ringspec vectors generate --count N --seed S --out DIR (see vectors generate --help)

Runs each ringspec-vector/1 file from its initial state and compares every field present in its
expected section (exit, registers, segment registers, control registers, MSRs, memory bytes). A
PATH may be a directory: all *.json files in it (not recursive), in name order.

Output (stdout): for each failed vector a "FAIL name (file)" line followed by indented lines, one
per difference ("FIELD: expected X, got Y", fields named as in the vector format: regs.rax,
sregs.cs.dpl, msrs.FS_BASE, memory@0x1ffd8) or the reason the engine stopped early (unsupported,
memory-limit, timeout, error: these always fail), then the instruction at the stop; last, the line
"N passed, M failed". A vector with expected fields the engine cannot observe gets a line naming
them ("not compared"), and the last line then adds "(K passed with fields not compared)".
Unusable files (bad JSON, a bad field, a state outside the model, not a vector) get one line each
on stderr naming the file and the JSON path of the bad field, and are counted in neither N nor M.

Options:
  --json                print one JSON object instead:
                        {"passed": N, "failed": M, "unusable": [{"file", "error"}],
                         "seconds": S, "cases_per_second": R,
                         "results": [{"name", "file", "passed", "profile", "exit", "expected_exit",
                                      "steps", "detail", "stop", "mismatches": [{"field", "expected", "got"}],
                                      "not_compared": [FIELD...]}]}
                        (expected and got are valued as the vector format writes them: hex
                        strings, attribute numbers, hex bytes for memory)
  --profile intel|amd   vendor behaviour for every vector (default: each vector's profile, else intel)
  --max-steps N         step limit for every vector (default: each vector's limits.max_steps)
  --timeout SECONDS     wall-clock limit per vector (default ${DEFAULT_TIMEOUT_SECONDS}, at most 86400)
  --workers N           check N vectors at once, each on its own engine (default 1; worth it
                        with the emulator engines, whose runs wait on other processes)
${engineHelp()}
  -h, --help            this help

Exit status: 2 if any input was unusable (or the arguments were bad), else 1 if any vector failed,
else 0.`;

/** Most --workers accepted (each may be an emulator process). */
const MAX_WORKERS = 64;

function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_WORKERS) throw new UsageError(`--workers: expected a whole number from 1 to ${MAX_WORKERS}, got ${JSON.stringify(text)}`);
  return n;
}

/** Differences shown per vector before "… N more". */
const MAX_SHOWN = 40;

interface CheckedVector {
  readonly file: string;
  readonly result: VectorResult;
  readonly stop: string;
}

export async function vectorsCommand(argv: readonly string[], io: Io): Promise<number> {
  const sub = argv[0];
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    if (sub === undefined) throw new UsageError(`vectors: expected a subcommand: check (see vectors --help)`);
    io.out(VECTORS_HELP + "\n");
    return 0;
  }
  // Loaded when asked for: the generators (and fast-check) are not needed to check vectors.
  if (sub === "generate") return (await import("./vectors-generate.ts")).generateCommand(argv.slice(1), io);
  if (sub !== "check") throw new UsageError(`vectors: unknown subcommand ${JSON.stringify(sub)} (expected check or generate)`);
  const args = parseArgs(argv.slice(1), [...RUN_OPTIONS, { name: "json", value: false }, { name: "workers", value: true }], "vectors check");
  if (args.flags.has("help")) {
    io.out(VECTORS_HELP + "\n");
    return 0;
  }
  const settings = runSettings(args);
  if (args.positionals.length === 0) throw new UsageError(`vectors check: expected at least one PATH (see vectors --help)`);
  const json = args.flags.has("json");
  const workers = parseWorkers(args.values.get("workers"));
  if (workers > 1 && settings.engine === "gdb") throw new UsageError("--workers: the gdb engine drives one stub, one case at a time");
  const entry = engineEntry(settings.engine)!;
  const openEngine = () => entry.open({ emulator: settings.emulator, ...(settings.command === undefined ? {} : { command: settings.command }) });

  const out = new BufferedOut(io);
  const unusableFiles: { file: string; error: string }[] = [];
  const vectors: { file: string; doc: LoadedVector }[] = [];
  for (const { file, error } of expandPaths(args.positionals)) {
    try {
      if (error !== undefined) throw new InputError(error);
      const doc = loadDocument(file);
      if (doc.kind !== "vector") throw new InputError(`${shownPath(file)}: format: this is a ringspec-state/1 file, not a vector`);
      vectors.push({ file, doc });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      io.err(e.message);
      unusableFiles.push({ file, error: e.message });
    }
  }

  // Workers take vectors in order; results are printed in input order as they complete.
  const results: (CheckedVector | undefined)[] = vectors.map(() => undefined);
  let nextToCheck = 0;
  let nextToPrint = 0;
  const print = () => {
    for (; nextToPrint < results.length && results[nextToPrint] !== undefined; nextToPrint++) {
      const { file, result, stop } = results[nextToPrint]!;
      if (!json && !result.passed) for (const line of failureLines(file, result, stop)) out.line(line);
      else if (!json && result.notCompared.length > 0) out.line(`PARTIAL ${displayText(result.name)} (${shownPath(file)}): passed, but not compared: ${displayText(result.notCompared.join(" "))}`);
    }
  };
  const worker = async () => {
    let engine = await openEngine();
    try {
      for (;;) {
        const index = nextToCheck++;
        const item = vectors[index];
        if (item === undefined) return;
        const result = await checkVector(item.doc, engine, {
          timeoutMs: settings.timeoutMs,
          ...(settings.profile === undefined ? {} : { profile: settings.profile }),
          ...(settings.maxSteps === undefined ? {} : { maxSteps: settings.maxSteps }),
        });
        if (result.exit === "timeout" || result.exit === "error") {
          // It may still be busy, or broken: the next vector gets a fresh engine.
          await engine.close();
          engine = await openEngine();
        }
        const stop = describeInstructionAt(result.state, pageReader(result.state.memory));
        results[index] = { file: item.file, result, stop };
        print();
      }
    } finally {
      await engine.close();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(workers, Math.max(1, vectors.length)) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const checked = results.filter((r): r is CheckedVector => r !== undefined);

  const passed = checked.filter((c) => c.result.passed).length;
  const failed = checked.length - passed;
  const partial = checked.filter((c) => c.result.passed && c.result.notCompared.length > 0).length;
  if (json) {
    out.line(displayJson(
      JSON.stringify({
        passed,
        failed,
        unusable: unusableFiles,
        // Wall-clock time of the checks and their rate (the emulator engines' figure), to the
        // microsecond: a few quick vectors take under a millisecond, which milliseconds round to 0.
        seconds: Number(seconds.toFixed(6)),
        cases_per_second: seconds > 0 ? Number((checked.length / seconds).toFixed(2)) : null,
        results: checked.map(({ file, result: r, stop }) => ({
          name: r.name,
          file,
          passed: r.passed,
          profile: r.profile,
          exit: r.exit,
          expected_exit: r.expectedExit,
          steps: r.steps ?? null,
          detail: r.detail ?? null,
          stop,
          mismatches: r.mismatches,
          not_compared: r.notCompared,
        })),
      })),
    );
  } else out.line(`${passed} passed, ${failed} failed${partial === 0 ? "" : ` (${partial} passed with fields not compared)`}`);
  out.flush();
  return unusableFiles.length > 0 ? 2 : failed > 0 ? 1 : 0;
}

function failureLines(file: string, r: VectorResult, stop: string): string[] {
  // The name, the file and the engine's detail come from outside: escaped, so that none of them
  // can start a line of its own (a forged "N passed, 0 failed") or act on the terminal.
  const lines = [`FAIL ${displayText(r.name)} (${shownPath(file)})`];
  const steps = r.steps === undefined ? "" : ` after ${r.steps} step${r.steps === 1 ? "" : "s"}`;
  if (r.detail !== undefined) lines.push(`  stopped: ${r.exit}${steps}: ${oneLine(r.detail)} (expected exit ${r.expectedExit})`);
  for (const m of r.mismatches.slice(0, MAX_SHOWN)) lines.push(displayText(`  ${m.field}: expected ${String(m.expected)}, got ${String(m.got)}`));
  if (r.notCompared.length > 0) lines.push(displayText(`  not compared (the engine cannot observe them): ${r.notCompared.join(" ")}`));
  if (r.mismatches.length > MAX_SHOWN) lines.push(`  … ${r.mismatches.length - MAX_SHOWN} more differences (use --json for all)`);
  lines.push(`  at the stop${r.detail === undefined ? steps : ""}: ${displayText(stop)}`);
  return lines;
}
