// cli/launch.js (with cli/build-lock.js, its one build at a time): how bin.js and the worker
// threads load the TypeScript sources. They are compiled once, file by file, and used while they
// are unchanged; a changed source is seen at the next start; import.meta.url keeps naming the
// source file; the tsx path gives the same result; zod comes from a bundle in the build; the copy
// is keyed on the sources' content, not their times; starts that find it out of date together
// build once, and a builder killed mid-build leaves nothing that stops the next start. Run on a
// scratch package (a copy of the launcher's files, its own cache), so the project's cache is not
// touched.
// Each start is a module graph of its own: a worker thread, as a campaign's workers start (a
// process costs more to start), or a process where tsx loads the sources (tsx registers its module
// hooks for the whole process).
import { execFile, spawn } from "node:child_process";
import { Worker } from "node:worker_threads";
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let scratch: string;

function run(env: Record<string, string> = {}, entry = "src/entry.ts"): Promise<{ code: number; stdout: string; stderr: string }> {
  return runProcessIn(scratch, env, entry);
}

/** A start in a process of its own, of the scratch package at `root`. */
function runProcessIn(root: string, env: Record<string, string> = {}, entry = "src/entry.ts"): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `const { launch } = await import(${JSON.stringify(pathToFileURL(join(root, "cli/launch.js")).href)});
const m = await launch(new URL(${JSON.stringify(pathToFileURL(join(root, entry)).href)}));
console.log(JSON.stringify(m.report()));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

/** A start under way: its stderr so far (read while it runs), and its end. */
interface Start {
  stderr: () => string;
  done: Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Collects a stream's text; `text()` is what arrived so far, `end` all of it. */
function collect(stream: NodeJS.ReadableStream): { text: () => string; end: Promise<string> } {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (d: string) => (text += d));
  return { text: () => text, end: new Promise((resolve) => stream.on("end", () => resolve(text))) };
}

/** The environment of a start that stops at the beginning of its build (cli/hold-build.mjs): it
 *  writes `${mark}.<pid>-<thread>` when esbuild is started (or the build writes its `writes`-th
 *  compiled file), then waits until `release` exists (for at most a minute). */
function holding(mark: string, release: string, writes = 0): Record<string, string> {
  return { HOLD_MARK: mark, HOLD_RELEASE: release, HOLD_WRITES: String(writes), RINGSPEC_LAUNCH_DEBUG: "1" };
}

/** A start in a worker thread of this process, as a campaign's workers start: launch.js loads
 *  `entry`, whose report() is printed on the thread's stdout. `hold` (see holding()) makes it stop
 *  in its build. */
function startInThread(entry = "src/entry.ts", hold?: Record<string, string>, root = scratch): Start {
  const worker = new Worker(join(root, "cli/run-in-thread.mjs"), {
    workerData: { launch: pathToFileURL(join(root, "cli/launch.js")).href, entry: pathToFileURL(join(root, entry)).href, hold: hold !== undefined },
    env: { ...process.env, ...hold },
    stdout: true,
    stderr: true,
  });
  const stdout = collect(worker.stdout);
  const stderr = collect(worker.stderr);
  let error = "";
  worker.on("error", (e) => (error = `${e.name}: ${e.message}\n`));
  const code = new Promise<number>((resolve) => worker.on("exit", resolve));
  return { stderr: stderr.text, done: Promise.all([code, stdout.end, stderr.end]).then(([c, out, err]) => ({ code: c, stdout: out, stderr: err + error })) };
}

/** What run() gives for a start in a worker thread of this process (of the scratch package at
 *  `root`). */
function runInThread(entry = "src/entry.ts", root = scratch): Promise<{ code: number; stdout: string; stderr: string }> {
  return startInThread(entry, undefined, root).done;
}

/** A start in a process of its own that stops in its build (see holding()); `kill()` kills it. */
function startHeldProcess(hold: Record<string, string>): Start & { pid: number; kill: () => void } {
  const script = `await import(${JSON.stringify(pathToFileURL(join(scratch, "cli/hold-build.mjs")).href)});
const { launch } = await import(${JSON.stringify(pathToFileURL(join(scratch, "cli/launch.js")).href)});
const m = await launch(new URL(${JSON.stringify(pathToFileURL(join(scratch, "src/entry.ts")).href)}));
console.log(JSON.stringify(m.report()));`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: scratch, env: { ...process.env, ...hold }, stdio: ["ignore", "pipe", "pipe"] });
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  const code = new Promise<number>((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal === null ? -1 : -2))));
  return { pid: child.pid ?? 0, kill: () => child.kill("SIGKILL"), stderr: stderr.text, done: Promise.all([code, stdout.end, stderr.end]).then(([c, out, err]) => ({ code: c, stdout: out, stderr: err })) };
}

/** Waits until `ready()` (checked every 20 ms); the bound only guards against a hang. */
async function waitFor(what: string, ready: () => boolean): Promise<void> {
  const until = Date.now() + 30_000;
  while (!ready()) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The marks held starts left (see holding()): one per start that began a build. */
const marksOf = (mark: string) => readdirSync(dirname(mark)).filter((f) => f.startsWith(`${mark.split("/").at(-1)!}.`));

/** The build directories of src/entry.ts in the cache (none before the cache's first build). */
const entryBuilds = () => (existsSync(CACHE()) ? readdirSync(CACHE()) : []).filter((f) => f.startsWith("src-entry-ts.") && statSync(join(CACHE(), f)).isDirectory());

function writeDep(value: string): void {
  writeFileSync(join(scratch, "src/dep.ts"), `export const value: string = ${JSON.stringify(value)};\nexport const here: string = import.meta.url;\n`);
}

const CACHE = () => join(scratch, "node_modules/.cache/ringspec");
/** The compiled entry a manifest of the cache names. */
const compiledEntry = (manifest: string) => join(CACHE(), (JSON.parse(readFileSync(join(CACHE(), manifest), "utf8")) as { entry: string }).entry);
/** The compiled entry of src/entry.ts, and the compiled dep.ts beside it. */
const COMPILED = () => compiledEntry("src-entry-ts.json");
const COMPILED_DEP = () => join(dirname(COMPILED()), "dep.mjs");
/** The text of a manifest of the cache, "" while there is none. */
const manifestText = (manifest: string) => (existsSync(join(CACHE(), manifest)) ? readFileSync(join(CACHE(), manifest), "utf8") : "");

// Each test sets up what it relies on (dep.ts's value, a compiled copy or none, the cache folder):
// they share one scratch package and its cache, and run in any order (--sequence.shuffle).

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "ringspec-launch-"));
  mkdirSync(join(scratch, "cli"));
  mkdirSync(join(scratch, "src"));
  mkdirSync(join(scratch, "node_modules"));
  for (const file of ["cli/launch.js", "cli/launch-cache.js", "cli/launch-compile.js", "cli/launch-publish.js", "cli/build-lock.js"]) copyFileSync(join(ROOT, file), join(scratch, file));
  writeFileSync(join(scratch, "cli/run-in-thread.mjs"), [
    `import { workerData } from "node:worker_threads";`,
    `if (workerData.hold) await import("./hold-build.mjs");`,
    `const { launch } = await import(workerData.launch);`,
    `const m = await launch(new URL(workerData.entry));`,
    `console.log(JSON.stringify(m.report()));`,
  ].join("\n") + "\n");
  // Makes a start stop in its build, where the test chooses (see holding()): when it starts
  // esbuild's service (each thread has its own child_process module), or when it has written
  // HOLD_WRITES compiled files (node:fs's named exports follow the patched function).
  writeFileSync(join(scratch, "cli/hold-build.mjs"), [
    `import childProcess from "node:child_process";`,
    `import fs from "node:fs";`,
    `import { syncBuiltinESMExports } from "node:module";`,
    `import { threadId } from "node:worker_threads";`,
    `const { HOLD_MARK, HOLD_RELEASE, HOLD_WRITES } = process.env;`,
    `const hold = () => {`,
    `  fs.writeFileSync(\`\${HOLD_MARK}.\${process.pid}-\${threadId}\`, "");`,
    `  const cell = new Int32Array(new SharedArrayBuffer(4));`,
    `  const until = Date.now() + 60_000;`,
    `  while (!fs.existsSync(HOLD_RELEASE) && Date.now() < until) Atomics.wait(cell, 0, 0, 20);`,
    `};`,
    `const writes = Number(HOLD_WRITES);`,
    `if (writes === 0) {`,
    `  const spawn = childProcess.spawn;`,
    `  childProcess.spawn = (...args) => {`,
    `    if (/esbuild/.test(String(args[0]))) hold();`,
    `    return spawn(...args);`,
    `  };`,
    `} else {`,
    `  const writeFileSync = fs.writeFileSync;`,
    `  let written = 0;`,
    `  fs.writeFileSync = (path, ...rest) => {`,
    `    writeFileSync(path, ...rest);`,
    `    if (typeof path === "string" && /\\/src-entry-ts\\.[^/]*\\/.*\\.mjs$/.test(path) && ++written === writes) hold();`,
    `  };`,
    `  syncBuiltinESMExports();`,
    `}`,
  ].join("\n") + "\n");
  copyFileSync(join(ROOT, "tsconfig.json"), join(scratch, "tsconfig.json"));
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ type: "module" }));
  for (const name of ["tsx", "cli-progress"]) symlinkSync(join(ROOT, "node_modules", name), join(scratch, "node_modules", name));
  // zod and esbuild with a package.json and files of their own (their folders linked): "upgraded"
  // below.
  for (const name of ["zod", "esbuild"]) {
    const installed = join(ROOT, "node_modules", name);
    mkdirSync(join(scratch, "node_modules", name));
    for (const e of readdirSync(installed, { withFileTypes: true })) {
      if (e.isDirectory()) symlinkSync(join(installed, e.name), join(scratch, "node_modules", name, e.name));
      else copyFileSync(join(installed, e.name), join(scratch, "node_modules", name, e.name));
    }
  }
  // Both of zod's entries the sources use, as contract/load.ts does.
  writeFileSync(join(scratch, "src/validate.ts"), [
    `import { z } from "zod";`,
    `import { compileFn, config } from "zod/v4/core";`,
    `const Point = z.strictObject({ x: z.number().int(), y: z.number().int() });`,
    `const compiled = z.withParser(Point, compileFn(Point));`,
    `export function report(): { parsed: unknown; refused: string | undefined; oneCopy: boolean } {`,
    `  const bad = compiled.safeParse({ x: 1, y: "2" });`,
    `  return { parsed: compiled.parse({ x: 1, y: 2 }), refused: bad.success ? undefined : bad.error.issues[0]?.path.join("."), oneCopy: z.config === config };`,
    `}`,
  ].join("\n") + "\n");
  // The entry imports one module statically and one lazily (as cli/main.ts loads its commands);
  // progress.ts default-imports a CommonJS package (as cli/conform.ts does).
  writeFileSync(join(scratch, "src/entry.ts"), `import { value, here } from "./dep.ts";\nimport { progress } from "./progress.ts";\nconst { lazy } = await import("./lazy.ts");\nexport function report(): { value: string; here: string; lazy: number; progress: string } {\n  return { value, here, lazy, progress };\n}\n`);
  // The lazy module reaches two more, one of them in a folder of its own importing back up: the
  // sources a build finds are the compiled code's imports, followed to the end.
  writeFileSync(join(scratch, "src/lazy.ts"), `import { two } from "./deep/two.ts";\nexport const lazy: number = 40 + two;\n`);
  mkdirSync(join(scratch, "src/deep"));
  writeFileSync(join(scratch, "src/deep/two.ts"), `import { one } from "../one.ts";\nexport const two: number = one * 2;\n`);
  writeFileSync(join(scratch, "src/one.ts"), "export const one: number = 1;\n");
  writeFileSync(join(scratch, "src/progress.ts"), `import cliProgress from "cli-progress";\nexport const progress: string = typeof cliProgress.SingleBar;\n`);
  writeDep("first");
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("cli/launch.js", () => {
  it("compiles on the first start, uses the copy while the sources are unchanged, and compiles again when one changes", async () => {
    const dep = pathToFileURL(join(scratch, "src/dep.ts")).href;
    writeDep("first");
    rmSync(join(CACHE(), "src-entry-ts.json"), { force: true });
    const first = await runInThread();
    expect(first.stderr).toBe("");
    expect(JSON.parse(first.stdout)).toEqual({ value: "first", here: dep, lazy: 42, progress: "function" });
    expect(existsSync(COMPILED())).toBe(true);
    const built = statSync(COMPILED()).mtimeMs;

    const again = await runInThread();
    expect(JSON.parse(again.stdout)).toEqual({ value: "first", here: dep, lazy: 42, progress: "function" });
    expect(statSync(COMPILED()).mtimeMs).toBe(built);

    // A compiled entry deleted behind its manifest's back is compiled again.
    rmSync(COMPILED());
    expect(JSON.parse((await runInThread()).stdout)).toEqual({ value: "first", here: dep, lazy: 42, progress: "function" });
    expect(existsSync(COMPILED())).toBe(true);

    writeDep("second, longer");
    const changed = await runInThread();
    expect(JSON.parse(changed.stdout)).toEqual({ value: "second, longer", here: dep, lazy: 42, progress: "function" });
    expect(readFileSync(COMPILED_DEP(), "utf8")).toContain("second, longer");
  });

  it("entries whose paths differ only in their separators (src/a-b.ts, src/a/b.ts) each run their own build, built once each", async () => {
    writeFileSync(join(scratch, "src/a-b.ts"), `export function report(): string {\n  return "a-b";\n}\n`);
    mkdirSync(join(scratch, "src/a"), { recursive: true });
    writeFileSync(join(scratch, "src/a/b.ts"), `export function report(): string {\n  return "a/b";\n}\n`);
    const manifests = () => readdirSync(CACHE()).filter((f) => /^src-a-b-ts.*\.json$/.test(f)).sort();
    const rounds: string[][] = [];
    for (let round = 0; round < 2; round++) {
      expect(JSON.parse((await runInThread("src/a-b.ts")).stdout)).toBe("a-b");
      expect(JSON.parse((await runInThread("src/a/b.ts")).stdout)).toBe("a/b");
      rounds.push(manifests().map(manifestText));
    }
    // One manifest each, which the second round found current (it built nothing).
    expect(manifests()).toHaveLength(2);
    expect(rounds[1]).toEqual(rounds[0]);
    const sources = manifests().map((m) => (JSON.parse(manifestText(m)) as { source: string }).source).sort();
    expect(sources).toEqual(["src/a-b.ts", "src/a/b.ts"]);
  });

  it("a build missing a compiled module (a cache cleaner, a partial deletion) is not run: the start compiles again, statically or lazily imported alike", async () => {
    for (const module of ["dep.mjs", "lazy.mjs"]) {
      writeDep(`without ${module}`);
      expect((await runInThread()).code).toBe(0);
      const build = dirname(COMPILED());
      rmSync(join(build, module));
      const started = await runInThread();
      expect(started.stderr).toBe("");
      expect(JSON.parse(started.stdout)).toMatchObject({ value: `without ${module}`, lazy: 42 });
      expect(dirname(COMPILED())).not.toBe(build);
      expect(existsSync(join(dirname(COMPILED()), module))).toBe(true);
    }
  });

  it("a line appended to a source (its old bytes kept, the file longer) compiles again", async () => {
    writeDep("appended to");
    expect((await runInThread()).code).toBe(0);
    const compiled = COMPILED();
    appendFileSync(join(scratch, "src/dep.ts"), "export const appended: number = 1;\n");
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "appended to" });
    expect(COMPILED()).not.toBe(compiled);
    expect(readFileSync(COMPILED_DEP(), "utf8")).toContain("appended = 1");
  });

  it("a source deleted since the build is not run from the copy: the start fails as through tsx, and runs again once the file is back", async () => {
    writeDep("deleted");
    expect((await runInThread()).code).toBe(0);
    const one = join(scratch, "src/one.ts");
    const text = readFileSync(one, "utf8");
    rmSync(one);
    try {
      const gone = await run();
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toContain("one.ts");
    } finally {
      writeFileSync(one, text);
    }
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "deleted", lazy: 42 });
  });

  it("is keyed on the sources' content: an edit that keeps a file's size and modification time is seen; a touch alone compiles nothing", async () => {
    // As after a checkout that keeps times, `touch -r`, `cp -p` or a clock step: the same size and
    // time, other bytes. (Whole seconds: a time set to the nanosecond cannot be restored exactly.)
    const dep = join(scratch, "src/dep.ts");
    const then = 1_700_000_000;
    writeDep("alpha");
    utimesSync(dep, then, then);
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "alpha" });
    const before = statSync(dep);
    writeDep("omega");
    utimesSync(dep, then, then);
    const after = statSync(dep);
    expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "omega" });
    expect(readFileSync(COMPILED_DEP(), "utf8")).toContain('"omega"');

    // Touched, the same bytes: the copy is current.
    const compiled = COMPILED();
    const built = statSync(compiled).mtimeMs;
    utimesSync(dep, then + 60, then + 60);
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "omega" });
    expect(COMPILED()).toBe(compiled);
    expect(statSync(compiled).mtimeMs).toBe(built);
  });

  it("two starts that find the copy out of date at once (a campaign's worker threads) build once, the second waiting for the first; both run the new code", async () => {
    writeDep("shared after");
    const builds = entryBuilds();
    const mark = join(scratch, "shared-mark");
    const release = join(scratch, "shared-release");
    // The first stops once it has begun its build; the second starts while it is stopped there,
    // and the first goes on once the second waits (or, wrongly, has begun a build of its own).
    const first = startInThread("src/entry.ts", holding(mark, release));
    let second: Start | undefined;
    try {
      await waitFor("the first start's build", () => marksOf(mark).length === 1);
      second = startInThread("src/entry.ts", holding(mark, release));
      const started = second;
      await waitFor("the second start to wait or build", () => started.stderr().includes("waiting for the build of src-entry-ts") || marksOf(mark).length > 1);
    } finally {
      // Released also when a wait above failed: no thread is left stopped.
      writeFileSync(release, "");
    }
    const [a, b] = await Promise.all([first.done, second.done]);
    expect(JSON.parse(a.stdout)).toMatchObject({ value: "shared after" });
    expect(JSON.parse(b.stdout)).toMatchObject({ value: "shared after" });
    expect(marksOf(mark)).toHaveLength(1);
    expect(b.stderr).not.toContain("building");
    expect(entryBuilds().filter((d) => !builds.includes(d))).toHaveLength(1);
    expect(existsSync(join(CACHE(), "src-entry-ts.lock"))).toBe(false);
  });

  it("a builder killed mid-build (some of its modules written) holds up no one: the next start takes its lock over at once, builds, and never uses the half-written copy", async () => {
    writeDep("killed after");
    const builds = entryBuilds();
    const mark = join(scratch, "killed-mark");
    const builder = startHeldProcess(holding(mark, join(scratch, "never-released"), 2));
    try {
      await waitFor("the builder to write its second module", () => marksOf(mark).length === 1);
    } finally {
      builder.kill();
      await builder.done;
    }
    // Its directory holds two compiled modules and no manifest names it.
    const halfWritten = entryBuilds().filter((d) => !builds.includes(d));
    expect(halfWritten).toHaveLength(1);
    expect(manifestText("src-entry-ts.json")).not.toContain(halfWritten[0]!);
    expect(existsSync(join(CACHE(), "src-entry-ts.lock"))).toBe(true);
    // What it left is removed by a later build once an hour old (here: made to look so), with the
    // unfinished manifest of a builder killed just before renaming its own.
    const unfinished = join(CACHE(), "src-entry-ts.json.999999-0.tmp");
    writeFileSync(unfinished, "{");
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const path of [join(CACHE(), halfWritten[0]!), unfinished]) utimesSync(path, hoursAgo, hoursAgo);

    const next = await run({ RINGSPEC_LAUNCH_DEBUG: "1" });
    expect(JSON.parse(next.stdout)).toMatchObject({ value: "killed after" });
    expect(next.stderr).toContain(`is taken over: process ${builder.pid} is not running`);
    expect(next.stderr).not.toContain("waiting");
    expect(COMPILED().startsWith(join(CACHE(), halfWritten[0]!))).toBe(false);
    expect(existsSync(join(CACHE(), "src-entry-ts.lock"))).toBe(false);
    expect(existsSync(join(CACHE(), halfWritten[0]!))).toBe(false);
    expect(existsSync(unfinished)).toBe(false);
  });

  it("a build replaced by a newer one is kept for an hour from its replacement, not from when it was built (processes started from it may still import its lazily loaded modules)", async () => {
    writeDep("in use");
    expect((await runInThread()).code).toBe(0);
    // Built two hours ago, and a process started from it a moment ago: the sources change now.
    const replaced = dirname(COMPILED());
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(join(CACHE(), entryBuilds().find((d) => replaced.startsWith(`${join(CACHE(), d)}/`))!), hoursAgo, hoursAgo);
    writeDep("replacing it");
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "replacing it" });
    expect(dirname(COMPILED())).not.toBe(replaced);
    expect(existsSync(join(replaced, "lazy.mjs"))).toBe(true);
  });

  it("a lock older than the longest wait is taken over, even when its process still runs (or its text was never written)", async () => {
    const lock = join(CACHE(), "src-entry-ts.lock");
    mkdirSync(CACHE(), { recursive: true });
    writeDep("old lock, held by this test's process");
    writeFileSync(lock, JSON.stringify({ pid: process.pid, thread: 99, time: Date.now() - 600_000 }));
    const held = await run({ RINGSPEC_LAUNCH_DEBUG: "1" });
    expect(JSON.parse(held.stdout)).toMatchObject({ value: "old lock, held by this test's process" });
    expect(held.stderr).toContain("is taken over: older than");
    expect(existsSync(lock)).toBe(false);

    writeDep("old lock, empty");
    writeFileSync(lock, "");
    const old = new Date(Date.now() - 600_000);
    utimesSync(lock, old, old);
    const empty = await run({ RINGSPEC_LAUNCH_DEBUG: "1" });
    expect(JSON.parse(empty.stdout)).toMatchObject({ value: "old lock, empty" });
    expect(empty.stderr).toContain("is taken over: older than");
    expect(existsSync(lock)).toBe(false);
  });

  it("a copy of the package elsewhere (its cache copied with it, times kept) compiles its own copy: nothing it runs names the original's files", async () => {
    writeDep("copied");
    expect((await runInThread()).code).toBe(0);
    const copy = mkdtempSync(join(tmpdir(), "ringspec-launch-copy-"));
    try {
      cpSync(scratch, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      const started = await runInThread("src/entry.ts", copy);
      expect(JSON.parse(started.stdout)).toMatchObject({ value: "copied", here: pathToFileURL(join(copy, "src/dep.ts")).href });
      const manifest = JSON.parse(readFileSync(join(copy, "node_modules/.cache/ringspec/src-entry-ts.json"), "utf8")) as { entry: string };
      const build = join(copy, "node_modules/.cache/ringspec", manifest.entry.split("/")[0]!);
      for (const file of readdirSync(build, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
        expect(readFileSync(join(file.parentPath, file.name), "utf8")).not.toContain(scratch);
      }
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it("compiles again when what shapes the compiled code besides the sources changes: tsconfig.json, esbuild's package, launch.js itself", async () => {
    writeFileSync(join(scratch, "src/fields.ts"), "class Point {\n  x?: number;\n}\nexport function report(): string[] {\n  return Object.keys(new Point());\n}\n");
    const tsconfig = join(scratch, "tsconfig.json");
    const esbuildPackage = join(scratch, "node_modules/esbuild/package.json");
    const launchJs = join(scratch, "cli/launch.js");
    const originals = new Map([tsconfig, esbuildPackage, launchJs].map((file) => [file, readFileSync(file, "utf8")]));
    const start = async () => JSON.parse((await runInThread("src/fields.ts")).stdout) as string[];
    try {
      expect(await start()).toEqual(["x"]);
      // Class fields as assignments: a declared field no longer defines a property.
      const options = JSON.parse(originals.get(tsconfig)!) as { compilerOptions: Record<string, unknown> };
      writeFileSync(tsconfig, JSON.stringify({ ...options, compilerOptions: { ...options.compilerOptions, useDefineForClassFields: false } }));
      expect(await start()).toEqual([]);
      // Another esbuild, and launch.js changed (its rewriting of esbuild's output may have): each
      // builds a new copy.
      for (const [file, edit] of [[esbuildPackage, (t: string) => t.replace(/"version": "([^"]+)"/, '"version": "$1-other"')], [launchJs, (t: string) => `${t}// edited\n`]] as const) {
        const before = compiledEntry("src-fields-ts.json");
        writeFileSync(file, edit(originals.get(file)!));
        expect(await start()).toEqual([]);
        expect(compiledEntry("src-fields-ts.json")).not.toBe(before);
      }
    } finally {
      for (const [file, text] of originals) writeFileSync(file, text);
    }
  });

  it("a cache folder where nothing can be written (read-only) loads the sources through tsx at once, without compiling in vain", async () => {
    // The package copied without its cache, whose folder is one of sysfs's, where even root can
    // create no file (EACCES; EROFS where /sys is mounted read-only).
    const unwritable = "/sys/kernel";
    expect(() => openSync(join(unwritable, "ringspec-probe.lock"), "wx")).toThrow(/EACCES|EROFS/);
    const copy = mkdtempSync(join(tmpdir(), "ringspec-launch-readonly-"));
    try {
      cpSync(scratch, copy, { recursive: true, verbatimSymlinks: true, filter: (source) => !source.startsWith(CACHE()) });
      mkdirSync(join(copy, "node_modules/.cache"), { recursive: true });
      symlinkSync(unwritable, join(copy, "node_modules/.cache/ringspec"));
      writeFileSync(join(copy, "src/dep.ts"), `export const value: string = "read-only";\nexport const here: string = import.meta.url;\n`);
      const started = await runProcessIn(copy, { RINGSPEC_LAUNCH_DEBUG: "1" });
      expect(JSON.parse(started.stdout)).toMatchObject({ value: "read-only", here: pathToFileURL(join(copy, "src/dep.ts")).href });
      expect(started.stderr).not.toContain("building");
      expect(started.stderr).toMatch(/loading the sources through tsx: .*(EACCES|EROFS)/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it("compiles each source to a module of its own that keeps its top-level const (no bundle: a bundle's vars are not folded by V8)", async () => {
    writeDep("kept");
    expect((await runInThread()).code).toBe(0);
    const dep = readFileSync(COMPILED_DEP(), "utf8");
    expect(dep).toMatch(/^const value = "kept";/m);
    expect(dep).not.toMatch(/\bvar\b/);
    // The entry imports the compiled files, not the sources.
    const entry = readFileSync(COMPILED(), "utf8");
    expect(entry).toContain('from "./dep.mjs"');
    expect(entry).toContain('import("./lazy.mjs")');
  });

  it("a default import of a CommonJS package becomes require() (module.exports, without Node scanning the package for export names)", async () => {
    writeDep("cjs");
    const r = await runInThread();
    expect(JSON.parse(r.stdout)).toMatchObject({ progress: "function" });
    const progress = readFileSync(join(dirname(COMPILED()), "progress.mjs"), "utf8");
    expect(progress).toContain('const cliProgress = __ringspecRequire("cli-progress");');
    expect(progress).not.toMatch(/\bfrom "cli-progress"/);
  });

  it("zod loads from a bundle in the build, its two entries sharing one copy; a new zod package builds again", async () => {
    const expected = { parsed: { x: 1, y: 2 }, refused: "y", oneCopy: true };
    const first = await runInThread("src/validate.ts");
    expect(first.stderr).toBe("");
    expect(JSON.parse(first.stdout)).toEqual(expected);
    const manifest = join(CACHE(), "src-validate-ts.json");
    const compiled = compiledEntry("src-validate-ts.json");
    const text = readFileSync(compiled, "utf8");
    // The package's ~80 modules are not imported one by one: the build's bundles are.
    expect(text).not.toMatch(/from "zod/);
    /** The package bundles a compiled file imports. */
    const bundlesIn = (compiledText: string) => [...compiledText.matchAll(/from "(file:[^"]+\/_packages\/[^"]+)"/g)].map((m) => fileURLToPath(m[1]!));
    const bundles = bundlesIn(text);
    expect(bundles.map((b) => b.split("/").at(-1))).toEqual(["zod.mjs", "zod-v4-core.mjs"]);
    for (const b of bundles) expect(existsSync(b)).toBe(true);
    // zod's package.json is one of the build's inputs: the same file touched builds nothing;
    // another zod (here: the same one, its package.json changed) is bundled again, into a folder
    // of its own.
    expect(JSON.parse((await runInThread("src/validate.ts")).stdout)).toEqual(expected);
    expect(readFileSync(manifest, "utf8")).toContain(compiled.slice(CACHE().length + 1));
    const packageJson = join(scratch, "node_modules/zod/package.json");
    const later = new Date(Date.now() + 5_000);
    utimesSync(packageJson, later, later);
    expect(JSON.parse((await runInThread("src/validate.ts")).stdout)).toEqual(expected);
    expect(readFileSync(manifest, "utf8")).toContain(compiled.slice(CACHE().length + 1));
    writeFileSync(packageJson, readFileSync(packageJson, "utf8").replace(/"version": "([^"]+)"/, '"version": "$1-other"'));
    expect(JSON.parse((await runInThread("src/validate.ts")).stdout)).toEqual(expected);
    expect(readFileSync(manifest, "utf8")).not.toContain(compiled.slice(CACHE().length + 1));
    const again = bundlesIn(readFileSync(compiledEntry("src-validate-ts.json"), "utf8"));
    expect(again).toHaveLength(2);
    expect(dirname(again[0]!)).not.toBe(dirname(bundles[0]!));
  });

  it("the zod bundles are keyed on the build's inputs too: the launcher's bundle options changed bundle zod again", async () => {
    const launchJs = join(scratch, "cli/launch-compile.js");
    const original = readFileSync(launchJs, "utf8");
    /** The zod bundle a start of src/validate.ts imports, and its text. */
    const zodBundle = () => {
      const bundle = fileURLToPath(/from "(file:[^"]+\/_packages\/[^"]+\/zod\.mjs)"/.exec(readFileSync(compiledEntry("src-validate-ts.json"), "utf8"))![1]!);
      return { bundle, text: readFileSync(bundle, "utf8") };
    };
    try {
      expect((await runInThread("src/validate.ts")).code).toBe(0);
      const before = zodBundle();
      expect(before.text).not.toContain("// bundled with a banner");
      const withBanner = original.replace(/(splitting: true,\n)/, '$1    banner: { js: "// bundled with a banner" },\n');
      expect(withBanner).not.toBe(original);
      writeFileSync(launchJs, withBanner);
      expect(JSON.parse((await runInThread("src/validate.ts")).stdout)).toMatchObject({ oneCopy: true });
      const after = zodBundle();
      expect(after.text).toContain("// bundled with a banner");
      expect(dirname(after.bundle)).not.toBe(dirname(before.bundle));
    } finally {
      writeFileSync(launchJs, original);
    }
  });

  it("package bundle folders no manifest names are removed by a later build once an hour old; a named one is kept, however old", async () => {
    expect((await runInThread("src/validate.ts")).code).toBe(0);
    const packages = join(CACHE(), "_packages");
    const named = dirname(fileURLToPath(/from "(file:[^"]+\/_packages\/[^"]+\.mjs)"/.exec(readFileSync(compiledEntry("src-validate-ts.json"), "utf8"))![1]!));
    const unnamedOld = join(packages, "0000000000000000");
    const unnamedNew = join(packages, "1111111111111111");
    for (const folder of [unnamedOld, unnamedNew]) {
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "zod.mjs"), "export {};\n");
    }
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const folder of [unnamedOld, named]) utimesSync(folder, hoursAgo, hoursAgo);
    writeDep("packages aged");
    expect(JSON.parse((await runInThread()).stdout)).toMatchObject({ value: "packages aged" });
    expect(existsSync(unnamedOld)).toBe(false);
    expect(existsSync(unnamedNew)).toBe(true);
    expect(existsSync(named)).toBe(true);
    rmSync(unnamedNew, { recursive: true });

    // Replaced (another zod), the old bundles are kept an hour from their replacement, as a build is.
    utimesSync(named, hoursAgo, hoursAgo);
    const packageJson = join(scratch, "node_modules/zod/package.json");
    const original = readFileSync(packageJson, "utf8");
    try {
      writeFileSync(packageJson, original.replace(/"version": "([^"]+)"/, '"version": "$1-aged"'));
      expect(JSON.parse((await runInThread("src/validate.ts")).stdout)).toMatchObject({ oneCopy: true });
      expect(readFileSync(compiledEntry("src-validate-ts.json"), "utf8")).not.toContain(pathToFileURL(named).href);
      expect(existsSync(named)).toBe(true);
    } finally {
      writeFileSync(packageJson, original);
    }
  });

  it("RINGSPEC_LAUNCH=tsx loads the sources through tsx, with the same result", async () => {
    writeDep("before tsx");
    expect((await runInThread()).code).toBe(0);
    const manifest = manifestText("src-entry-ts.json");
    writeDep("third");
    const tsx = await run({ RINGSPEC_LAUNCH: "tsx" });
    expect(tsx.stderr).toBe("");
    expect(JSON.parse(tsx.stdout)).toEqual({ value: "third", here: pathToFileURL(join(scratch, "src/dep.ts")).href, lazy: 42, progress: "function" });
    // The tsx path leaves the compiled copy as it was.
    expect(manifestText("src-entry-ts.json")).toBe(manifest);
    expect(readFileSync(COMPILED_DEP(), "utf8")).toContain('"before tsx"');
  });

  it("RINGSPEC_LAUNCH set to what it does not know says so on one line; RINGSPEC_LAUNCH_DEBUG other than 1 prints nothing", async () => {
    writeDep("unknown mode");
    const started = await run({ RINGSPEC_LAUNCH: "tsc", RINGSPEC_LAUNCH_DEBUG: "0" });
    expect(JSON.parse(started.stdout)).toMatchObject({ value: "unknown mode" });
    // One line, though the start built (which RINGSPEC_LAUNCH_DEBUG=1 would report).
    expect(started.stderr).toBe('ringspec: RINGSPEC_LAUNCH="tsc" is not recognised (only "tsx" is): the compiled copy is used\n');
    expect(readFileSync(COMPILED_DEP(), "utf8")).toContain('"unknown mode"');
  });

  it("compileAhead (npm ci: cli/compile-ahead.js) compiles an entry without running it; its first start uses that copy", async () => {
    const marker = join(scratch, "ahead-ran");
    writeFileSync(join(scratch, "src/ahead.ts"), `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran");\nexport function report(): string {\n  return "ahead";\n}\n`);
    const script = `const { compileAhead } = await import(${JSON.stringify(pathToFileURL(join(scratch, "cli/launch.js")).href)});
await compileAhead([new URL(${JSON.stringify(pathToFileURL(join(scratch, "src/ahead.ts")).href)})]);`;
    const ahead = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: scratch, timeout: 60_000 }, (error, _stdout, stderr) => (error === null ? resolve(stderr) : reject(error)));
    });
    expect(ahead).toBe("");
    expect(existsSync(marker)).toBe(false);
    const compiled = compiledEntry("src-ahead-ts.json");
    const built = statSync(compiled).mtimeMs;
    const first = await run({}, "src/ahead.ts");
    expect(JSON.parse(first.stdout)).toBe("ahead");
    expect(existsSync(marker)).toBe(true);
    expect(compiledEntry("src-ahead-ts.json")).toBe(compiled);
    expect(statSync(compiled).mtimeMs).toBe(built);
  });

  it("a build stops esbuild's service: the child process esbuild spawned is killed, its pipes closed", async () => {
    // Seen on the ChildProcess esbuild spawns (child_process.spawn wrapped before esbuild loads),
    // whose flags kill() and destroy() set at once: no waiting. (process.getActiveResourcesInfo()
    // lists nothing either way, for esbuild unrefs its idle service.) Left running, the service of a
    // worker thread that built became a zombie once the thread ended.
    writeFileSync(join(scratch, "src/stopped.ts"), "export const stopped: number = 1;\n");
    const script = `import childProcess from "node:child_process";
const spawned = [];
const spawn = childProcess.spawn;
childProcess.spawn = (...args) => {
  const child = spawn(...args);
  spawned.push(child);
  return child;
};
const { compileAhead } = await import(${JSON.stringify(pathToFileURL(join(scratch, "cli/launch.js")).href)});
await compileAhead([new URL(${JSON.stringify(pathToFileURL(join(scratch, "src/stopped.ts")).href)})]);
console.log(JSON.stringify(spawned.map((c) => ({ file: c.spawnfile, killed: c.killed, stdin: c.stdin.destroyed, stdout: c.stdout.destroyed }))));`;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: scratch, timeout: 60_000 }, (error, out) => (error === null ? resolve(out) : reject(error)));
    });
    const children = JSON.parse(stdout) as { file: string; killed: boolean; stdin: boolean; stdout: boolean }[];
    expect(children).toHaveLength(1);
    expect(children[0]!.file).toMatch(/esbuild$/);
    expect(children[0]).toMatchObject({ killed: true, stdin: true, stdout: true });
    expect(existsSync(compiledEntry("src-stopped-ts.json"))).toBe(true);
  });

  it("a source that does not compile falls back to tsx, whose error the process reports", async () => {
    writeFileSync(join(scratch, "src/dep.ts"), "export const value: string = ;\n");
    const broken = await run({ RINGSPEC_LAUNCH_DEBUG: "1" });
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain("dep.ts");
    // Why it fell back, on one line (esbuild's message spans several): the first error's place.
    expect(broken.stderr).toMatch(/^ringspec launch \[[^\]]+\]: loading the sources through tsx: src\/dep\.ts:1:\d+: \S.*$/m);
    // The failed build released its lock: the next start, the source mended, builds at once.
    expect(existsSync(join(CACHE(), "src-entry-ts.lock"))).toBe(false);
    writeDep("mended");
    const mended = await run({ RINGSPEC_LAUNCH_DEBUG: "1" });
    expect(JSON.parse(mended.stdout)).toMatchObject({ value: "mended" });
    expect(mended.stderr).not.toContain("waiting");
  });
});
