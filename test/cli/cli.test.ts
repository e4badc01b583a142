// The `ringspec` command line. Process-level behaviour (exit status, streams, no stack traces) is
// checked by spawning `node cli/bin.js` once for each exit status a user sees (0: run; 1: run
// --timeout; 2: vectors check on a malformed file); what a command prints runs `main` in-process,
// with the same assertions on its exit status, stdout and stderr (bin.js sets the exit status to
// what main returns and writes through the same Io).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { parseDocument } from "../../contract/load.ts";
import { stateToJson } from "../../contract/state.ts";
import { TraceRecordJson } from "../../trace/json.ts";
import { ruleCoverage } from "../../conformance/rule-coverage.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "cli/bin.js");
const VECTORS = join(ROOT, "conformance/vectors");
const SYSCALL_BASIC_FILE = join(VECTORS, "syscall-basic.json");
const SYSCALL_BASIC = JSON.parse(readFileSync(SYSCALL_BASIC_FILE, "utf8")) as Record<string, any>;
const SUMMARY = /^[0-9]+ passed, [0-9]+ failed$/;

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Spawns the real CLI. */
function spawnCli(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `main` in this process with collected output. */
async function runMain(args: string[]): Promise<Ran> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => (stdout += t), err: (l) => (stderr += l + "\n") });
  return { code, stdout, stderr };
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

function expectOneLineError(r: Ran, ...parts: string[]) {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe("");
  const errLines = lines(r.stderr);
  expect(errLines).toHaveLength(1);
  expect(errLines[0]).toMatch(/^ringspec: /);
  for (const part of parts) expect(errLines[0]).toContain(part);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let dir: string;
let badFile: string;
let goodFile: string;
/** syscall-basic expecting exactly its initial state at exit `limit`: passes with --max-steps 0. */
let unchangedFile: string;
let stateFile: string;
let outOfScopeFile: string;

beforeAll(() => {
  const tmp = mkdtempSync(join(tmpdir(), "ringspec-cli-"));
  dir = join(tmp, "vectors");
  mkdirSync(dir);
  goodFile = join(dir, "a-good.json");
  writeFileSync(goodFile, JSON.stringify(SYSCALL_BASIC));
  badFile = join(dir, "b-bad.json");
  writeFileSync(badFile, JSON.stringify({ ...SYSCALL_BASIC, initial: { ...SYSCALL_BASIC.initial, regs: { ...SYSCALL_BASIC.initial.regs, rax: "0xZZ" } } }));
  writeFileSync(join(dir, "notes.txt"), "not a vector, not *.json: ignored");
  unchangedFile = join(tmp, "unchanged.json");
  const initial = SYSCALL_BASIC.initial;
  writeFileSync(
    unchangedFile,
    JSON.stringify({ ...SYSCALL_BASIC, name: "unchanged", expected: { exit: "limit", regs: initial.regs, sregs: initial.sregs, msrs: initial.msrs, memory: initial.memory } }),
  );
  stateFile = join(tmp, "state.json");
  writeFileSync(stateFile, JSON.stringify({ format: "ringspec-state/1", ...initial }));
  outOfScopeFile = join(tmp, "la57.json");
  writeFileSync(outOfScopeFile, JSON.stringify({ format: "ringspec-state/1", ...initial, sregs: { ...initial.sregs, cr4: "0x1620" } }));
});

describe("ringspec vectors check", () => {
  it("a directory with a malformed file: exit 2, one stderr line naming file and JSON path, summary last (spawned)", async () => {
    const r = await spawnCli(["vectors", "check", dir]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([`${badFile}: initial.regs.rax: expected "0x" followed by 1 to 16 hex digits`]);
    const out = lines(r.stdout);
    expect(out.at(-1)).toMatch(SUMMARY);
    const [, passed, failed] = /^([0-9]+) passed, ([0-9]+) failed$/.exec(out.at(-1)!)!;
    expect(Number(passed) + Number(failed)).toBe(1);
    if (Number(failed) === 1) expect(out[0]).toBe(`FAIL syscall-basic (${goodFile})`);
  });

  it("--json: one object with the counts, the unusable files and per-vector results", async () => {
    const r = await runMain(["vectors", "check", goodFile, badFile, "--json", "--max-steps", "0"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    const report = JSON.parse(r.stdout) as Record<string, any>;
    expect(Object.keys(report)).toEqual(["passed", "failed", "unusable", "seconds", "cases_per_second", "results"]);
    // One vector stopped after 0 steps takes well under a millisecond: seconds must not round to 0.
    expect(report.seconds).toBeGreaterThan(0);
    expect(report.cases_per_second).toBeGreaterThan(0);
    expect(report).toMatchObject({ passed: 0, failed: 1, unusable: [{ file: badFile }] });
    expect(report.unusable[0].error).toContain("initial.regs.rax");
    expect(report.results).toHaveLength(1);
    const result = report.results[0];
    expect(result).toMatchObject({ name: "syscall-basic", file: goodFile, passed: false, profile: "intel", exit: "limit", expected_exit: "hlt", steps: 0, detail: null });
    expect(result.stop).toBe("0x200000: syscall");
    expect(result.mismatches[0]).toEqual({ field: "exit", expected: "hlt", got: "limit" });
    expect(result.mismatches).toContainEqual({ field: "regs.rip", expected: "0x11001", got: "0x200000" });
  });

  it("npm start's command: every project vector is usable and the summary is the last line", async () => {
    const r = await runMain(["vectors", "check", VECTORS, "--engine", "spec"]);
    expect(r.stderr).toBe("");
    expect([0, 1]).toContain(r.code);
    const out = lines(r.stdout);
    const [, passed, failed] = /^([0-9]+) passed, ([0-9]+) failed$/.exec(out.at(-1)!)!;
    expect(Number(passed) + Number(failed)).toBe(70);
    expect(r.code).toBe(Number(failed) > 0 ? 1 : 0);
  });
});

describe("ringspec vectors check (in-process)", () => {
  it("--max-steps 0: a vector expecting its initial state at exit limit passes; exit 0", async () => {
    const r = await runMain(["vectors", "check", unchangedFile, "--max-steps", "0"]);
    expect(r).toEqual({ code: 0, stdout: "1 passed, 0 failed\n", stderr: "" });
  });

  it("a failed vector: readable diff lines (field, expected, got) and the instruction at the stop; exit 1", async () => {
    const r = await runMain(["vectors", "check", goodFile, unchangedFile, "--max-steps=0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const out = lines(r.stdout);
    expect(out[0]).toBe(`FAIL syscall-basic (${goodFile})`);
    expect(out[1]).toBe("  exit: expected hlt, got limit");
    expect(out).toContain("  regs.rcx: expected 0x200002, got 0x0");
    expect(out).toContain("  sregs.cs.selector: expected 0x8, got 0x2b");
    expect(out.at(-2)).toBe("  at the stop after 0 steps: 0x200000: syscall");
    expect(out.at(-1)).toBe("1 passed, 1 failed");
  });

  it("--profile overrides the vector's profile", async () => {
    const r = await runMain(["vectors", "check", unchangedFile, "--max-steps", "0", "--profile", "amd", "--json"]);
    expect(JSON.parse(r.stdout).results[0].profile).toBe("amd");
  });

  it("unusable inputs: a state file, a missing path; each one line on stderr, not counted", async () => {
    const r = await runMain(["vectors", "check", stateFile, join(dir, "missing.json"), unchangedFile, "--max-steps", "0"]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      `${stateFile}: format: this is a ringspec-state/1 file, not a vector`,
      `${join(dir, "missing.json")}: no such file`,
    ]);
    expect(r.stdout).toBe("1 passed, 0 failed\n");
  });

  it("a state outside the model is unusable", async () => {
    const r = await runMain(["vectors", "check", outOfScopeFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${outOfScopeFile}: $: not covered by the model: cr4: bits 0x1000 are outside the model (VME, PVI, LA57, VMXE, SMXE, PKE, CET, UINTR, FRED, ...)\n`);
  });
});

describe("ringspec run", () => {
  it("prints a reloadable ringspec-state/1 document on stdout and the stop on stderr (spawned)", async () => {
    const r = await spawnCli(["run", SYSCALL_BASIC_FILE, "--max-steps", "0"]);
    expect(r.code).toBe(0);
    expect(lines(r.stderr)).toEqual(["stop: limit after 0 steps; at 0x200000: syscall"]);
    const doc = parseDocument(r.stdout);
    expect(doc.kind).toBe("state");
    expect(doc.profile).toBe("intel");
    // Unchanged by 0 steps: the same state as the vector's initial one.
    expect(r.stdout).toBe(JSON.stringify({ format: "ringspec-state/1", profile: "intel", ...stateToJson(parseDocument(JSON.stringify(SYSCALL_BASIC)).state) }, null, 2) + "\n");
    // Running the printed state again gives the same document.
    const again = join(dir, "..", "again.json");
    writeFileSync(again, r.stdout);
    const r2 = await runMain(["run", again, "--max-steps", "0"]);
    expect(r2.stdout).toBe(r.stdout);
  });

  it("--trace: one line per step with the address and iced-x86 disassembly", async () => {
    const r = await runMain(["run", SYSCALL_BASIC_FILE, "--trace", "--max-steps", "1"]);
    const out = lines(r.stdout);
    expect(out.length).toBeGreaterThanOrEqual(1);
    expect(out[0]).toMatch(/^1 {2}0x200000 {2}syscall {2}\[/);
    expect(r.stdout).not.toContain('"format"');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^stop: /);
  });

  it("--trace --json: one trace record per line, valid against the trace schema", async () => {
    const r = await runMain(["run", join(VECTORS, "syscall-sysret-roundtrip.json"), "--trace", "--json", "--max-steps", "4", "--engine", "impl"]);
    expect(r.code).toBe(0);
    const records = lines(r.stdout).map((l) => TraceRecordJson.parse(JSON.parse(l)));
    expect(records.map((x) => x.step)).toEqual([1, 2, 3, 4]);
    expect(records[0]).toMatchObject({ rip: "0x200000", instruction: { disassembly: "syscall", bytes: "0f05", length: 2 }, event: { kind: "retired" } });
    expect(records[0]!.changes).toContainEqual({ field: "sregs.cs.selector", before: "0x2b", after: "0x8" });
    expect(lines(r.stderr)).toEqual(["stop: limit after 4 steps; at 0x200005: jmp 0x200005"]);
  });

  it("--trace --json on spec: records carry the rule IDs of each step", async () => {
    const r = await runMain(["run", join(VECTORS, "syscall-sysret-roundtrip.json"), "--trace", "--json", "--max-steps", "2"]);
    const records = lines(r.stdout).map((l) => TraceRecordJson.parse(JSON.parse(l)));
    expect(records[0]!.rules).toEqual(expect.arrayContaining(["SYSCALL-07"]));
    expect(records[1]!.rules).toEqual(expect.arrayContaining(["SYSRET-09"]));
  });

  it("--timeout stops a run that does not end (spawned)", async () => {
    // Halted with IF = 1 and IRQ 32 pending, whose handler is `jmp .`: the run never stops by itself.
    const initial = SYSCALL_BASIC.initial;
    const file = join(dir, "..", "forever.json");
    writeFileSync(
      file,
      JSON.stringify({
        format: "ringspec-state/1",
        ...initial,
        regs: { ...initial.regs, rflags: "0x202" },
        memory: [...initial.memory, { gpa: "0xb200", bytes: "ebfe" }],
        cpu: { halted: true, pending_irq: 32 },
      }),
    );
    // A short limit: the run spins (CPU) until it, whatever its length. No wall-clock bound on the
    // process (a loaded machine starts node slowly): one that ignored --timeout or did not exit
    // after it is killed by spawnCli's 60 s guard and fails on its status and stderr.
    const r = await spawnCli(["run", file, "--timeout", "0.1", "--max-steps", "1000000000000"]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^stop: timeout after [0-9]+ steps: no stop within 0\.1 s; at 0xb200: jmp 0xb200$/)]);
    expect(parseDocument(r.stdout).kind).toBe("state");
  });

  it("--out writes the state to a file; stdout stays empty", async () => {
    const out = join(dir, "..", "out.json");
    const r = await runMain(["run", SYSCALL_BASIC_FILE, "--max-steps", "0", "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(parseDocument(readFileSync(out, "utf8")).kind).toBe("state");
  });

  it("a state outside the model is refused: exit 2, one line", async () => {
    expectOneLineError(await runMain(["run", outOfScopeFile]), outOfScopeFile, "not covered by the model: cr4");
  });

  it("a malformed file: one line with the file and the JSON path", async () => {
    expectOneLineError(await runMain(["run", badFile]), badFile, "initial.regs.rax");
  });
});

describe("ringspec rules", () => {
  it("--help prints the help (exit 0)", async () => {
    const r = await runMain(["rules", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ringspec rules/);
  });

  it("--hit is repeatable, as its help says; reports execution coverage", async () => {
    const r = await runMain(["rules", "--hit", SYSCALL_BASIC_FILE, "--hit", join(VECTORS, "sysret-noncanonical-rcx.json"), "--json"]);
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout) as { hit_by_vectors: string[]; implemented_and_exercised: number; missing: string[] };
    expect(report.hit_by_vectors).toEqual(expect.arrayContaining(["SYSCALL-03", "SYSRET-03"]));
    // Execution coverage: the digest rules the suite never records (conformance/rule-coverage.ts).
    expect(report.missing).toEqual(ruleCoverage().missing);
    expect(r.code).toBe(report.missing.length === 0 ? 0 : 1);
    expect(report.implemented_and_exercised).toBeGreaterThan(100);
  });

  it("--timeout takes exponents within the cap", async () => {
    const r = await runMain(["run", SYSCALL_BASIC_FILE, "--timeout", "1e3", "--max-steps", "3"]);
    expect(r.code).toBe(0);
  });

  it("--hit runs the vectors on the spec and lists the rules they exercised", async () => {
    const r = await runMain(["rules", "--hit", SYSCALL_BASIC_FILE, "--json"]);
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout) as { hit_by_vectors: string[]; registered: number };
    expect(report.hit_by_vectors).toEqual(expect.arrayContaining(["SYSCALL-03", "SYSCALL-07", "RF-01"]));
    expect(report.hit_by_vectors).not.toContain("SYSRET-04");
    const both = JSON.parse((await runMain(["rules", "--hit", SYSCALL_BASIC_FILE, join(VECTORS, "sysret-noncanonical-rcx.json"), "--json"])).stdout) as { hit_by_vectors: string[] };
    expect(both.hit_by_vectors).toEqual(expect.arrayContaining(["SYSCALL-03", "SYSRET-03"]));
  });
});

describe("arguments", () => {
  it("bad values and unknown options: one line, exit 2, no stack trace", async () => {
    expectOneLineError(await runMain(["run", SYSCALL_BASIC_FILE, "--max-steps", "abc"]), "--max-steps", '"abc"');
  });

  it.each([
    [["run", SYSCALL_BASIC_FILE, "--profile", "arm"], "--profile"],
    [["run", SYSCALL_BASIC_FILE, "--max-steps", "-1"], "--max-steps"],
    [["run", SYSCALL_BASIC_FILE, "--max-steps", "1e3"], "--max-steps"],
    [["run", SYSCALL_BASIC_FILE, "--timeout", "0"], "--timeout"],
    [["run", SYSCALL_BASIC_FILE, "--timeout", "1e9"], "--timeout: at most 86400 seconds (one day)"],
    [["run", SYSCALL_BASIC_FILE, "--timeout", "NaN"], "--timeout: expected a number of seconds"],
    [["run", SYSCALL_BASIC_FILE, "--timeout", "soon"], "--timeout"],
    [["run", SYSCALL_BASIC_FILE, "--timeout"], "--timeout needs a value"],
    [["run", SYSCALL_BASIC_FILE, "--engine", "nosuch"], "--engine"],
    [["run", SYSCALL_BASIC_FILE, "--frobnicate"], "unknown option"],
    [["run", SYSCALL_BASIC_FILE, "--trace=yes"], "--trace takes no value"],
    [["run", SYSCALL_BASIC_FILE, "--profile", "amd", "--profile", "intel"], "more than once"],
    [["run"], "expected one FILE"],
    [["run", "a.json", "b.json"], "expected one FILE"],
    [["run", VECTORS], "is a directory"],
    [["run", "no-such-file.json"], "no-such-file.json: no such file"],
    [["vectors"], "subcommand"],
    [["vectors", "list"], "unknown subcommand"],
    [["vectors", "check"], "at least one PATH"],
    [["vectors", "check", VECTORS, "--json=1"], "--json takes no value"],
    [["schema", "extra"], "expected files, trace, divergence or protocol"],
    [["schema", "trace", "files"], "at most one"],
    [["run", SYSCALL_BASIC_FILE, "--json"], "--json goes with --trace"],
    [["frob"], 'unknown command "frob"'],
    [[], "expected a command"],
  ])("%j → %s", async (args, message) => {
    expectOneLineError(await runMain(args), message);
  });

  it("--help for every command, on stdout, exit 0", async () => {
    for (const args of [["--help"], ["run", "--help"], ["run", "-h"], ["vectors", "--help"], ["vectors", "check", "--help"], ["schema", "--help"], ["bench", "--help"]]) {
      const r = await runMain(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toMatch(/^Usage: ringspec /);
      expect(r.stderr).toBe("");
    }
    expect((await runMain(["run", "--help"])).stdout).toContain("--trace");
    expect((await runMain(["vectors", "--help"])).stdout).toContain("N passed, M failed");
  });

  it("schema prints the committed JSON Schema; schema trace the trace record's", async () => {
    const r = await runMain(["schema"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, "contract/schema.json"), "utf8"));
    expect((await runMain(["schema", "files"])).stdout).toBe(r.stdout);
    const t = await runMain(["schema", "trace"]);
    expect(t.code).toBe(0);
    expect(t.stdout).toBe(readFileSync(join(ROOT, "trace/trace-record.schema.json"), "utf8"));
  });
});

describe("--engine impl (in-process)", () => {
  it("vectors check passes every project vector on the optimized emulator", async () => {
    const r = await runMain(["vectors", "check", VECTORS, "--engine", "impl"]);
    expect(r.stderr).toBe("");
    expect(lines(r.stdout).at(-1)).toBe("70 passed, 0 failed");
    expect(r.code).toBe(0);
  });

  it("run --trace prints the same trace on both engines (through the Engine interface for impl)", async () => {
    for (const vector of ["syscall-sysret-roundtrip", "single-step-ring3", "pf-user-write-notpresent", "nmi-ring3"]) {
      const file = join(VECTORS, `${vector}.json`);
      const spec = await runMain(["run", file, "--trace", "--max-steps", "12"]);
      const impl = await runMain(["run", file, "--trace", "--max-steps", "12", "--engine", "impl"]);
      expect(impl.stdout, vector).toBe(spec.stdout);
      expect(impl.stderr, vector).toBe(spec.stderr);
      expect(lines(spec.stdout).length).toBeGreaterThan(1);
    }
  });

  it("an unknown engine is a one-line usage error", async () => {
    const r = await runMain(["vectors", "check", VECTORS, "--engine", "nosuch"]);
    expectOneLineError(r, "--engine", "spec or impl");
  });
});
