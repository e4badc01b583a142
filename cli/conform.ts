// `ringspec conform`: a lockstep campaign between two engines (conformance/campaign/), with a
// progress bar, a summary, reports and exit codes; `ringspec conform merge FILE...` combines shard
// results. Parsing and printing only: the work lives in conformance/campaign/.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import cliProgress from "cli-progress";
import { parseArgs, HELP_OPTION, UsageError, parseProfile } from "./args.ts";
import { InputError, oneLine, readText } from "./input.ts";
import { processIo, BufferedOut, type Io } from "./io.ts";
import { shellQuote } from "./trace.ts";
import { runCampaign, type CampaignPlan, type CampaignProgress } from "../conformance/campaign/campaign.ts";
import { CAMPAIGN_ENGINE_NAMES, engineSource, inProcess, type EngineChoice } from "../conformance/campaign/engines.ts";
import { FAMILY_NAMES } from "../conformance/campaign/families.ts";
import { PLANTED_BUG_NAMES } from "../conformance/planted.ts";
import { ENGINE_NAMES } from "../engines/registry.ts";
import { campaignResult, mergeResults, ResultJson, MergeError, type CampaignResult } from "../conformance/campaign/result.ts";
import { buildReport, divergenceDocument, reportMarkdown } from "../conformance/campaign/report.ts";
import { junitXml } from "../conformance/campaign/junit.ts";
import { caseFileName, caseVector } from "../conformance/campaign/saved-cases.ts";
import { parseExpectations, unknownRule, type Expectation } from "../conformance/campaign/expectations.ts";
import { gapByName } from "../conformance/campaign/gaps.ts";
import { traceLine } from "../trace/text.ts";
import type { TraceRecord } from "../trace/record.ts";
import type { CaseOutcome } from "../conformance/campaign/run.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { AsyncEngine } from "../contract/engine.ts";

/** `names` joined with ", ", in lines of at most `width` columns indented by `indent`. */
function wrapList(names: readonly string[], indent: number, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const [i, name] of names.entries()) {
    const word = i < names.length - 1 ? `${name},` : name;
    if (line !== "" && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = "";
    }
    line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.map((l) => " ".repeat(indent) + l).join("\n");
}

export const CONFORM_HELP = `Usage: ringspec conform [options]
       ringspec conform merge FILE... [--json] [--report FILE] [--junit FILE]

Runs generated cases on two engines side by side and compares them after every step: the events
and the full state (registers, segment caches, control registers, MSRs, the run-time cpu block,
every byte either engine wrote). Each divergence is grouped under the spec rule at which the
engines part ways, shrunk to a minimal case, and printed with the one command that replays it.

Engines:
  --a NAME              the reference engine (default spec)
  --b NAME              the engine under test (default impl); NAME is one of
                        ${CAMPAIGN_ENGINE_NAMES.join(", ")}
  --cmd "COMMAND"       with --a/--b process: a command that speaks the JSON-lines engine
                        protocol (docs/protocol.md), e.g. "ringspec serve --engine impl"
  --request-timeout S   a process engine that does not answer a request within S seconds
                        counts as hung (default 10): the case is reported, the engine restarted
  --qemu PATH, --qemu-cpu MODEL, --bochs PATH, --gdb HOST:PORT   as for vectors check
  --plant BUG           with --b spec|impl: that engine with a known bug planted on top, in this
                        process (as \`ringspec serve --plant BUG\` serves it), to see what a
                        campaign reports; BUG is one of
${wrapList(PLANTED_BUG_NAMES, 24, 100)}

Cases:
  --runs N              cases in the campaign (default 1000); or
  --time SECONDS        run cases until the time is up
  --seed S              the campaign's seed (default: random, printed); case i is always the
                        same case for the same seed and families
  --families LIST       comma-separated (no spaces), default all of
${wrapList(FAMILY_NAMES, 24, 100)}
  --profile intel|amd|both   vendor behaviour (default both: each case's own)
  --case I              run only case I (a replay: it is shrunk and printed in full)
  --every N             compare the states every N steps (events every step); a difference
                        re-runs that window step by step (default 1)
  --timeout SECONDS     wall-clock limit per case (default 30)
  --no-shrink           report failures as found
  --shrink-per-rule N   failures shrunk per rule, the first ones by case index (default 3)
  --shrink-time S       wall-clock budget of one shrink (default 60; emulators take ~1 s a run)

Scale:
  --workers N           run cases in N worker threads (same results as one thread)
  --shard I/N           run the I-th of N deterministic slices of the campaign (CI matrices);
                        combine the shards' --json outputs with \`conform merge\`

Expectations:
  --expect-deviation RULE-ID   divergences under this rule are expected (repeatable)
  --expectations FILE   a ringspec-expectations/1 file of rules with reasons

Output:
  --json                print the result as one JSON object (ringspec-conform/1) instead
  --junit FILE          JUnit XML, one test case per case
  --report FILE         the deviation report in Markdown, FILE.json beside it, and each
                        rule's example as a ringspec-divergence/1 document in FILE.divergences/
                        (\`ringspec trace DOC --html OUT\` draws it)
  --save-cases DIR      each shrunk failure as a ringspec-vector/1 file (expected = engine A)
  -h, --help            this help

Exit status: 0 every case agreed, 1 a divergence or an engine error, 2 bad arguments or an engine
that could not be started, 130 interrupted (Ctrl-C) with nothing failed; reports, --json and
--junit are written in every case.`;

const OPTIONS = [
  HELP_OPTION,
  { name: "a", value: true }, { name: "b", value: true }, { name: "cmd", value: true }, { name: "request-timeout", value: true },
  { name: "plant", value: true }, { name: "qemu", value: true }, { name: "qemu-cpu", value: true }, { name: "bochs", value: true }, { name: "gdb", value: true },
  { name: "runs", value: true }, { name: "time", value: true }, { name: "seed", value: true }, { name: "families", value: true },
  { name: "profile", value: true }, { name: "case", value: true }, { name: "every", value: true }, { name: "timeout", value: true },
  { name: "no-shrink", value: false }, { name: "shrink-per-rule", value: true }, { name: "shrink-time", value: true },
  { name: "workers", value: true }, { name: "shard", value: true },
  { name: "expectations", value: true },
  { name: "json", value: false }, { name: "junit", value: true }, { name: "report", value: true }, { name: "save-cases", value: true },
];

const wholeNumber = (option: string, text: string, min: number, max: number): number => {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${option}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
};

const seconds = (option: string, text: string): number => {
  const s = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(s > 0) || s > 86_400 * 30) throw new UsageError(`--${option}: expected a number of seconds above 0, got ${JSON.stringify(text)}`);
  return Math.max(1, Math.round(s * 1000));
};

/** `--expect-deviation` may repeat: taken out before the ordinary parsing. */
function takeRepeated(argv: readonly string[], name: string): { rest: string[]; values: string[] } {
  const rest: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === `--${name}`) {
      const v = argv[i + 1];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      values.push(v);
      i++;
    } else if (arg.startsWith(`--${name}=`)) values.push(arg.slice(name.length + 3));
    else rest.push(arg);
  }
  return { rest, values };
}

function engineChoice(which: "a" | "b", name: string, args: ReturnType<typeof parseArgs>): EngineChoice {
  if (!CAMPAIGN_ENGINE_NAMES.includes(name)) throw new UsageError(`--${which}: expected one of ${CAMPAIGN_ENGINE_NAMES.join(", ")}, got ${JSON.stringify(name)}`);
  const out: { -readonly [K in keyof EngineChoice]: EngineChoice[K] } = { name };
  if (name === "process") {
    const cmd = args.values.get("cmd");
    if (cmd === undefined || cmd.trim() === "") throw new UsageError(`--${which} process needs --cmd "COMMAND"`);
    out.command = cmd;
    const t = args.values.get("request-timeout");
    if (t !== undefined) out.requestTimeoutMs = seconds("request-timeout", t);
  }
  const emulator: Record<string, string> = {};
  for (const [option, owner, key] of [["qemu", "qemu", "qemu"], ["qemu-cpu", "qemu", "qemuCpu"], ["bochs", "bochs", "bochs"], ["gdb", "gdb", "gdb"]] as const) {
    const v = args.values.get(option);
    if (v !== undefined && name === owner) emulator[key] = v;
  }
  if (Object.keys(emulator).length > 0) out.emulator = emulator;
  const plant = args.values.get("plant");
  if (plant !== undefined && which === "b") {
    if (!ENGINE_NAMES.includes(name)) throw new UsageError(`--plant goes with --b ${ENGINE_NAMES.join(" or ")} (a process engine plants with \`serve --plant\`), not --b ${name}`);
    if (!PLANTED_BUG_NAMES.includes(plant)) throw new UsageError(`--plant: expected one of ${PLANTED_BUG_NAMES.join(", ")}, got ${JSON.stringify(plant)}`);
    out.plant = plant;
  }
  return out;
}

function parseShard(text: string | undefined): { index: number; count: number } {
  if (text === undefined) return { index: 1, count: 1 };
  const m = /^([0-9]+)\/([0-9]+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || !(count >= 1 && count <= 10_000 && index >= 1 && index <= count)) throw new UsageError(`--shard: expected I/N with 1 <= I <= N, got ${JSON.stringify(text)}`);
  return { index, count };
}

function parseFamilies(text: string | undefined): string[] {
  if (text === undefined) return [...FAMILY_NAMES];
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0) throw new UsageError("--families: expected at least one family");
  for (const f of list) if (!FAMILY_NAMES.includes(f)) throw new UsageError(`--families: no family ${JSON.stringify(f)} (families: ${FAMILY_NAMES.join(", ")})`);
  if (new Set(list).size !== list.length) throw new UsageError("--families: a family is named twice");
  return list;
}

interface Parsed {
  readonly plan: CampaignPlan;
  readonly expectations: readonly Expectation[];
  readonly json: boolean;
  readonly junit: string | undefined;
  readonly report: string | undefined;
  readonly saveCases: string | undefined;
  /** The arguments that pick the same campaign (for replay commands). */
  readonly replayBase: readonly string[];
}

function parse(argv: readonly string[]): Parsed | "help" {
  const { rest, values: expectFlags } = takeRepeated(argv, "expect-deviation");
  const args = parseArgs(rest, OPTIONS, "conform");
  if (args.flags.has("help")) return "help";
  if (args.positionals.length > 0) throw new UsageError(`conform: unexpected argument ${JSON.stringify(args.positionals[0])} (see conform --help)`);
  const aName = args.values.get("a") ?? "spec";
  const bName = args.values.get("b") ?? "impl";
  if (aName === "process" && bName === "process") throw new UsageError("--a and --b cannot both be process engines (one --cmd)");
  if (args.values.has("cmd") && aName !== "process" && bName !== "process") throw new UsageError("--cmd goes with --a process or --b process");
  const a = engineChoice("a", aName, args);
  const b = engineChoice("b", bName, args);
  if (args.values.has("runs") && args.values.has("time")) throw new UsageError("--runs and --time: give one of them");
  const only = args.values.get("case");
  const caseIndex = only === undefined ? undefined : wholeNumber("case", only, 0, Number.MAX_SAFE_INTEGER);
  const runs = args.values.has("time") ? undefined : wholeNumber("runs", args.values.get("runs") ?? "1000", 0, 1e9);
  const timeMs = args.values.has("time") ? seconds("time", args.values.get("time")!) : undefined;
  const seedText = args.values.get("seed");
  if (seedText !== undefined && !/^-?[0-9]+$/.test(seedText)) throw new UsageError(`--seed: expected a whole number, got ${JSON.stringify(seedText)}`);
  const seed = seedText === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedText) | 0;
  if (seedText !== undefined && String(seed) !== seedText.replace(/^(-?)0+(?=\d)/, "$1")) throw new UsageError(`--seed: expected a 32-bit whole number, got ${seedText}`);
  const families = parseFamilies(args.values.get("families"));
  const profileText = args.values.get("profile") ?? "both";
  const profile: ProfileName | undefined = profileText === "both" ? undefined : parseProfile(profileText);
  const workers = wholeNumber("workers", args.values.get("workers") ?? "1", 1, 64);
  const every = wholeNumber("every", args.values.get("every") ?? "1", 1, 1_000_000);
  const expectations: Expectation[] = [];
  for (const rule of expectFlags) {
    const problem = unknownRule(rule);
    if (problem !== null) throw new UsageError(`--expect-deviation: ${problem}`);
    expectations.push({ rule, reason: "given with --expect-deviation" });
  }
  const expectFile = args.values.get("expectations");
  if (expectFile !== undefined) {
    // cli/input.ts: regular files only, size-capped (a FIFO or a device is refused, never read).
    const text = readText(expectFile);
    try {
      expectations.push(...parseExpectations(text, expectFile));
    } catch (e) {
      throw new InputError((e as Error).message);
    }
  }
  const shrink = !args.flags.has("no-shrink");
  const plan: CampaignPlan = {
    a, b, seed, families, profile,
    runs: caseIndex === undefined ? runs : undefined,
    timeMs: caseIndex === undefined ? timeMs : undefined,
    shard: parseShard(args.values.get("shard")),
    workers: caseIndex === undefined ? workers : 1,
    every,
    rule: inProcess(a) && inProcess(b) ? "exact" : "architectural",
    caseTimeoutMs: args.values.has("timeout") ? seconds("timeout", args.values.get("timeout")!) : 30_000,
    expected: [...new Set(expectations.filter((e) => gapByName(e.rule) === undefined).map((e) => e.rule))],
    gaps: [...new Set(expectations.filter((e) => gapByName(e.rule) !== undefined).map((e) => e.rule))],
    shrinkPerRule: !shrink ? 0 : caseIndex !== undefined ? 1 : wholeNumber("shrink-per-rule", args.values.get("shrink-per-rule") ?? "3", 0, 1_000_000),
    shrinkRuns: 400,
    shrinkMs: args.values.has("shrink-time") ? seconds("shrink-time", args.values.get("shrink-time")!) : 60_000,
    ...(caseIndex === undefined ? {} : { only: [caseIndex] }),
  };
  const replayBase = ["--a", a.name, "--b", b.name];
  if (b.plant !== undefined) replayBase.push("--plant", b.plant);
  if (a.command !== undefined || b.command !== undefined) replayBase.push("--cmd", (a.command ?? b.command)!);
  for (const option of ["qemu", "qemu-cpu", "bochs", "gdb", "request-timeout"]) {
    const v = args.values.get(option);
    if (v !== undefined) replayBase.push(`--${option}`, v);
  }
  replayBase.push("--seed", String(seed), "--families", families.join(","));
  if (profile !== undefined) replayBase.push("--profile", profile);
  if (every > 1) replayBase.push("--every", String(every));
  for (const e of expectFlags) replayBase.push("--expect-deviation", e);
  if (expectFile !== undefined) replayBase.push("--expectations", expectFile);
  return { plan, expectations, json: args.flags.has("json"), junit: args.values.get("junit"), report: args.values.get("report"), saveCases: args.values.get("save-cases"), replayBase };
}

// ------------------------------------------------------------------------------------------------
// Progress

interface Progress {
  update(p: CampaignProgress): void;
  stop(): void;
}

function progress(io: Io, total: number | undefined, timeMs: number | undefined): Progress {
  const started = Date.now();
  if (io !== processIo) return { update() {}, stop() {} };
  const rate = (p: CampaignProgress) => Math.round(p.done / Math.max(0.001, (Date.now() - started) / 1000));
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: "conform |{bar}| {percentage}% {value}/{total} {unit} | {failed} failed | {rate} cases/s | {phase}", hideCursor: true, clearOnComplete: true, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    const byTime = total === undefined;
    bar.start(byTime ? Math.round((timeMs ?? 0) / 1000) : total, 0, { failed: 0, rate: 0, phase: "cases", unit: byTime ? "s" : "cases" });
    let shrinking = false;
    return {
      update(p) {
        if (p.phase === "shrinking" && !shrinking) {
          shrinking = true;
          bar.setTotal(p.total ?? 1);
        }
        const value = p.phase === "shrinking" ? p.done : byTime ? Math.min(Math.round((Date.now() - started) / 1000), Math.round((timeMs ?? 0) / 1000)) : p.done;
        bar.update(value, { failed: p.failed, rate: p.phase === "cases" ? rate(p) : "-", phase: p.phase === "shrinking" ? `shrinking (${p.done}/${p.total})` : `${p.done} cases`, unit: p.phase === "shrinking" ? "shrunk" : byTime ? "s" : "cases" });
      },
      stop() {
        bar.stop();
      },
    };
  }
  // A log gets the first line as soon as the first case is done (it shows the campaign runs and how
  // fast), then one every 5 s.
  let last: number | undefined;
  return {
    update(p) {
      if (last !== undefined && Date.now() - last < 5000) return;
      last = Date.now();
      io.err(p.phase === "shrinking" ? `conform: shrinking ${p.done} of ${p.total} failures` : `conform: ${p.done}${total === undefined ? "" : `/${total}`} cases, ${p.failed} failed, ${rate(p)} cases/s`);
    },
    stop() {},
  };
}

// ------------------------------------------------------------------------------------------------
// Printing

const MAX_LISTED = 20;

/** "1 instruction", "3 bytes". */
export function sized(n: number, unit: string): string {
  return `${n} ${n === 1 ? unit.replace(/s$/, "") : unit}`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]!))).join("  ").trimEnd());
}

function failureBlock(result: CampaignResult, o: CampaignResult["outcomes"][number], saved: ReadonlyMap<number, string>): string[] {
  const { a, b } = result.engines;
  if (o.status === "error")
    return o.error_kind === "generator"
      ? [`ERROR case ${o.index} (${o.family}): ${oneLine(o.reason ?? "")}`, `  replay: ${o.replay ?? ""}`]
      : [`ERROR case ${o.index} (${o.family}): ${o.side === "a" ? a : b}: ${o.error_kind}: ${oneLine(o.reason ?? "")} (engine restarted)`, `  replay: ${o.replay ?? ""}`];
  const head = `${o.status === "expected" ? `EXPECTED${o.gap === undefined ? "" : ` (${o.gap})`}` : "FAIL"} case ${o.index} (${o.family}): ${o.rule} — ${o.why ?? ""}`;
  const d = o.detail as
    | {
        step: number; event_a: string; event_b: string; instruction: { bytes: string; disassembly: string } | null;
        differences: { field: string; a: unknown; b: unknown }[]; last_steps: TraceRecord[]; rules: string[]; case: string;
        shrunk: boolean; original_size: number; shrink_runs: number; not_compared: string[];
      }
    | undefined;
  if (d === undefined) return [`${head} (step ${o.step}, ${sized(o.size, o.unit)}, not shrunk)`, `  replay: ${o.replay ?? ""}`];
  const lines = [head];
  const insn = d.instruction === null ? "an event at an instruction boundary" : `${d.instruction.disassembly}${d.instruction.bytes === "" ? "" : ` (${d.instruction.bytes.replace(/(..)(?!$)/g, "$1 ")})`}`;
  lines.push(`  step ${d.step}: ${insn}`, `    ${a}: ${d.event_a}`, `    ${b}: ${d.event_b}`);
  if (d.last_steps.length > 1) {
    lines.push(`  last steps (${a}):`);
    for (const r of d.last_steps) lines.push(`    ${traceLine(r)}`);
  }
  lines.push(...table([["  field", a, b], ...d.differences.slice(0, 40).map((x) => [`  ${x.field}`, String(x.a), String(x.b)])]));
  if (d.differences.length > 40) lines.push(`  … ${d.differences.length - 40} more differing fields (see --json)`);
  if (d.not_compared.length > 0) lines.push(`  not compared (an engine cannot observe them): ${d.not_compared.join(" ")}`);
  lines.push(`  minimal case: ${sized(o.size, o.unit)}${d.shrunk ? `, shrunk from ${d.original_size} in ${d.shrink_runs} runs` : ""}: ${d.case.length > 400 ? d.case.slice(0, 400) + "…" : d.case}`);
  if (d.rules.length > 0) lines.push(`  rules at that step: ${d.rules.join(", ")}`);
  lines.push(`  replay: ${o.replay ?? ""}`);
  const file = saved.get(o.index);
  if (file !== undefined) lines.push(`  saved: ${file} (npx ringspec vectors check ${shellQuote(file)} --engine ${a === "spec" || a === "impl" ? a : "spec"})`);
  return lines;
}

function summaryLines(result: CampaignResult): string[] {
  const r = result;
  const lines = ["summary:"];
  lines.push(`  cases            ${r.cases} (${r.passed} passed, ${r.divergences} divergences, ${r.errors} engine errors, ${r.expected_deviations} expected deviations, ${r.skipped} skipped)${r.interrupted ? " — interrupted" : ""}`);
  lines.push(`  steps compared   ${r.steps_compared}`);
  const rules = new Map<string, number>();
  for (const o of r.outcomes) if (o.status === "fail") rules.set(o.rule!, (rules.get(o.rule!) ?? 0) + 1);
  lines.push(`  divergences      ${r.divergences} (${r.distinct_signatures} distinct signatures)${rules.size === 0 ? "" : ` under ${[...rules].map(([k, n]) => `${k} (${n})`).join(", ")}`}`);
  if (r.expected_deviations > 0) {
    const seen = new Map<string, number>();
    for (const o of r.outcomes) if (o.status === "expected") seen.set(o.gap ?? o.rule!, (seen.get(o.gap ?? o.rule!) ?? 0) + 1);
    lines.push(`  expected         ${[...seen].map(([k, n]) => `${k} (${n})`).join(", ")}`);
  }
  if (r.coverage !== null) {
    const c = r.coverage;
    const pct = (x: number, y: number) => (y === 0 ? "0" : ((100 * x) / y).toFixed(1));
    const missed = c.transition_missed.length === 0 ? "" : c.transition_missed.length <= 30 ? `; not reached: ${c.transition_missed.join(" ")}` : `; ${c.transition_missed.length} not reached (see --json)`;
    lines.push(`  rule coverage    ${c.hit.length} of ${c.rules} rules (${pct(c.hit.length, c.rules)}%); transition rules ${c.transition_hit} of ${c.transition_rules} (${pct(c.transition_hit, c.transition_rules)}%)${missed}`);
  } else lines.push(`  rule coverage    not measured (the spec is neither engine)`);
  lines.push(`  not compared     ${r.not_compared.length === 0 ? "nothing (every field of the state is compared)" : r.not_compared.join(" ")}`);
  if (r.restarts.a + r.restarts.b > 0) lines.push(`  restarts         ${r.engines.a} ${r.restarts.a}, ${r.engines.b} ${r.restarts.b}`);
  lines.push(`  speed            ${r.cases_per_s} cases/s, ${r.steps_per_s} steps compared/s (${r.elapsed_s.toFixed(1)} s, ${r.campaign.workers} worker${r.campaign.workers === 1 ? "" : "s"})`);
  return lines;
}

/** Writes the files the options ask for; returns the saved case files by case index. */
function writeOutputs(result: CampaignResult, options: { junit: string | undefined; report: string | undefined; saveCases: string | undefined }, io: Io): Map<number, string> {
  const saved = new Map<number, string>();
  const write = (file: string, text: string) => {
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    } catch (e) {
      io.err(`ringspec: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  if (options.saveCases !== undefined) {
    for (const o of result.outcomes) {
      if (o.status !== "fail" && o.status !== "expected") continue;
      const vector = caseVector(result, o);
      if (typeof vector === "string") continue;
      const file = join(options.saveCases, caseFileName(o));
      write(file, JSON.stringify(vector, null, 1) + "\n");
      saved.set(o.index, file);
    }
  }
  if (options.junit !== undefined) write(options.junit, junitXml(result));
  if (options.report !== undefined) {
    const report = buildReport(result);
    const dir = `${options.report}.divergences`;
    const links = new Map<string, string>();
    for (const g of report.groups) {
      const doc = divergenceDocument(result, g.example);
      if (doc === null) continue;
      const name = `${g.rule.replace(/[^A-Za-z0-9_-]/g, "_")}.json`;
      write(join(dir, name), JSON.stringify(doc, null, 1) + "\n");
      links.set(g.rule, `${basename(dir)}/${name}`);
    }
    write(options.report, reportMarkdown(report, links));
    write(`${options.report.replace(/\.md$/, "")}.json`, JSON.stringify({ ...report, divergence_documents: Object.fromEntries(links) }, null, 1) + "\n");
  }
  return saved;
}

function exitStatus(result: CampaignResult): number {
  if (result.failed > 0) return 1;
  return result.interrupted ? 130 : 0;
}

// ------------------------------------------------------------------------------------------------

export async function conformCommand(argv: readonly string[], io: Io): Promise<number> {
  if (argv[0] === "merge") return mergeCommand(argv.slice(1), io);
  const parsed = parse(argv);
  if (parsed === "help") {
    io.out(CONFORM_HELP + "\n");
    return 0;
  }
  const { plan } = parsed;
  // Both engines must start: an engine that cannot is unusable input (exit 2), not a failed case.
  const names = { a: plan.a.name, b: plan.b.name };
  const notCompared: string[] = [];
  // Engines in other processes stay open for the campaign (starting one may take seconds).
  const opened: { a?: AsyncEngine; b?: AsyncEngine } = {};
  for (const side of ["a", "b"] as const) {
    try {
      const engine = await engineSource(plan[side]).open();
      names[side] = engine.capabilities.name;
      notCompared.push(...engine.capabilities.unobservable);
      const profiles = engine.capabilities.profiles;
      if (plan.profile !== undefined && !profiles.includes(plan.profile)) {
        await engine.close();
        throw new UsageError(`--profile: ${engine.capabilities.name} models only ${profiles.join(", ")}`);
      }
      if (plan.profile === undefined && profiles.length < 2) {
        await engine.close();
        throw new UsageError(`--profile both: ${engine.capabilities.name} models only ${profiles.join(", ")} (give --profile ${profiles[0]})`);
      }
      if (inProcess(plan[side])) await engine.close();
      else opened[side] = engine;
    } catch (e) {
      await opened.a?.close();
      if (e instanceof UsageError) throw e;
      io.err(`ringspec: conform: the ${side === "a" ? "reference engine" : "engine under test"} (${plan[side].name}) could not be started: ${oneLine(e instanceof Error ? e.message : String(e))}`);
      return 2;
    }
  }

  const out = new BufferedOut(io);
  if (!parsed.json) {
    const what = plan.only !== undefined ? `case ${plan.only.join(",")}` : plan.runs !== undefined ? `${plan.runs} cases` : `${(plan.timeMs ?? 0) / 1000} s`;
    out.line(`ringspec conform: ${names.a} vs ${names.b} (${plan.rule} comparison), seed ${plan.seed}, ${what}${plan.shard.count > 1 ? `, shard ${plan.shard.index}/${plan.shard.count}` : ""}, ${plan.workers} worker${plan.workers === 1 ? "" : "s"}`);
    const expected = [...plan.expected, ...(plan.gaps ?? [])];
    out.line(`  families: ${plan.families.join(", ")}; profile ${plan.profile ?? "both"}${expected.length > 0 ? `; expected deviations: ${expected.join(", ")}` : ""}`);
    out.flush();
  }
  const stopped = { value: false };
  const onInterrupt = () => {
    if (stopped.value) process.exit(130);
    stopped.value = true;
    io.err("conform: interrupted: finishing the cases in flight and writing what was found (Ctrl-C again to quit at once)");
  };
  if (io === processIo) process.on("SIGINT", onInterrupt);
  const bar = progress(io, plan.only?.length ?? (plan.runs === undefined ? undefined : Math.ceil((plan.runs - (plan.shard.index - 1)) / plan.shard.count)), plan.timeMs);
  let run;
  try {
    run = await runCampaign(plan, { onProgress: (p) => bar.update(p), stopped, engines: opened });
  } finally {
    bar.stop();
    if (io === processIo) process.off("SIGINT", onInterrupt);
  }
  const reasons = new Map(parsed.expectations.map((e) => [e.rule, e.reason]));
  const replay = (o: CaseOutcome) => ["npx", "ringspec", "conform", ...parsed.replayBase, "--case", String(o.index)].map(shellQuote).join(" ");
  const result = campaignResult(plan, run, { expectedReasons: reasons, notCompared: [...new Set(notCompared)], replay });
  const saved = writeOutputs(result, parsed, io);
  if (parsed.json) {
    out.line(JSON.stringify(result));
    out.flush();
    return exitStatus(result);
  }
  const listed = result.outcomes.filter((o) => o.status === "fail" || o.status === "error" || (o.status === "expected" && o.detail !== undefined));
  const detailed = listed.filter((o) => o.detail !== undefined || o.status === "error");
  const brief = listed.filter((o) => o.detail === undefined && o.status !== "error");
  for (const o of detailed.slice(0, MAX_LISTED)) for (const l of failureBlock(result, o, saved)) out.line(l);
  for (const o of brief.slice(0, MAX_LISTED)) for (const l of failureBlock(result, o, saved)) out.line(l);
  const more = Math.max(0, detailed.length - MAX_LISTED) + Math.max(0, brief.length - MAX_LISTED);
  if (more > 0) out.line(`… ${more} more failures (all of them in --json, --report and --junit)`);
  const skippedReasons = new Set(result.outcomes.filter((o) => o.status === "skipped").map((o) => o.reason));
  for (const reason of skippedReasons) out.line(`SKIPPED ${result.outcomes.filter((o) => o.reason === reason && o.status === "skipped").length} cases: ${reason}`);
  for (const l of summaryLines(result)) out.line(l);
  out.line(`${result.passed} passed, ${result.failed} failed`);
  out.flush();
  return exitStatus(result);
}

// ------------------------------------------------------------------------------------------------
// merge

export const MERGE_HELP = `Usage: ringspec conform merge FILE... [--json] [--report FILE] [--junit FILE]

Combines the --json results of the shards of one campaign (same engines, seed, families, profile,
comparison and expectations; e.g. \`--shard 1/4\` … \`--shard 4/4\` on four CI machines) into one
result: counts, failures, rule coverage, speed (the slowest shard's time). Prints the summary (or
the merged JSON with --json) and writes the report and JUnit XML as conform does.`;

async function mergeCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_OPTION, { name: "json", value: false }, { name: "report", value: true }, { name: "junit", value: true }], "conform merge");
  if (args.flags.has("help")) {
    io.out(MERGE_HELP + "\n");
    return 0;
  }
  if (args.positionals.length === 0) throw new UsageError("conform merge: expected the --json result files of the shards");
  const parts = args.positionals.map((file) => {
    const text = readText(file);
    let value: unknown;
    try {
      value = JSON.parse(text.trim().split("\n").at(-1) ?? "");
    } catch (e) {
      throw new InputError(`${file}: not a conform --json result (${oneLine((e as Error).message)})`);
    }
    const r = ResultJson.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new InputError(`${file}: $${issue.path.map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`)).join("")}: ${issue.message}`);
    }
    return { file, result: r.data };
  });
  let merged: CampaignResult;
  try {
    merged = mergeResults(parts);
  } catch (e) {
    if (e instanceof MergeError) throw new InputError(e.message);
    throw e;
  }
  writeOutputs(merged, { junit: args.values.get("junit"), report: args.values.get("report"), saveCases: undefined }, io);
  const out = new BufferedOut(io);
  if (args.flags.has("json")) out.line(JSON.stringify(merged));
  else {
    out.line(`ringspec conform merge: ${parts.length} result${parts.length === 1 ? "" : "s"} of ${merged.engines.a} vs ${merged.engines.b}, seed ${merged.campaign.seed}`);
    for (const o of merged.outcomes.filter((x) => x.status === "fail" || x.status === "error").slice(0, MAX_LISTED)) for (const l of failureBlock(merged, o, new Map())) out.line(l);
    for (const l of summaryLines(merged)) out.line(l);
    out.line(`${merged.passed} passed, ${merged.failed} failed`);
  }
  out.flush();
  return merged.failed > 0 ? 1 : 0;
}


