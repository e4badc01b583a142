// Compiling an entry for the launcher (cli/launch.js): its sources file by file, wave by wave (the
// entry, then what its compiled code imports), and the packages bundled under _packages/.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { CACHE, PACKAGES, ROOT, SELF } from "./launch-cache.js";

/** The sources a build compiles: TypeScript only (the sources import each other by .ts paths). */
const LOADERS = { ".ts": "ts", ".mts": "ts" };

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

/**
 * `entry` and every source its compiled code imports, compiled file by file by `esbuild` into a
 * new folder of the cache (`outdir`), zod from bundles; nothing names the folder yet (publish()
 * does). Resolves to the folder, the compiled entry, the build's inputs (paths and bytes), the
 * bundles it imports and the modules written (paths and sizes).
 */
export async function compile(esbuild, entry, paths) {
  /** Each source file as read and compiled (its path and bytes): a file changed during the build
   *  makes the next start build again. */
  const inputs = buildInputs();
  /** What shapes the package bundles too (compiler, options, the launcher): one digest. */
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
  return { outdir, compiledEntry: join(outdir, `${stem}.mjs`), inputs, bundles, outputs: written };
}

/** What shapes the compiled code and the package bundles besides the sources (their paths
 *  relative to ROOT and bytes), so that a change to any of them builds again: the compiler options
 *  (tsconfig.json), the compiler (esbuild's package.json: its version), and the launcher's files
 *  (its options to esbuild, its rewriting of esbuild's output, the manifest's meaning). */
function buildInputs() {
  const launcher = ["launch.js", "launch-cache.js", "launch-compile.js", "launch-publish.js"].map((file) => fileURLToPath(new URL(file, import.meta.url)));
  const files = [join(ROOT, "tsconfig.json"), installedPackage("esbuild"), ...launcher];
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
