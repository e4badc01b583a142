// The cost of loading vectors as `ringspec vectors check` loads them (cli/input.ts loadDocument:
// read, parse, validate, build the state), for one or more checkouts side by side:
//   npx tsx bench/load-vectors.ts [--rounds N] [--passes N] CHECKOUT... -- DIR...
// Each round runs every checkout once, in turn, each in a fresh process (so the first pass is a
// cold start, as in `vectors check`), and prints the CPU time of each pass over every *.json file
// of the DIRs (not recursive; a DIR of folders stands for the folders). A pass keeps what it loaded
// until it ends, as `vectors check` keeps every vector until it has run them. Medians with ranges
// over the rounds: the first pass (cold) and the median of the later passes (warm).
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface Pass {
  readonly root: string;
  readonly files: number;
  readonly unusable: number;
  readonly times: number[];
}

function vectorFiles(dirs: readonly string[]): string[] {
  const files: string[] = [];
  for (const dir of dirs) {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      const path = join(dir, name);
      if (name.endsWith(".json")) files.push(path);
      else if (statSync(path).isDirectory()) for (const inner of readdirSync(path).sort()) if (inner.endsWith(".json")) files.push(join(path, inner));
    }
  }
  return files;
}

/** In the child: load every file `passes` times through `root`'s loader, CPU ms per pass. */
async function child(root: string, passes: number, dirs: readonly string[]): Promise<void> {
  const files = vectorFiles(dirs);
  const { loadDocument } = (await import(pathToFileURL(join(root, "cli/input.ts")).href)) as { loadDocument: (path: string) => unknown };
  const times: number[] = [];
  let unusable = 0;
  for (let p = 0; p < passes; p++) {
    const kept: unknown[] = [];
    const start = process.cpuUsage();
    for (const file of files) {
      try {
        kept.push(loadDocument(file));
      } catch {
        if (p === 0) unusable++;
      }
    }
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / 1000);
    kept.length = 0;
  }
  const pass: Pass = { root, files: files.length, unusable, times };
  process.stdout.write(JSON.stringify(pass) + "\n");
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const range = (xs: readonly number[]): string => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;

async function parent(argv: readonly string[]): Promise<void> {
  let rounds = 5;
  let passes = 5;
  const roots: string[] = [];
  const dirs: string[] = [];
  let seenSeparator = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--rounds") rounds = Number(argv[++i]);
    else if (a === "--passes") passes = Number(argv[++i]);
    else if (a === "--") seenSeparator = true;
    else (seenSeparator ? dirs : roots).push(resolve(a));
  }
  if (roots.length === 0 || dirs.length === 0 || !(rounds >= 1) || !(passes >= 1)) {
    process.stderr.write("usage: npx tsx bench/load-vectors.ts [--rounds N] [--passes N] CHECKOUT... -- DIR...\n");
    process.exitCode = 2;
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const results = new Map<string, Pass[]>(roots.map((r) => [r, []]));
  for (let round = 0; round < rounds; round++) {
    for (const root of roots) {
      const out = execFileSync(process.execPath, ["--import", "tsx", self, "--child", root, String(passes), ...dirs], { encoding: "utf8", maxBuffer: 1 << 20 });
      results.get(root)!.push(JSON.parse(out.trim().split("\n").at(-1)!) as Pass);
    }
  }
  for (const [root, runs] of results) {
    const cold = runs.map((r) => r.times[0]!);
    const warm = runs.map((r) => median(r.times.slice(1)));
    const { files, unusable } = runs[0]!;
    process.stdout.write(
      `${root}: ${files} files (${unusable} unusable); CPU ms per pass over ${rounds} rounds: cold ${Math.round(median(cold))} (${range(cold)}), warm ${passes > 1 ? `${Math.round(median(warm))} (${range(warm)})` : "-"}\n`,
    );
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]!, Number(process.argv[4]), process.argv.slice(5));
else await parent(process.argv.slice(2));
