// The cost of loading vectors as `ringspec vectors check` loads them (cli/input.ts loadDocument:
// read, parse, validate, build the state), for one or more checkouts side by side:
//   npx tsx bench/load-vectors.ts [--rounds N] [--passes N] [--cli] [--curve] CHECKOUT... -- DIR...
// Each round runs every checkout once, in turn, each in a fresh process, so a burst of load from
// elsewhere hits all alike; figures are CPU ms (the process's, all its threads: JIT compilation and
// garbage collection on other threads count), medians over the rounds with their ranges.
//
// By default each checkout's loader (cli/input.ts and what it imports) is compiled file by file
// with esbuild, as cli/launch.js compiles the CLI, into a scratch directory outside the checkout
// (its packages from the checkout's node_modules), so every checkout is loaded the same way
// whatever its own CLI start-up. The child process prints:
// - import: importing the loader (zod, building the schemas, contract/): every process pays it;
// - first: the first pass over every *.json file of the DIRs (not recursive; a DIR of folders
//   stands for the folders), keeping what it loaded until it ends, as `vectors check` keeps every
//   vector until it has run them: what one `vectors check` pays;
// - import+first, and warm: the median of the later passes.
// With --curve (default mode), also the first pass's warm-up: its CPU for each hundred files in
// turn, and (Linux) the CPU of import + first pass split between the main thread (parsing,
// validating, building) and the process's other threads (V8's optimising compiler and garbage
// collector helpers), medians over the rounds (/proc counts each thread in 10 ms ticks: a thread
// that ran less may count 0).
// With --cli, each checkout's own `ringspec vectors check DIR... --engine spec` runs instead (its
// own start-up: a compiled copy or tsx), stopped once every vector is loaded (an empty sentinel
// file named after the DIRs marks the end): CPU from process start to the first vector file
// opened (start-up), from there to the sentinel (loading), and both.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";

/** One fresh process's figures (CPU ms). */
interface Sample {
  readonly files: number;
  readonly unusable: number;
  /** Default mode: importing the loader, then each pass. */
  readonly import?: number;
  readonly times?: number[];
  /** --curve: the first pass's CPU for each hundred files; import + first pass by thread (Linux). */
  readonly hundreds?: number[];
  readonly split?: { readonly main: number; readonly others: number } | null;
  /** --cli: process start to the first vector file opened, and from there to all loaded. */
  readonly startup?: number;
  readonly load?: number;
}

/** The child of the default mode (plain JavaScript: no tsx in the measured process). */
const CHILD = String.raw`
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const [compiled, passes, curve, ...dirs] = process.argv.slice(2);
// CPU ms of the main thread and of all the others, from /proc (Linux; null elsewhere).
const threads = () => {
  try {
    let main = 0, others = 0;
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync("/proc/self/task/" + tid + "/stat", "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = ((Number(f[11]) + Number(f[12])) * 1000) / 100;
      if (Number(tid) === process.pid) main += ms; else others += ms;
    }
    return { main, others };
  } catch { return null; }
};
const files = [];
for (const dir of dirs) for (const name of readdirSync(dir).sort()) {
  const path = join(dir, name);
  if (name.endsWith(".json")) files.push(path);
  else if (statSync(path).isDirectory()) for (const inner of readdirSync(path).sort()) if (inner.endsWith(".json")) files.push(join(path, inner));
}
const threadsBefore = curve === "curve" ? threads() : null;
const before = cpu();
const { loadDocument } = await import(join(compiled, "cli/input.mjs"));
const imported = cpu() - before;
const times = [];
let unusable = 0;
const hundreds = [];
let split = null;
for (let p = 0; p < Number(passes); p++) {
  const kept = [];
  const start = cpu();
  let mark = start;
  for (let i = 0; i < files.length; i++) {
    try { kept.push(loadDocument(files[i])); } catch { if (p === 0) unusable++; }
    if (p === 0 && curve === "curve" && ((i + 1) % 100 === 0 || i + 1 === files.length)) { const now = cpu(); hundreds.push(now - mark); mark = now; }
  }
  times.push(cpu() - start);
  if (p === 0 && threadsBefore !== null) { const t = threads(); if (t !== null) split = { main: t.main - threadsBefore.main, others: t.others - threadsBefore.others }; }
  kept.length = 0;
}
process.stdout.write(JSON.stringify({ files: files.length, unusable, import: imported, times, hundreds, split }) + "\n");
`;

/** Preloaded into --cli children: marks the first vector file opened and the sentinel, then exits
 *  (fs.openSync is what cli/input.ts opens a file with). */
const CLI_HOOK = String.raw`
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const open = fs.openSync;
const dirs = JSON.parse(process.env.LOAD_BENCH_DIRS);
let first, files = 0;
fs.openSync = function (path, ...rest) {
  if (typeof path === "string" && path.endsWith(".json")) {
    if (path.endsWith("zzzz-load-bench-sentinel.json")) {
      const end = cpu();
      fs.writeSync(3, JSON.stringify({ files, unusable: 0, startup: first, load: end - first }) + "\n");
      process.exit(0);
    }
    if (dirs.some((d) => path.startsWith(d))) { files++; first ??= cpu(); }
  }
  return open.call(this, path, ...rest);
};
syncBuiltinESMExports();
`;

const RELATIVE_SOURCE_IMPORT = /((?:\bfrom|\bimport)\s*\(?\s*")(\.{1,2}\/[^"]*?)\.(?:m?ts|m?js)(")/g;

/** `root`'s cli/input.ts and every source it imports, compiled one file each into `out` (a
 *  scratch directory whose node_modules is the checkout's), relative imports renamed. */
async function compileLoader(root: string, out: string): Promise<void> {
  const esbuild = await import("esbuild");
  const sources: string[] = [];
  await esbuild.build({
    entryPoints: [join(root, "cli/input.ts")],
    bundle: true,
    write: false,
    outfile: join(out, "graph.mjs"),
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "silent",
    plugins: [{
      name: "sources",
      setup(b) {
        b.onLoad({ filter: /.*/ }, (args) => {
          sources.push(args.path);
          return { contents: readFileSync(args.path, "utf8"), loader: extname(args.path) === ".json" ? "json" : "ts" };
        });
      },
    }],
  });
  const compiled = await esbuild.build({
    entryPoints: sources,
    bundle: false,
    write: false,
    outdir: out,
    outbase: root,
    outExtension: { ".js": ".mjs" },
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "silent",
  });
  for (const file of compiled.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.text.replace(RELATIVE_SOURCE_IMPORT, "$1$2.mjs$3"));
  }
  symlinkSync(join(root, "node_modules"), join(out, "node_modules"));
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const figure = (xs: readonly number[]): string => `${Math.round(median(xs))} (${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))})`;

async function main(argv: readonly string[]): Promise<void> {
  let rounds = 5;
  let passes = 5;
  let cli = false;
  let curve = false;
  const roots: string[] = [];
  const dirs: string[] = [];
  let seenSeparator = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--rounds") rounds = Number(argv[++i]);
    else if (a === "--passes") passes = Number(argv[++i]);
    else if (a === "--cli") cli = true;
    else if (a === "--curve") curve = true;
    else if (a === "--") seenSeparator = true;
    else (seenSeparator ? dirs : roots).push(resolve(a));
  }
  if (roots.length === 0 || dirs.length === 0 || !(rounds >= 1) || !(passes >= 1)) {
    process.stderr.write("usage: npx tsx bench/load-vectors.ts [--rounds N] [--passes N] [--cli] [--curve] CHECKOUT... -- DIR...\n");
    process.exitCode = 2;
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), "ringspec-load-bench-"));
  try {
    const child = join(scratch, "child.mjs");
    writeFileSync(child, CHILD);
    const hook = join(scratch, "hook.mjs");
    writeFileSync(hook, CLI_HOOK);
    // A sentinel the CLI reads after every vector (its directory comes last, files in name order).
    const sentinelDir = join(scratch, "sentinel");
    mkdirSync(sentinelDir);
    writeFileSync(join(sentinelDir, "zzzz-load-bench-sentinel.json"), "");
    const compiledDirs = new Map<string, string>();
    if (!cli) {
      for (const [i, root] of roots.entries()) {
        const out = join(scratch, `checkout-${i}`);
        await compileLoader(root, out);
        compiledDirs.set(root, out);
      }
    }
    // A DIR of folders stands for its folders (vectors check takes the folders as arguments).
    const cliDirs = dirs.flatMap((d) => (readdirSync(d).some((n) => n.endsWith(".json")) ? [d] : readdirSync(d).sort().map((n) => join(d, n)).filter((p) => statSync(p).isDirectory())));
    const results = new Map<string, Sample[]>(roots.map((r) => [r, []]));
    const loads: number[] = [];
    for (let round = 0; round < rounds; round++) {
      loads.push(loadavg()[0]!);
      for (const root of roots) {
        let out: string;
        if (cli) {
          const run = spawnSync(process.execPath, ["--import", hook, join(root, "cli/bin.js"), "vectors", "check", ...cliDirs, sentinelDir, "--engine", "spec"], {
            cwd: root,
            encoding: "utf8",
            maxBuffer: 1 << 20,
            env: { ...process.env, LOAD_BENCH_DIRS: JSON.stringify(cliDirs) },
            stdio: ["ignore", "ignore", "inherit", "pipe"],
          });
          out = String(run.output[3] ?? "");
        } else {
          out = execFileSync(process.execPath, [child, compiledDirs.get(root)!, String(passes), curve ? "curve" : "-", ...dirs], { encoding: "utf8", maxBuffer: 1 << 20 });
        }
        results.get(root)!.push(JSON.parse(out.trim().split("\n").at(-1)!) as Sample);
      }
    }
    process.stdout.write(`${rounds} rounds, load average (1 min) ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}; CPU ms, median (range)\n`);
    for (const [root, runs] of results) {
      const { files, unusable } = runs[0]!;
      if (cli) {
        const startup = runs.map((r) => r.startup!);
        const load = runs.map((r) => r.load!);
        process.stdout.write(`${root}: ${files} files; vectors check: start-up ${figure(startup)}, loading ${figure(load)}, both ${figure(runs.map((r) => r.startup! + r.load!))}\n`);
      } else {
        const first = runs.map((r) => r.times![0]!);
        const imported = runs.map((r) => r.import!);
        const warm = runs.map((r) => median(r.times!.slice(1)));
        process.stdout.write(
          `${root}: ${files} files (${unusable} unusable); import ${figure(imported)}, first pass ${figure(first)}, import + first pass ${figure(runs.map((r) => r.import! + r.times![0]!))}, later passes ${passes > 1 ? figure(warm) : "-"}\n`,
        );
        if (curve) {
          const hundreds = runs[0]!.hundreds!.map((_, k) => Math.round(median(runs.map((r) => r.hundreds![k]!))));
          const splits = runs.flatMap((r) => (r.split ? [r.split] : []));
          const byThread = splits.length === 0 ? "" : `; import + first pass by thread: main ${figure(splits.map((t) => t.main))}, others ${figure(splits.map((t) => t.others))}`;
          process.stdout.write(`  first pass by hundred files: ${hundreds.join(" ")}${byThread}\n`);
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
