// Starting the TypeScript sources quickly under Node 20. Loading them through tsx's module hooks
// costs about 0.7 CPU s a process (every one of ~300 modules is resolved and loaded through the
// hooks thread, source maps kept): most of a short command's time, and tests and campaigns start
// many processes (`serve` engines, worker threads). So the sources an entry point reaches are
// compiled once with esbuild (the compiler tsx itself uses), each to a plain ES module of its own
// under node_modules/.cache/ringspec/ (relative imports renamed to the compiled files), with a
// manifest of the source files (size and modification time each); later starts import the
// compiled entry while every one of those files is unchanged, and compile again otherwise.
// Not one bundle: bundling makes esbuild turn every top-level `const` into a `var` (and lazily
// imported modules into initialiser functions), which V8 cannot fold into optimised code — impl's
// INT→IRETQ loop ran at 2.8 M/s from a bundle against 5.5 M/s through tsx; compiled file by file it
// runs as through tsx.
// Packages stay outside (loaded from node_modules as usual), but for zod: an ES module package of
// ~80 modules, which Node's loader took ~45 ms of CPU to load in every process (a quarter of a
// `serve` engine's start-up); it is bundled once (its entries sharing one copy) under
// node_modules/.cache/ringspec/_packages/, for every build made from the same zod.
// `import.meta.url` keeps naming each source file, so files read beside a module (the trace page's
// assets) are found.
// Whenever the compiled copy cannot be used (no esbuild, a read-only install, a build error, or
// RINGSPEC_LAUNCH=tsx) the sources load through tsx, as before.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { threadId } from "node:worker_threads";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CACHE = join(ROOT, "node_modules", ".cache", "ringspec");
const LOADERS = { ".ts": "ts", ".mts": "ts", ".js": "js", ".mjs": "js", ".json": "json" };
/** Bumped when the way sources are compiled changes (older copies are then compiled again). */
const BUILD_VERSION = 5;
/** A build directory no manifest names any more is removed once it is this old (a process started
 *  from it may still import its lazily loaded chunks for a while). */
const STALE_BUILD_MS = 3_600_000;

/**
 * The module at `entry` (a URL of a .ts file), loaded from a current compiled copy where possible.
 * @param {URL} entry
 * @returns {Promise<any>}
 */
export async function launch(entry) {
  if (process.env.RINGSPEC_LAUNCH !== "tsx") {
    const compiled = await currentCompiled(fileURLToPath(entry)).catch(() => undefined);
    if (compiled !== undefined) return import(pathToFileURL(compiled).href);
  }
  const { register } = await import("tsx/esm/api");
  register();
  return import(entry.href);
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

/** The name of `entry`'s builds and the path of their manifest. */
function cachePaths(entry) {
  const name = entry.slice(ROOT.length).replace(/[^A-Za-z0-9]+/g, "-");
  return { name, manifest: join(CACHE, `${name}.json`) };
}

/** Whether every file the manifest lists still has the size and modification time it had. */
function fresh(manifest) {
  if (manifest.version !== BUILD_VERSION) return false;
  for (const [file, size, mtimeMs] of manifest.inputs) {
    let s;
    try {
      s = statSync(join(ROOT, file));
    } catch {
      return false;
    }
    if (s.size !== size || s.mtimeMs !== mtimeMs) return false;
  }
  return true;
}

/** The path of `entry` compiled from today's sources (compiled now if there is no such copy). */
async function currentCompiled(entry) {
  const paths = cachePaths(entry);
  try {
    const manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
    const compiled = typeof manifest.entry === "string" ? join(CACHE, manifest.entry) : "";
    if (compiled.startsWith(join(CACHE, paths.name + ".")) && existsSync(compiled) && fresh(manifest)) return compiled;
  } catch {
    // No manifest yet, or an unreadable one: build.
  }
  return build(entry, paths);
}

/** The text of the source at `path`, with import.meta.url naming the source file (not its
 *  compiled copy), so files read beside a module (the trace page's assets) are found. */
function withSourceUrl(path) {
  const text = readFileSync(path, "utf8");
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
  const esbuild = await import("esbuild");
  try {
    return await compileAll(esbuild, entry, paths);
  } finally {
    // esbuild's service is a child process: stopped once the build is done, so the process or
    // thread that built (a campaign's worker thread running its cases) reaps it at once. Left
    // running, it stayed idle until the thread ended, then became a zombie nothing reaps (a thread
    // that ends right after its build may still leave one: esbuild gives no way to wait for it).
    // stop() ends the one service of this thread: it would also end a second build running
    // concurrently in the same thread (none does today: each thread builds one entry at a time).
    await esbuild.stop();
  }
}

async function compileAll(esbuild, entry, paths) {
  /** Each source file as read: its size and modification time from before it was read, so a file
   *  changed during the build makes the next start build again. */
  const inputs = [];
  const sources = {
    name: "ringspec-sources",
    setup(b) {
      b.onLoad({ filter: /.*/ }, (args) => {
        const loader = LOADERS[extname(args.path)];
        // Only the package's own sources of known kinds are tracked (packages stay outside).
        if (!args.path.startsWith(ROOT) || loader === undefined) throw new Error(`not a tracked source: ${args.path}`);
        const s = statSync(args.path);
        inputs.push([args.path.slice(ROOT.length), s.size, s.mtimeMs]);
        return { contents: withSourceUrl(args.path), loader };
      });
    },
  };
  // Each build in a directory of its own (per process, thread and time: campaign worker threads
  // start together and may build the same entry), named by the manifest once complete.
  const outdir = join(CACHE, `${paths.name}.${process.pid}-${threadId}-${Date.now()}`);
  mkdirSync(CACHE, { recursive: true });
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
  const bundled = specifiers.size === 0 ? new Map() : await bundlePackages(esbuild, [...specifiers].sort(), inputs).catch(() => new Map());
  for (const { path, text } of texts) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bundled.size === 0 ? text : text.replace(PACKAGE_IMPORT, (all, before, specifier, after) => (bundled.has(specifier) ? before + bundled.get(specifier) + after : all)));
  }
  const stem = entry.slice(ROOT.length).replace(/\.[^./]*$/, "");
  const compiledEntry = join(outdir, `${stem}.mjs`);
  const tmp = `${paths.manifest}.${process.pid}-${threadId}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: BUILD_VERSION, entry: compiledEntry.slice(CACHE.length + 1), inputs }));
  // Renamed into place: another process may be reading the manifest at the same time.
  renameSync(tmp, paths.manifest);
  removeStaleBuilds(paths.name, outdir);
  return compiledEntry;
}

/**
 * The package entries `specifiers` (`zod`, `zod/v4/core`) bundled, split so that they share one
 * copy of what they have in common; each package's package.json joins `inputs`, so an upgrade
 * builds again. The bundles are shared by every build (entry points, worker threads) made from the
 * same packages, in a folder named by the entries and each package.json's size and modification
 * time. Resolves to the URL of each entry's bundle.
 * @returns {Promise<Map<string, string>>}
 */
async function bundlePackages(esbuild, specifiers, inputs) {
  const entries = specifiers.map((specifier) => ({ specifier, path: fileURLToPath(import.meta.resolve(specifier)), out: specifier.replace(/[^A-Za-z0-9]+/g, "-") }));
  const manifests = [];
  for (const name of new Set(specifiers.map((s) => s.split("/")[0]))) {
    const manifest = packageManifest(fileURLToPath(import.meta.resolve(name)), name);
    const s = statSync(manifest);
    manifests.push([relative(ROOT, manifest), s.size, s.mtimeMs]);
  }
  const key = createHash("sha256").update(JSON.stringify([BUILD_VERSION, specifiers, manifests])).digest("hex").slice(0, 16);
  const dir = join(CACHE, "_packages", key);
  const urls = new Map(entries.map(({ specifier, out }) => [specifier, pathToFileURL(join(dir, `${out}.mjs`)).href]));
  inputs.push(...manifests);
  // The bundle's files are inputs too: a start whose bundle has gone builds again.
  const bundleInputs = () => {
    for (const file of readdirSync(dir)) {
      const s = statSync(join(dir, file));
      inputs.push([relative(ROOT, join(dir, file)), s.size, s.mtimeMs]);
    }
    return urls;
  };
  if (entries.every(({ out }) => existsSync(join(dir, `${out}.mjs`)))) return bundleInputs();
  // Built beside, then renamed into place: other processes may build the same bundles at once.
  const tmp = `${dir}.${process.pid}-${threadId}-${Date.now()}`;
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

/** The package.json of package `name`, found above one of its files. */
function packageManifest(file, name) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    try {
      if (JSON.parse(readFileSync(manifest, "utf8")).name === name) return manifest;
    } catch {
      // No package.json here, or not the package's own.
    }
  }
  throw new Error(`no package.json of ${name} above ${file}`);
}

/** Removes the earlier build directories of `name` (not `current`) older than STALE_BUILD_MS. */
function removeStaleBuilds(name, current) {
  for (const entry of readdirSync(CACHE, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith(name + ".")) continue;
    const dir = join(CACHE, entry.name);
    if (dir === current) continue;
    try {
      if (Date.now() - statSync(dir).mtimeMs > STALE_BUILD_MS) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
