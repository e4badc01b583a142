// Loads the TypeScript sources quickly under Node 20. Loading them through tsx's module hooks costs
// most of a short command's CPU time, and tests and campaigns start many processes and threads. So
// the sources an entry point reaches are compiled once with esbuild, each to a plain ES module of
// its own under node_modules/.cache/ringspec/, and reused while every input holds the bytes it was
// compiled from (the sources, tsconfig.json, esbuild's package.json and this file; their content,
// not their times, which a checkout or `cp -p` can keep). Starts that find the copy out of date at
// once share one build (cli/build-lock.js); a build becomes visible only when complete (its
// manifest, renamed into place, names a folder no other build writes).
// Not one bundle: esbuild turns a bundle's top-level `const`s into `var`s, which V8 optimises worse.
// Packages load from node_modules, but for zod (~80 modules, slow through Node's loader): it is
// bundled once under _packages/ for every build made from the same zod and build inputs.
// `import.meta.url` keeps naming each source file, so files read beside a module are found.
// Whenever the compiled copy cannot be used (no esbuild, a read-only install, a build error, or
// RINGSPEC_LAUNCH=tsx) the sources load through tsx. README.md gives the figures.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { threadId } from "node:worker_threads";
import { buildOnce } from "./build-lock.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CACHE = join(ROOT, "node_modules", ".cache", "ringspec");
/** The package bundles' folders, one for each set of packages and build inputs. */
const PACKAGES = join(CACHE, "_packages");
/** The sources a build compiles: TypeScript only (the sources import each other by .ts paths). */
const LOADERS = { ".ts": "ts", ".mts": "ts" };
/** This process and thread, in the names of what it writes and in its debug lines. */
const SELF = `${process.pid}-${threadId}`;
/** A build directory no manifest names any more is removed this long after it was replaced (a
 *  process started from it may still import its lazily loaded modules for a while). */
const STALE_BUILD_MS = 3_600_000;
/** RINGSPEC_LAUNCH_DEBUG=1 (only "1"): one line on stderr for each build, wait and lock taken over, and why
 *  the sources load through tsx when the compiled copy cannot be used. */
const debug = process.env.RINGSPEC_LAUNCH_DEBUG === "1" ? (message) => process.stderr.write(`ringspec launch [${SELF}]: ${message}\n`) : () => {};

/** Whether an unrecognised RINGSPEC_LAUNCH was reported (once a thread). */
let warnedOfMode = false;

/**
 * The module at `entry` (a URL of a .ts file), loaded from a current compiled copy where possible.
 * Each entry has a build of its own: two launch() calls in one process whose entries import the
 * same modules load two copies of them (two module instances, their state not shared).
 * @param {URL} entry
 * @returns {Promise<any>}
 */
export async function launch(entry) {
  const mode = process.env.RINGSPEC_LAUNCH;
  if (mode !== undefined && mode !== "" && mode !== "tsx" && !warnedOfMode) {
    warnedOfMode = true;
    process.stderr.write(`ringspec: RINGSPEC_LAUNCH=${JSON.stringify(mode)} is not recognised (only "tsx" is): the compiled copy is used\n`);
  }
  if (mode !== "tsx") {
    const compiled = await currentCompiled(fileURLToPath(entry)).catch((error) => {
      debug(`loading the sources through tsx: ${errorLine(error)}`);
      return undefined;
    });
    if (compiled !== undefined) return import(pathToFileURL(compiled).href);
  }
  const { register } = await import("tsx/esm/api");
  register();
  return import(entry.href);
}

/**
 * `error` on one line: esbuild's first error as file:line:col: text (its message spans lines), or
 * the message's lines joined.
 * @param {unknown} error
 * @returns {string}
 */
export function errorLine(error) {
  const errors = /** @type {{ errors?: { text?: unknown, location?: { file: string, line: number, column: number } | null }[] }} */ (error ?? {}).errors;
  const first = Array.isArray(errors) ? errors[0] : undefined;
  if (typeof first?.text === "string") {
    const at = first.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    return `${at}${first.text}${errors.length > 1 ? ` (and ${errors.length - 1} more errors)` : ""}`.replace(/\s*\n\s*/g, " ");
  }
  return (error instanceof Error ? error.message : String(error)).trim().replace(/\s*\n\s*/g, " ");
}

/**
 * Compiles each of `entries` (URLs of .ts files) that has no current compiled copy, without running
 * it: `npm ci` does this for the command's own entry points (cli/compile-ahead.js), so that the
 * first commands of a fresh clone, the test suite's among them, start from a compiled copy.
 * @param {URL[]} entries
 */
export async function compileAhead(entries) {
  for (const entry of entries) await currentCompiled(fileURLToPath(entry));
}

/** The name of `entry`'s builds, the path of their manifest and of the lock held while one builds,
 *  and `source`, the entry's path relative to ROOT, which its manifest records. The name is the
 *  path with its separators as '-' (src/entry.ts: src-entry-ts); a path with any other character
 *  but letters, digits, '/' and its extension's dot (src/a-b.ts, which would be named as
 *  src/a/b.ts) is named with a hash of the path appended, one name per entry. */
function cachePaths(entry) {
  const source = entry.slice(ROOT.length);
  const plain = /^[A-Za-z0-9/]*[A-Za-z0-9]\.[A-Za-z0-9]+$/.test(source) && !source.includes("//");
  const name = source.replace(/[^A-Za-z0-9]+/g, "-") + (plain ? "" : `-${createHash("sha256").update(source).digest("hex").slice(0, 12)}`);
  return { name, source, manifest: join(CACHE, `${name}.json`), lock: join(CACHE, `${name}.lock`) };
}

/** Whether the build the manifest describes may be run (it is the build of its entry, `source`:
 *  checked by currentCopy()):
 *  - it was made in this very folder (compiled code names the absolute paths of its sources and
 *    of the package bundles: a checkout copied or moved with its node_modules must not run the
 *    original's files);
 *  - every source it lists still holds the bytes it was compiled from (its size, then one SHA-256
 *    of all of them in order);
 *  - the package bundles it imports and every module it compiled are still there, whole (a cache
 *    cleaner or a partial deletion must not make a start fail on a missing module). */
function fresh(manifest) {
  if (manifest.root !== ROOT || !Array.isArray(manifest.sources) || !Array.isArray(manifest.bundles) || !Array.isArray(manifest.outputs)) return false;
  for (const [file, size] of manifest.bundles) {
    if (statSync(join(ROOT, file), { throwIfNoEntry: false })?.size !== size) return false;
  }
  const folder = join(CACHE, String(manifest.entry).split("/")[0]);
  for (const [file, size] of manifest.outputs) {
    if (statSync(join(folder, file), { throwIfNoEntry: false })?.size !== size) return false;
  }
  let largest = 0;
  for (const [, size] of manifest.sources) largest = Math.max(largest, size);
  // One buffer for every file, read one byte past its size: a file that grew reads longer.
  const buffer = Buffer.allocUnsafe(largest + 1);
  const hash = createHash("sha256");
  for (const [file, size] of manifest.sources) {
    let fd;
    try {
      fd = openSync(join(ROOT, file), "r");
    } catch {
      return false;
    }
    try {
      if (readSync(fd, buffer, 0, size + 1, 0) !== size) return false;
    } finally {
      closeSync(fd);
    }
    hash.update(buffer.subarray(0, size));
  }
  return hash.digest("hex") === manifest.digest;
}

/** The compiled entry the manifest of `paths` names, if it is current; else undefined. */
function currentCopy(paths) {
  try {
    const manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
    const compiled = typeof manifest.entry === "string" ? join(CACHE, manifest.entry) : "";
    if (manifest.source === paths.source && compiled.startsWith(join(CACHE, paths.name + ".")) && existsSync(compiled) && fresh(manifest)) return compiled;
  } catch {
    // No manifest yet, or an unreadable one: not current.
  }
  return undefined;
}

/** The path of `entry` compiled from today's sources (compiled now, or by another start building
 *  it at the same time, if there is no such copy). */
async function currentCompiled(entry) {
  const paths = cachePaths(entry);
  const current = currentCopy(paths);
  if (current !== undefined) return current;
  mkdirSync(CACHE, { recursive: true });
  return buildOnce({ lock: paths.lock, name: paths.name, built: () => currentCopy(paths), build: () => build(entry, paths), log: debug });
}

/** `text`, the source at `path`, with import.meta.url naming the source file (not its compiled
 *  copy), so files read beside a module (the trace page's assets) are found. */
function withSourceUrl(path, text) {
  return text.includes("import.meta.url") ? text.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(path).href)) : text;
}

/** A relative module specifier of a source in an import, export or import() of esbuild's output
 *  (which writes every specifier in double quotes): `head` up to the opening quote, the source's
 *  path relative to the importing source as `stem` and `extension`. It finds the sources a build
 *  compiles next, then points the imports at their compiled copies. This and the regexes below
 *  also match such text inside a string literal (contract/load-sections.ts's generated header):
 *  harmless, as the string is only used by its test, which vitest runs from the sources, never
 *  this copy. */
const RELATIVE_SOURCE_IMPORT = /(?<head>(?:\bfrom|\bimport)\s*\(?\s*")(?<stem>\.{1,2}\/[^"]*?)(?<extension>\.(?:m?ts|m?js))"/g;

/** A default import of a CommonJS package in esbuild's output. Importing CommonJS from an ES
 *  module makes Node scan the whole file for its export names (cjs-module-lexer): for iced-x86's
 *  900 KB of wasm glue that was about 90 ms of CPU in every process started (serve engines, CLI
 *  runs), against 35 ms to require() it. The default import is module.exports either way. */
const CJS_DEFAULT_IMPORT = /^import (\w+) from "(iced-x86|cli-progress)";$/gm;

/** ES module packages of many modules, loaded from a bundle in the build instead of module by
 *  module (about half a millisecond of CPU a module in Node's loader). */
const BUNDLED_PACKAGES = ["zod"];

/** An import, export or import() of a bundled package or one of its subpaths in esbuild's output. */
const PACKAGE_IMPORT = new RegExp(`((?:\\bfrom|\\bimport)\\s*\\(?\\s*")((?:${BUNDLED_PACKAGES.join("|")})(?:/[^"]*)?)(")`, "g");

/** esbuild's output for one source, as it is written to the cache. */
function compiledText(text) {
  const imports = text.replace(RELATIVE_SOURCE_IMPORT, '$<head>$<stem>.mjs"');
  const required = imports.replace(CJS_DEFAULT_IMPORT, "const $1 = __ringspecRequire(\"$2\");");
  if (required === imports) return imports;
  return `import { createRequire as __ringspecCreateRequire } from "node:module";\nconst __ringspecRequire = __ringspecCreateRequire(import.meta.url);\n${required}`;
}

async function build(entry, paths) {
  debug(`building ${paths.name}`);
  const esbuild = await import("esbuild");
  try {
    return await compileAll(esbuild, entry, paths);
  } finally {
    // esbuild's service is a child process: stopped at once, so the process or thread that built
    // reaps it (left running, it became a zombie when its worker thread ended). stop() would also
    // end a second build running in the same thread: none does (one entry at a time).
    await esbuild.stop();
  }
}

async function compileAll(esbuild, entry, paths) {
  /** Each source file as read and compiled (its path and bytes): a file changed during the build
   *  makes the next start build again. */
  const inputs = buildInputs();
  /** What shapes the package bundles too (compiler, options, this file): one digest. */
  const shaping = inputs.reduce((hash, [, bytes]) => hash.update(bytes), createHash("sha256")).digest("hex");
  const sources = {
    name: "ringspec-sources",
    setup(b) {
      b.onLoad({ filter: /.*/ }, (args) => {
        const loader = LOADERS[extname(args.path)];
        // Only the package's own sources of known kinds are tracked (packages stay outside).
        if (!args.path.startsWith(ROOT) || loader === undefined) throw new Error(`not a tracked source: ${args.path}`);
        const bytes = readFileSync(args.path);
        inputs.push([args.path.slice(ROOT.length), bytes]);
        return { contents: withSourceUrl(args.path, bytes.toString("utf8")), loader };
      });
    },
  };
  // Each build in a directory of its own (per process, thread and time: campaign worker threads
  // start together and may build the same entry), named by the manifest once complete.
  const outdir = join(CACHE, `${paths.name}.${SELF}-${Date.now()}`);
  // Each source compiled on its own into the same place under outdir, wave by wave: the entry,
  // then the sources its compiled code imports, then theirs. (Not a bundling pass to find the
  // module graph first: it cost esbuild about as much again as compiling, and the compiled code's
  // own imports are exactly the modules a start loads.)
  const outputs = [];
  const reached = new Set([entry]);
  for (let wave = [entry]; wave.length > 0; ) {
    const compiled = await esbuild.build({
      entryPoints: wave,
      bundle: false,
      write: false,
      outdir,
      outbase: ROOT,
      outExtension: { ".js": ".mjs" },
      format: "esm",
      platform: "node",
      target: "node20",
      tsconfig: join(ROOT, "tsconfig.json"),
      logLevel: "silent",
      plugins: [sources],
    });
    wave = [];
    for (const file of compiled.outputFiles) {
      outputs.push(file);
      const from = join(ROOT, dirname(relative(outdir, file.path)));
      for (const { groups } of file.text.matchAll(RELATIVE_SOURCE_IMPORT)) {
        const source = resolve(from, groups.stem + groups.extension);
        if (!reached.has(source)) {
          reached.add(source);
          wave.push(source);
        }
      }
    }
  }
  const texts = outputs.map((file) => ({ path: file.path, text: compiledText(file.text) }));
  const specifiers = new Set(texts.flatMap(({ text }) => [...text.matchAll(PACKAGE_IMPORT)].map((m) => m[2])));
  // Without a bundle (esbuild failed, or import.meta.resolve is missing before Node 20.6) the
  // packages load from node_modules as before.
  /** The package bundles the build imports (their paths and sizes): a start whose bundle has gone
   *  builds again. */
  const bundles = [];
  const bundled = specifiers.size === 0 ? new Map() : await bundlePackages(esbuild, [...specifiers].sort(), inputs, bundles, shaping).catch(() => new Map());
  /** Each compiled module (its path in outdir, size in bytes). */
  const written = [];
  for (const { path, text } of texts) {
    mkdirSync(dirname(path), { recursive: true });
    const final = bundled.size === 0 ? text : text.replace(PACKAGE_IMPORT, (all, before, specifier, after) => (bundled.has(specifier) ? before + bundled.get(specifier) + after : all));
    writeFileSync(path, final);
    written.push([relative(outdir, path), Buffer.byteLength(final)]);
  }
  const stem = entry.slice(ROOT.length).replace(/\.[^./]*$/, "");
  const compiledEntry = join(outdir, `${stem}.mjs`);
  const tmp = `${paths.manifest}.${SELF}.tmp`;
  const digest = createHash("sha256");
  for (const [, bytes] of inputs) digest.update(bytes);
  writeFileSync(tmp, JSON.stringify({ root: ROOT, source: paths.source, entry: compiledEntry.slice(CACHE.length + 1), sources: inputs.map(([file, bytes]) => [file, bytes.length]), digest: digest.digest("hex"), bundles, outputs: written }));
  retire(paths);
  // Renamed into place: another process may be reading the manifest at the same time.
  renameSync(tmp, paths.manifest);
  removeStaleBuilds(paths.name, outdir);
  removeStalePackages();
  return compiledEntry;
}

/** What shapes the compiled code and the package bundles besides the sources (their paths
 *  relative to ROOT and bytes), so that a change to any of them builds again: the compiler options
 *  (tsconfig.json), the compiler (esbuild's package.json: its version), and this file (its options
 *  to esbuild, its rewriting of esbuild's output, the manifest's meaning). */
function buildInputs() {
  const files = [join(ROOT, "tsconfig.json"), installedPackage("esbuild"), fileURLToPath(import.meta.url)];
  return files.map((file) => [relative(ROOT, file), readFileSync(file)]);
}

/** The package.json of package `name` as `import(name)` from ROOT finds it (the nearest
 *  node_modules above ROOT holding it; not its real path, so a linked install is seen as linked). */
function installedPackage(name) {
  for (let dir = ROOT; ; dir = dirname(dir)) {
    const manifest = join(dir, "node_modules", name, "package.json");
    if (existsSync(manifest)) return manifest;
    if (dir === dirname(dir)) throw new Error(`no ${name} installed above ${ROOT}`);
  }
}

/**
 * The package entries `specifiers` (`zod`, `zod/v4/core`) bundled, split so that they share one
 * copy of what they have in common; each package's package.json joins `inputs` (the sources), so
 * an upgrade builds again, and the bundle files join `bundles`. The bundles are shared by every
 * build (entry points, worker threads) made from the same packages by the same build inputs, in a
 * folder named by the entries, each package.json's content and `shaping` (the digest of
 * buildInputs()). Resolves to the URL of each entry's bundle.
 * @returns {Promise<Map<string, string>>}
 */
async function bundlePackages(esbuild, specifiers, inputs, bundles, shaping) {
  const entries = specifiers.map((specifier) => ({ specifier, path: fileURLToPath(import.meta.resolve(specifier)), out: specifier.replace(/[^A-Za-z0-9]+/g, "-") }));
  const manifests = [];
  for (const name of new Set(specifiers.map((s) => s.split("/")[0]))) {
    const manifest = installedPackage(name);
    manifests.push([relative(ROOT, manifest), readFileSync(manifest)]);
  }
  const key = createHash("sha256").update(JSON.stringify([shaping, specifiers, manifests.map(([file, bytes]) => [file, createHash("sha256").update(bytes).digest("hex")])])).digest("hex").slice(0, 16);
  const dir = join(PACKAGES, key);
  const urls = new Map(entries.map(({ specifier, out }) => [specifier, pathToFileURL(join(dir, `${out}.mjs`)).href]));
  inputs.push(...manifests);
  const bundleInputs = () => {
    for (const file of readdirSync(dir)) bundles.push([relative(ROOT, join(dir, file)), statSync(join(dir, file)).size]);
    return urls;
  };
  if (entries.every(({ out }) => existsSync(join(dir, `${out}.mjs`)))) {
    // Used again: young for removeStalePackages() until this build's manifest names it.
    const now = new Date();
    utimesSync(dir, now, now);
    return bundleInputs();
  }
  // Built beside, then renamed into place: other processes may build the same bundles at once.
  const tmp = `${dir}.${SELF}-${Date.now()}`;
  const result = await esbuild.build({
    entryPoints: entries.map(({ path, out }) => ({ in: path, out })),
    bundle: true,
    splitting: true,
    write: false,
    outdir: tmp,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunk-[hash]",
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "silent",
  });
  mkdirSync(tmp, { recursive: true });
  for (const file of result.outputFiles) writeFileSync(file.path, file.text);
  try {
    renameSync(tmp, dir);
  } catch {
    // Another process put its copy in place first (the same bundles): use that one.
    rmSync(tmp, { recursive: true, force: true });
    if (!entries.every(({ out }) => existsSync(join(dir, `${out}.mjs`)))) throw new Error(`could not bundle ${specifiers.join(", ")}`);
  }
  return bundleInputs();
}

/** Marks the build the manifest of `paths` names as replaced now: processes started from it a
 *  moment ago may still import its lazily loaded modules, so its time before removal
 *  (STALE_BUILD_MS, from its folder's modification time) counts from its replacement, not from
 *  when it was built. */
function retire(paths) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
  } catch {
    return; // No manifest yet.
  }
  const now = new Date();
  const folder = join(CACHE, String(manifest.entry).split("/")[0]);
  // The package bundles it imports too: another build may no longer name them.
  const folders = Array.isArray(manifest.bundles) ? manifest.bundles.map(([file]) => dirname(join(ROOT, String(file)))) : [];
  for (const path of [folder, ...new Set(folders)]) {
    if (!path.startsWith(join(CACHE, paths.name + ".")) && !path.startsWith(PACKAGES + sep)) continue;
    try {
      utimesSync(path, now, now);
    } catch {
      // Already removed.
    }
  }
}

/** Removes what earlier builds of `name` left (not `current`) once older than STALE_BUILD_MS: their
 *  directories, and the unfinished manifests of builders killed before renaming theirs. */
function removeStaleBuilds(name, current) {
  for (const entry of readdirSync(CACHE, { withFileTypes: true })) {
    const leftover = entry.isDirectory() ? entry.name.startsWith(name + ".") : entry.name.startsWith(name + ".json.") && entry.name.endsWith(".tmp");
    const path = join(CACHE, entry.name);
    if (!leftover || path === current) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_BUILD_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}

/** Removes the package bundle folders no manifest names once older than STALE_BUILD_MS (from when
 *  they were made, last reused, or the build using them was replaced: retire()), with the
 *  unfinished folders of bundlers killed before renaming theirs. */
function removeStalePackages() {
  const named = new Set();
  for (const file of readdirSync(CACHE)) {
    if (!file.endsWith(".json")) continue;
    try {
      for (const [path] of JSON.parse(readFileSync(join(CACHE, file), "utf8")).bundles) named.add(dirname(join(ROOT, String(path))));
    } catch {
      // Removed meanwhile, or no bundles listed.
    }
  }
  let folders = [];
  try {
    folders = readdirSync(PACKAGES);
  } catch {
    return; // No bundles made yet.
  }
  for (const folder of folders) {
    const path = join(PACKAGES, folder);
    if (named.has(path)) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_BUILD_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
