// Emulator engines when the emulator misbehaves, without needing QEMU or Bochs: a missing
// program, one that exits at once, one that hangs. Each is a one-line EngineError for that case,
// the child is gone afterwards and the engine can be used again.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parseDocument } from "../../../contract/load.ts";
import { Child, liveChildren } from "../../../engines/host/process.ts";
import { EngineError } from "../../../engines/host/errors.ts";
import { QemuEngine } from "../../../engines/qemu/engine.ts";
import { BochsEngine } from "../../../engines/bochs/engine.ts";
import { fastTempBase } from "../../../engines/host/workdir.ts";
import { checkVector } from "../../../conformance/vector-check.ts";
import { vectorPath } from "../../helpers/fixture.ts";

const scratch = mkdtempSync(join(tmpdir(), "ringspec-lifecycle-"));
/** Runs a program of fixtures/ (TypeScript) compiled by cli/launch.js, as bin.js runs the CLI and
 *  a campaign its worker threads. */
const FIXTURE_LAUNCH = fileURLToPath(new URL("./fixtures/launch.mjs", import.meta.url));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));


const loaded = parseDocument(readFileSync(vectorPath("sysret64-basic"), "utf8"));
if (loaded.kind !== "vector") throw new Error("vector");

/** The process exists and is not a zombie (a killed child whose reaper has not run yet). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * The engine's scratch directory, as recorded by the script (it runs there): checked by name,
 * since other ringspec runs on the machine create and remove their own in the same temp base.
 */
function scratchOf(name: string): string {
  const dir = readFileSync(join(scratch, `${name}.cwd`), "utf8").trim();
  expect(dir.startsWith(fastTempBase())).toBe(true);
  return dir;
}

function script(name: string, body: string): string {
  const path = join(scratch, name);
  writeFileSync(path, `#!/bin/sh\npwd > ${join(scratch, `${name}.cwd`)}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

// Two groups run side by side (each waits on timers and child processes most of its time): the
// engines driven in this process, one test after another (each checks that no Child of this
// process is left, so they must not overlap), and the programs run as processes of their own
// (their emulators are children of those processes, never counted here), all at once.
describe.concurrent("emulator processes", () => {
  describe.concurrent("driven in this process, one at a time", () => {
    it.sequential("a missing program is a start error naming it", async () => {
      await expect(Child.start("/nonexistent/qemu", [])).rejects.toThrow(/\/nonexistent\/qemu: not found/);
    });

    // An emulator that exits is seen exiting (its exit is an event, not a wait): its watchdog is
    // far away, so that on a loaded machine too the error is the exit's, never the watchdog's. One
    // that hangs is stopped by the watchdog, whatever the load (300 ms: it is waited for four
    // times, one after another).
    for (const [name, make] of [
      ["qemu", (program: string, startTimeoutMs: number) => new QemuEngine({ program, startTimeoutMs })],
      ["bochs", (program: string, startTimeoutMs: number) => new BochsEngine({ program, startTimeoutMs })],
    ] as const) {
      it.sequential(`${name}: an emulator that exits at once is a start error with its status and stderr`, async () => {
        const engine = make(script(`${name}-exits`, "echo 'no such machine' >&2; exit 3"), 30_000);
        const error = await engine.load(loaded.state, "intel").then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(EngineError);
        expect((error as EngineError).kind).toBe("start");
        expect((error as EngineError).message).toBe(`${name} exited with status 3: no such machine`);
        expect(liveChildren()).toBe(0);
        expect(existsSync(scratchOf(`${name}-exits`))).toBe(false);
        await engine.close();
      });

      it.sequential(`${name}: an emulator that hangs is stopped by the watchdog, and the check goes on`, async () => {
        const engine = make(script(`${name}-hangs`, "exec sleep 30"), 300);
        // The detail names the 300 ms start watchdog, not the case timeout: that is what shows the
        // watchdog stopped it (an elapsed-time bound would fail on a loaded machine). The case
        // timeout is far away (20 s), so that a slow start cannot reach it first.
        const result = await checkVector(loaded, engine, { timeoutMs: 20_000 });
        expect(result.passed).toBe(false);
        expect(result.exit).toBe("error");
        expect(result.detail).toMatch(/within 300 ms/);
        expect(liveChildren()).toBe(0);
        expect(existsSync(scratchOf(`${name}-hangs`))).toBe(false);
        // The same engine takes the next case (and fails it the same way, not worse).
        const again = await checkVector(loaded, engine, { timeoutMs: 20_000 });
        expect(again.exit).toBe("error");
        expect(again.detail).toMatch(/within 300 ms/);
        await engine.close();
        expect(liveChildren()).toBe(0);
      });
    }

    it.sequential("using an engine before load is a usage error, not a crash", async () => {
      const engine = new QemuEngine();
      await expect(engine.step()).rejects.toThrow(/load\(\) a state first/);
      await expect(new BochsEngine().state()).rejects.toThrow(/load\(\) a state first/);
    });
  });

  describe.concurrent("programs in processes of their own, side by side", () => {
    it("ringspec interrupted mid-case leaves no emulator process and no scratch directory", async () => {
      const pidFile = join(scratch, "emulator.pid");
      const program = script("qemu-records-pid", `echo $$ > ${pidFile}\nexec sleep 30`);
      const cli = spawn(process.execPath, [fileURLToPath(new URL("../../../cli/bin.js", import.meta.url)), "vectors", "check", vectorPath("sysret64-basic"), "--engine", "qemu", "--qemu", program, "--timeout", "60"], { stdio: "ignore" });
      // The whole line: the shell creates the file before it writes the pid into it.
      const pidLine = () => (existsSync(pidFile) ? readFileSync(pidFile, "utf8") : "");
      const deadline = Date.now() + 20_000;
      while (!pidLine().endsWith("\n") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const pid = Number(pidLine());
      expect(alive(pid)).toBe(true);
      const exited = new Promise((r) => cli.once("exit", r));
      cli.kill("SIGINT");
      await exited;
      // The child is reaped asynchronously: wait for it (bounded), rather than a fixed pause.
      const gone = Date.now() + 10_000;
      while (alive(pid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
      expect(alive(pid)).toBe(false);
      expect(existsSync(scratchOf("qemu-records-pid"))).toBe(false);
    });

    it("a program with its own Ctrl-C handler keeps its emulators until it exits (conform writes what it found)", async () => {
      // A bug this catches: the emulator hooks killed every child and re-raised SIGINT even when
      // the program handled SIGINT itself, so `conform` died at the first Ctrl-C with no output.
      const cli = spawn(process.execPath, [FIXTURE_LAUNCH, "handles-sigint.ts"], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
      // "close", not "exit": the output written just before exiting may be read after "exit".
      const exited = new Promise<number | null>((r) => cli.once("close", (code) => r(code)));
      const deadline = Date.now() + 30_000;
      while (!out.includes("\n") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const pid = Number(out.split("\n")[0]);
      expect(alive(pid)).toBe(true);
      cli.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(out.split("\n")[1]).toBe("alive");
      // Killed when the program exits.
      const gone = Date.now() + 10_000;
      while (alive(pid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
      expect(alive(pid)).toBe(false);
    });

    it("emulators started in a worker thread (conform --workers) end, and their scratch directories go, when the process is killed", async () => {
      // Killed while the worker's emulator runs: no exit hook runs in the worker thread.
      const cli = spawn(process.execPath, [FIXTURE_LAUNCH, "worker-main.ts"], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const status = await new Promise<NodeJS.Signals | null>((r) => cli.once("close", (_code, signal) => r(signal)));
      expect(status).toBe("SIGTERM");
      const { pid, dir } = JSON.parse(out.trim()) as { pid: number; dir: string };
      const gone = Date.now() + 10_000;
      while (alive(pid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
      expect(alive(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
    });
  });
});
