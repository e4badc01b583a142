// `ringspec conform`, `conform merge`, `serve` and `schema --protocol` from the command line: the
// summary and last line, exit codes, bad arguments, engines that cannot start or misbehave, an
// interrupted run, and the Python example adapter end to end.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import type { Io } from "../../cli/io.ts";
import { liveProcessEngines } from "../../engines/process/engine.ts";
import { FAMILY_NAMES } from "../../conformance/campaign/families.ts";
import { PLANTED_BUG_NAMES } from "../../conformance/planted.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = fileURLToPath(new URL("../engines/fixtures/misbehaving-engine.sh", import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), "ringspec-conform-cli-"));

afterAll(() => {
  rmSync(TMP, { recursive: true, force: true });
  expect(liveProcessEngines()).toBe(0);
});

async function cli(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: Io = { out: (t) => (stdout += t), err: (l) => (stderr += l + "\n") };
  return { code: await main(argv, io), stdout, stderr };
}

const lastLine = (text: string) => text.trimEnd().split("\n").at(-1);

describe("conform: output and exit codes", () => {
  it("prints the campaign, a summary and `N passed, M failed`; exit 0 when everything agrees", async () => {
    const r = await cli(["conform", "--runs", "12", "--seed", "3", "--families", "syscall,msrcr"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ringspec conform: spec vs impl \(exact comparison\), seed 3, 12 cases, 1 worker\n  families: syscall, msrcr; profile both\n/);
    for (const label of ["cases", "steps compared", "divergences", "rule coverage", "not compared", "speed"]) expect(r.stdout).toMatch(new RegExp(`^  ${label} +`, "m"));
    expect(r.stdout).toMatch(/speed +[0-9.]+ cases\/s, [0-9]+ steps compared\/s/);
    expect(lastLine(r.stdout)).toBe("12 passed, 0 failed");
  });

  it("--json is one well-formed object with the counts, rates and coverage", async () => {
    const r = await cli(["conform", "--runs", "6", "--seed", "3", "--families", "msrcr", "--json"]);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ format: "ringspec-conform/1", cases: 6, passed: 6, failed: 0, engines: { a: "spec", b: "impl" }, campaign: { seed: 3, families: ["msrcr"] } });
    expect(result.cases_per_s).toBeGreaterThan(0);
    expect(result.steps_per_s).toBeGreaterThan(0);
  });

  it("--help fits in 100 columns and names every family --families takes and every bug --plant takes", async () => {
    const r = await cli(["conform", "--help"]);
    expect(r.code).toBe(0);
    const wide = r.stdout.split("\n").filter((line) => line.length > 100);
    expect(wide).toEqual([]);
    const listed = (from: string, to: string) => r.stdout.slice(r.stdout.indexOf(from), r.stdout.indexOf(to)).split(/[\s,]+/);
    for (const family of FAMILY_NAMES) expect(listed("--families LIST", "--profile")).toContain(family);
    for (const bug of PLANTED_BUG_NAMES) expect(listed("--plant BUG", "Cases:")).toContain(bug);
  });

  it("bad arguments: one line, exit 2", async () => {
    const bad: [string[], RegExp][] = [
      [["--b", "bogus"], /--b: expected one of spec, impl/],
      [["--cmd", "x"], /--cmd goes with --a process or --b process/],
      [["--b", "process"], /--b process needs --cmd/],
      [["--runs", "5", "--time", "3"], /give one of them/],
      [["--shard", "3/2"], /--shard: expected I\/N/],
      [["--families", "iret,nope"], /no family "nope"/],
      [["--expect-deviation", "NOT-A-RULE"], /"NOT-A-RULE" is not a rule ID/],
      [["--workers", "0"], /--workers: expected a whole number from 1 to 64/],
      [["--profile", "via"], /--profile: expected intel or amd/],
      [["--plant", "no-such-bug"], /--plant: expected one of sysret-no-r11-mask, .*, got "no-such-bug"/],
      [["--b", "process", "--cmd", "x", "--plant", "swapgs-noop"], /--plant goes with --b spec or impl .*, not --b process/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(["conform", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    const file = join(TMP, "expectations.json");
    writeFileSync(file, JSON.stringify({ format: "ringspec-expectations/1", expectations: [{ rule: "SYSRET-05", because: "x" }] }));
    const r = await cli(["conform", "--expectations", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expectations\.json: \$\.expectations\[0\]: unknown field because|\$\.expectations\[0\]/);
  });

  it("an engine that cannot be started: exit 2, one line", async () => {
    const r = await cli(["conform", "--b", "process", "--cmd", "/no/such/emulator"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ringspec: conform: the engine under test \(process\) could not be started: /);
  });
});

// The next two groups wait on engine processes most of their time (start-up, exits, 1 s request
// timeouts, the first case of a spawned campaign): their tests run side by side, the two groups
// too (the interrupted campaign's process runs while the hanging engine is waited for). Each
// campaign has its own engine processes, counter file and collected output (main with its own Io
// installs no process-wide handler).
describe.concurrent("engines in other processes, side by side", () => {
  describe.concurrent("conform survives a misbehaving engine under test", () => {
    for (const [mode, kind] of [["crash", "crash"], ["hang", "timeout"], ["garbage", "protocol"], ["out-of-order", "protocol"], ["truncate", "crash"]] as const) {
      it(`${mode}: each such case is reported with the reason, the engine restarted, the campaign completed`, async () => {
        const counter = join(TMP, `counter-${mode}`);
        // Only "hang" waits for the request timeout (twice); the others fail on what the engine
        // writes and get the default. With 0.3 s for every mode, a loaded machine (load 13–17) turned
        // a slow answer into a timeout: truncate's crash, or a working load's divergence.
        const timeout = mode === "hang" ? ["--request-timeout", "1"] : [];
        const r = await cli(["conform", "--b", "process", "--cmd", `bash ${FIXTURE} ${mode} ${counter}`, ...timeout, "--families", "iret", "--runs", "4", "--seed", "1", "--no-shrink", "--json"]);
        expect(r.code).toBe(1);
        const result = JSON.parse(r.stdout) as { cases: number; errors: number; divergences: number; restarts: { b: number }; outcomes: { index: number; status: string; error_kind?: string; reason?: string }[] };
        // Every case is there; every other load misbehaved (errors), the others got a working engine
        // that does not model the instruction (a divergence, not an error).
        expect(result.cases).toBe(4);
        expect(result.outcomes.map((o) => o.status)).toEqual(["error", "fail", "error", "fail"]);
        for (const o of result.outcomes.filter((x) => x.status === "error")) {
          expect(o.error_kind).toBe(kind);
          expect(o.reason).not.toBe("");
        }
        expect(result.restarts.b).toBe(2);
      }, 60_000);
    }
  });

  describe.concurrent("conform is interrupted with Ctrl-C", () => {
    it("writes well-formed --json and --junit with what was found, exit 130", async () => {
      const junit = join(TMP, "interrupted.xml");
      const child = spawn(process.execPath, ["cli/bin.js", "conform", "--time", "120", "--seed", "4", "--families", "syscall,msrcr", "--json", "--junit", junit], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      // Interrupted once it is running cases (its first progress line, after its first case).
      await new Promise<void>((resolve) => child.stderr.on("data", (d: Buffer) => d.toString().includes("conform: ") && resolve()));
      child.kill("SIGINT");
      expect(await exit).toBe(130);
      const result = JSON.parse(stdout) as { interrupted: boolean; cases: number };
      expect(result.interrupted).toBe(true);
      expect(result.cases).toBeGreaterThan(0);
      const xml = readFileSync(junit, "utf8");
      expect(xml.match(/<testcase /g)?.length).toBe(result.cases);
      expect(xml.trimEnd().endsWith("</testsuites>")).toBe(true);
      expect(xml).toContain('<property name="interrupted" value="true"/>');
    }, 60_000);
  });
});

describe("conform merge", () => {
  it("combines shard results into the whole campaign's", async () => {
    const files = [];
    for (const shard of ["1/2", "2/2"]) {
      const r = await cli(["conform", "--runs", "10", "--seed", "8", "--families", "msrcr,syscall", "--shard", shard, "--json"]);
      const file = join(TMP, `shard-${shard.replace("/", "of")}.json`);
      writeFileSync(file, r.stdout);
      files.push(file);
    }
    const whole = JSON.parse((await cli(["conform", "--runs", "10", "--seed", "8", "--families", "msrcr,syscall", "--json"])).stdout) as { passed_ranges: unknown };
    const merged = await cli(["conform", "merge", ...files, "--json"]);
    expect(merged.code).toBe(0);
    expect(JSON.parse(merged.stdout)).toMatchObject({ cases: 10, passed: 10, passed_ranges: whole.passed_ranges });
    const text = await cli(["conform", "merge", ...files]);
    expect(lastLine(text.stdout)).toBe("10 passed, 0 failed");
    const bad = await cli(["conform", "merge", join(TMP, "missing.json")]);
    expect(bad.code).toBe(2);
  });
});

describe("the protocol's schema and the Python adapter", () => {
  it("schema --protocol prints the committed engines/process/protocol.schema.json", async () => {
    const r = await cli(["schema", "--protocol"]);
    expect(r.stdout).toBe(readFileSync(join(ROOT, "engines/process/protocol.schema.json"), "utf8"));
  });

  it("the Python example adapter passes the vectors its toy CPU models, and a campaign runs against it", async () => {
    const python = ["--engine", "process", "--cmd", `python3 ${join(ROOT, "examples/python/adapter.py")}`, "--profile", "intel"];
    const vectors = ["syscall-sysret-roundtrip", "syscall-basic", "sysret64-basic", "swapgs-twice"].map((v) => join(ROOT, `conformance/vectors/${v}.json`));
    const check = await cli(["vectors", "check", ...vectors, ...python]);
    expect(check.stdout, check.stderr).toBe("4 passed, 0 failed\n");
    // A vector it does not model fails with the reason, not a crash.
    const other = await cli(["vectors", "check", join(ROOT, "conformance/vectors/int3-ring3-dpl3.json"), ...python]);
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/stopped: unsupported/);
    const campaign = await cli(["conform", "--b", "process", "--cmd", `python3 ${join(ROOT, "examples/python/adapter.py")}`, "--profile", "intel", "--families", "syscall", "--runs", "8", "--seed", "2", "--no-shrink", "--json"]);
    const result = JSON.parse(campaign.stdout) as { engines: { b: string }; cases: number; errors: number };
    expect(result.engines.b).toBe("python toy 0.1");
    expect(result.cases).toBe(8);
    expect(result.errors).toBe(0);
  }, 60_000);
});
