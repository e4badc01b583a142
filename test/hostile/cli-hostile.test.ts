// Issue 8's hostile inputs against the command line, each built as a file: the page hog, many
// memory entries, a 5 MiB saved state reloaded, the block bomb, a FIFO, /dev/zero, a name with
// escapes, each state impl alone used to refuse, documents past each cap. Every case must end
// with its exit status and (for a refusal) one stderr line naming the file and the field, never a
// stack trace, in bounded time and memory — measured in child processes (test/hostile/measure.mjs,
// from process.resourceUsage()), several cases a process to keep `npm test` quick. The full
// sizes run with RINGSPEC_HOSTILE=full (`npm run fuzz`).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envChoice } from "../helpers/env.ts";
import { blockBomb, bigMemory, formerlyImplOnly, manyEntries, pageHog, stateFile, straddlingEntries } from "./cases.ts";
import type { Job, Measured } from "./measure-main.ts";
import { MAX_MEMORY_ENTRIES, PAGE_BUDGET } from "../../contract/limits.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MEASURE = join(ROOT, "test/hostile/measure.mjs");
const BIN = join(ROOT, "cli/bin.js");
const SYSCALL_BASIC = join(ROOT, "conformance/vectors/syscall-basic.json");

/** The sizes with RINGSPEC_HOSTILE=full; small but representative ones by default. */
const FULL = envChoice("RINGSPEC_HOSTILE", ["full"] as const) === "full";
const SIZES = FULL
  ? { hogPages: 40_000, entries: 30_000, bigBytes: 5 << 20, bombBlocks: 491_520, bombSteps: 1_000_000 }
  : { hogPages: 2_000, entries: 2_000, bigBytes: 5 << 20, bombBlocks: 20_000, bombSteps: 60_000 };
/** Bounds every measured case must stay within (generous: the machine is shared and busy). */
const LIMITS = FULL ? { seconds: 300, rssMiB: 2_500 } : { seconds: 90, rssMiB: 1_200 };

let dir = "";
const file = (name: string) => join(dir, name);

/** Runs the jobs in one child process; each job's measurement as soon as the child reports it
 *  (one line per job, in order), so that a test waits only for the jobs it checks. */
function measure(jobs: Job[]): Promise<Measured>[] {
  const jobsFile = file(`jobs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(jobsFile, JSON.stringify(jobs));
  const settle = jobs.map(() => ({ resolve: (_: Measured) => {}, reject: (_: Error) => {} }));
  const results = settle.map((s) => new Promise<Measured>((resolve, reject) => Object.assign(s, { resolve, reject })));
  // A job nobody awaits yet must not count as an unhandled rejection when the child fails.
  for (const r of results) r.catch(() => {});
  const child = spawn(process.execPath, [MEASURE, jobsFile], { cwd: ROOT, timeout: LIMITS.seconds * 1000 * jobs.length, stdio: ["ignore", "pipe", "pipe"] });
  let pending = "";
  let stderr = "";
  let next = 0;
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    for (let at = pending.indexOf("\n"); at >= 0; at = pending.indexOf("\n")) {
      const line = pending.slice(0, at);
      pending = pending.slice(at + 1);
      if (line !== "" && next < settle.length) settle[next++]!.resolve(JSON.parse(line) as Measured);
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.on("close", (code, signal) => {
    const error = new Error(`measure.mjs failed (exit ${code}, signal ${signal}, ${next} of ${jobs.length} jobs reported): ${stderr.slice(0, 2000)}`);
    while (next < settle.length) settle[next++]!.reject(error);
  });
  return results;
}

/** What every case must do: its exit status, no stack trace, within the bounds; a refusal is one
 *  stderr line naming the file and matching `message`. */
function expectCase(m: Measured, status: number, message?: RegExp): void {
  expect({ name: m.name, status: m.status }).toEqual({ name: m.name, status });
  for (const line of m.stderr) {
    expect(line).not.toMatch(/^\s+at /);
    expect(line).not.toContain("internal error");
  }
  if (message !== undefined) {
    expect(m.stderr, m.name).toHaveLength(1);
    expect(m.stderr[0], m.name).toMatch(message);
  }
  expect(m.seconds, `${m.name}: seconds`).toBeLessThan(LIMITS.seconds);
  expect(m.maxRssMiB, `${m.name}: peak resident memory (MiB)`).toBeLessThan(LIMITS.rssMiB);
}

/** The figures, for the README (`npm run fuzz` prints the full sizes'). */
function report(ms: Measured[]): void {
  for (const m of ms) console.log(`hostile: ${m.name}: exit ${m.status}, ${m.seconds.toFixed(2)} s, CPU ${m.cpuSeconds.toFixed(2)} s, peak RSS ${m.maxRssMiB.toFixed(0)} MiB, ${m.stdoutBytes} bytes out`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ringspec-hostile-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The cases of the first and the 5 MiB test (their files and jobs; built on first use).
 */
function quickJobs(): { jobs: Job[]; outside: ReturnType<typeof formerlyImplOnly> } {
  // A FIFO named *.json (nothing ever writes to it) and the same FIFO in a directory of vectors.
  mkdirSync(file("vectors"));
  execFileSync("mkfifo", [file("vectors/fifo.json")]);
  writeFileSync(file("vectors/good.json"), readFileSync(SYSCALL_BASIC));
  // A file above the size cap: sparse, so it costs no disk (refused by its size, never read).
  const huge = file("huge.json");
  closeSync(openSync(huge, "w"));
  truncateSync(huge, 600 * 1024 * 1024);
  writeFileSync(file("entries-cap.json"), manyEntries(MAX_MEMORY_ENTRIES + 1));
  writeFileSync(file("pages-cap.json"), straddlingEntries(PAGE_BUDGET / 2 + 1));
  writeFileSync(file("deep.json"), "[".repeat(200_000));
  writeFileSync(file("values.json"), `[${"0,".repeat(1_100_000)}0]`);
  const outside = formerlyImplOnly();
  outside.forEach(([, text], i) => writeFileSync(file(`outside-${i}.json`), text));
  writeFileSync(file("big.json"), stateFile(bigMemory(SIZES.bigBytes)));
  const jobs: Job[] = [
    { name: "FIFO", argv: ["run", file("vectors/fifo.json")] },
    { name: "FIFO in a directory", argv: ["vectors", "check", file("vectors")] },
    { name: "/dev/zero", argv: ["run", "/dev/zero"] },
    { name: "/dev/zero as a vector", argv: ["vectors", "check", "/dev/zero"] },
    { name: "above the file-size cap", argv: ["run", huge] },
    { name: "more memory entries than the cap", argv: ["run", file("entries-cap.json")] },
    { name: "more pages than the page budget", argv: ["run", file("pages-cap.json")] },
    { name: "nested too deep", argv: ["run", file("deep.json")] },
    { name: "too many JSON values", argv: ["run", file("values.json")] },
    ...outside.flatMap(([name], i) => [
      { name: `${name} (impl)`, argv: ["run", file(`outside-${i}.json`), "--engine", "impl"] },
      { name: `${name} (spec)`, argv: ["run", file(`outside-${i}.json`), "--engine", "spec"] },
      { name: `${name} (vectors check)`, argv: ["vectors", "check", file(`outside-${i}.json`), "--engine", "impl"] },
    ]),
    { name: "5 MiB of memory saved", argv: ["run", file("big.json"), "--engine", "impl", "--out", file("big-saved.json")] },
    { name: "5 MiB saved state reloaded", argv: ["run", file("big-saved.json"), "--engine", "spec", "--out", file("big-again.json")] },
  ];
  return { jobs, outside };
}

/** The page hog's, many entries' and the block bomb's jobs for one engine (their files built once). */
function perEngineJobs(): { hog: (engine: string) => Job[]; bomb: (engine: string) => Job[] } {
  writeFileSync(file("hog.json"), stateFile(pageHog(SIZES.hogPages)));
  writeFileSync(file("entries.json"), manyEntries(SIZES.entries));
  writeFileSync(file("bomb.json"), stateFile(blockBomb(SIZES.bombBlocks)));
  const hog = (engine: string): Job[] => [
    { name: `page hog (${engine})`, argv: ["run", file("hog.json"), "--engine", engine, "--out", file(`hog-${engine}.json`)] },
    { name: `page hog saved state reloaded (${engine})`, argv: ["run", file(`hog-${engine}.json`), "--engine", engine, "--max-steps", "0", "--out", file(`hog-${engine}-again.json`)] },
    { name: `many memory entries (${engine})`, argv: ["run", file("entries.json"), "--engine", engine, "--out", file(`entries-${engine}.json`)] },
    // A traced run prints steps and never builds the final document. (impl's state() copies
    // guest memory at every traced step: a few hundred steps.)
    { name: `page hog traced (${engine})`, argv: ["run", file("hog.json"), "--engine", engine, "--trace", "--json", "--max-steps", engine === "spec" ? "2000" : "200"] },
  ];
  const bomb = (engine: string): Job[] => [
    { name: `block bomb (${engine})`, argv: ["run", file("bomb.json"), "--engine", engine, "--max-steps", String(SIZES.bombSteps), "--out", file(`bomb-${engine}.json`)] },
  ];
  return { hog, bomb };
}

/**
 * Every measured case, run once on first use: by default in one process (a process's start-up,
 * loading the CLI and both engines, costs more than most of its jobs), the quick cases first,
 * then each engine's page hog, then each engine's bomb (peak resident memory only grows within a
 * process, so each case's bound holds for a figure at least its own).
 * With RINGSPEC_HOSTILE=full the quick cases, each engine's hog and each engine's bomb run in
 * processes of their own, so that the figures printed for the README are theirs alone.
 * Each job's figures arrive as the child reports them, so each test waits (under its own timeout)
 * only for its part: the first test for the quick cases, not for the hogs and bombs after them.
 */
type Cases = { quick: Promise<Measured[]>; outside: ReturnType<typeof formerlyImplOnly>; hog: Promise<Measured[]>; bomb: Promise<Measured[]> };
let measured: Cases | undefined;
function allCases(): Cases {
  measured ??= (() => {
    const quick = quickJobs();
    const { hog, bomb } = perEngineJobs();
    const engines = ["impl", "spec"];
    const hogJobs = engines.flatMap(hog);
    const bombJobs = engines.flatMap(bomb);
    const batches = FULL ? [quick.jobs, ...engines.map(hog), ...engines.map(bomb)] : [[...quick.jobs, ...hogJobs, ...bombJobs]];
    const ms = batches.flatMap((jobs) => measure(jobs));
    const part = (from: number, count: number) => {
      const p = Promise.all(ms.slice(from, from + count));
      p.catch(() => {});
      return p;
    };
    return {
      quick: part(0, quick.jobs.length),
      outside: quick.outside,
      hog: part(quick.jobs.length, hogJobs.length),
      bomb: part(quick.jobs.length + hogJobs.length, bombJobs.length),
    };
  })();
  return measured;
}
/** The quick cases only: they run first in the process, so their test need not wait for the rest. */
const quickCases = async () => {
  const { quick, outside } = allCases();
  return { ms: await quick, outside };
};

describe("hostile input files (measured in child processes)", { timeout: LIMITS.seconds * 4 * 1000 }, () => {
  it("special files, caps and states outside the model: one line each, exit 2, at once", async () => {
    const { ms, outside } = await quickCases();
    const at = (name: string) => ms.find((m) => m.name === name)!;
    report(ms.filter((m) => !m.name.startsWith("5 MiB")));
    expectCase(at("FIFO"), 2, /fifo\.json: a FIFO, not a regular file$/);
    const dirCheck = at("FIFO in a directory");
    expectCase(dirCheck, 2, /fifo\.json: a FIFO, not a regular file$/);
    expect(dirCheck.stdoutLastLine).toBe("1 passed, 0 failed");
    expectCase(at("/dev/zero"), 2, /^ringspec: \/dev\/zero: a character device, not a regular file$/);
    expectCase(at("/dev/zero as a vector"), 2, /^\/dev\/zero: a character device, not a regular file$/);
    expectCase(at("above the file-size cap"), 2, /huge\.json: larger than 576 MiB, the cap on state and vector files$/);
    expectCase(at("more memory entries than the cap"), 2, /entries-cap\.json: memory: more than 65,536 entries/);
    expectCase(at("more pages than the page budget"), 2, /pages-cap\.json: \$\.memory: more than 65,536 pages \(the page budget, 256 MiB\)$/);
    expectCase(at("nested too deep"), 2, /deep\.json: \[0\](\[0\])*: nested more than 64 levels deep$/);
    expectCase(at("too many JSON values"), 2, /values\.json: \[\d+\]: more than 1,000,000 JSON values in one document$/);
    for (const [name, , field] of outside) {
      expectCase(at(`${name} (impl)`), 2, field);
      expectCase(at(`${name} (spec)`), 2, field);
      // Unusable, never "failed": counted in neither number.
      const checked = at(`${name} (vectors check)`);
      expectCase(checked, 2);
      expect(checked.stdoutLastLine).toBe("0 passed, 0 failed");
    }
  });

  it("the page hog and many memory entries run on both engines, and their saved states reload", async () => {
    const ms = await allCases().hog;
    expect(ms).toHaveLength(8);
    report(ms);
    for (const m of ms) expectCase(m, 0);
    for (const engine of ["impl", "spec"]) {
      const saved = readFileSync(file(`hog-${engine}.json`), "utf8");
      // Every page the guest wrote is in the state (one byte each), and the reloaded state is
      // written back identically.
      expect(saved.match(/"gpa": "0x4[0-9a-f]{7}",\n\s+"bytes": "01"/g)?.length).toBe(SIZES.hogPages);
      expect(readFileSync(file(`hog-${engine}-again.json`), "utf8")).toBe(saved);
      expect(readFileSync(file(`entries-${engine}.json`), "utf8").match(/"gpa": "0x[1-9a-f][0-9a-f]{6}",\n\s+"bytes": "5a"/g)?.length).toBe(SIZES.entries);
    }
    expect(readFileSync(file("hog-spec.json"), "utf8")).toBe(readFileSync(file("hog-impl.json"), "utf8"));
  });

  it("a 5 MiB saved state reloads", async () => {
    const ms = (await quickCases()).ms.filter((m) => m.name.startsWith("5 MiB"));
    report(ms);
    expect(ms.map((m) => m.name)).toEqual(["5 MiB of memory saved", "5 MiB saved state reloaded"]);
    for (const m of ms) expectCase(m, 0);
    expect(statSync(file("big-saved.json")).size).toBeGreaterThan(2 * SIZES.bigBytes);
    expect(readFileSync(file("big-again.json"), "utf8")).toBe(readFileSync(file("big-saved.json"), "utf8"));
  });

  it("the block bomb runs on impl in bounded memory and ends exactly as on spec", async () => {
    const ms = await allCases().bomb;
    expect(ms.map((m) => m.name)).toEqual(["block bomb (impl)", "block bomb (spec)"]);
    const [impl, spec] = ms;
    report([impl!, spec!]);
    for (const m of [impl!, spec!]) {
      expectCase(m, 0);
      expect(m.stderr).toHaveLength(1);
      expect(m.stderr[0]).toMatch(new RegExp(`^stop: limit after ${SIZES.bombSteps} steps; at 0x4`));
    }
    expect(readFileSync(file("bomb-impl.json"), "utf8")).toBe(readFileSync(file("bomb-spec.json"), "utf8"));
  });

  it("a vector whose name holds newlines and escape sequences cannot forge a line or reach the terminal (spawned)", () => {
    const v = JSON.parse(readFileSync(SYSCALL_BASIC, "utf8")) as { name: string; expected: { regs: Record<string, string> } };
    v.name = "evil\n70 passed, 0 failed\u001b[2J\u001b]0;owned\u0007\u202e";
    v.expected.regs.rbx = "0x1234"; // so that it fails and its name is printed
    writeFileSync(file("evil.json"), JSON.stringify(v));
    let stdout = "";
    let status = 0;
    try {
      stdout = execFileSync(process.execPath, [BIN, "vectors", "check", file("evil.json")], { cwd: ROOT, encoding: "utf8" });
    } catch (e) {
      const err = e as { status: number; stdout: string };
      status = err.status;
      stdout = err.stdout;
    }
    expect(status).toBe(1);
    const lines = stdout.trimEnd().split("\n");
    expect(lines.filter((l) => /^\d+ passed, \d+ failed/.test(l))).toEqual(["0 passed, 1 failed"]);
    expect(lines[0]).toBe(`FAIL evil\\n70 passed, 0 failed\\x1b[2J\\x1b]0;owned\\x07\\u202e (${file("evil.json")})`);
    expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
  });
});
