// Starting the TypeScript sources quickly under Node 20. Loading them through tsx's module hooks
// costs about 0.7 CPU s a process (every one of ~300 modules is resolved and loaded through the
// hooks thread, source maps kept): most of a short command's time, and tests and campaigns start
// many processes (`serve` engines, worker threads). So an entry point is bundled once with esbuild
// (the compiler tsx itself uses) into one plain ES module under node_modules/.cache/ringspec/,
// with a manifest of the source files it holds (size and modification time each); later starts
// import the bundle while every one of those files is unchanged, and build it again otherwise.
// Packages stay outside the bundle (loaded from node_modules as usual); `import.meta.url` keeps
// naming each source file, so files read beside a module (the trace page's assets) are found.
// Whenever the bundle cannot be used (no esbuild, a read-only install, a build error, or
// RINGSPEC_LAUNCH=tsx) the sources load through tsx, as before.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { threadId } from "node:worker_threads";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CACHE = join(ROOT, "node_modules", ".cache", "ringspec");
const LOADERS = { ".ts": "ts", ".mts": "ts", ".js": "js", ".mjs": "js", ".json": "json" };
/** Bumped when the way bundles are built changes (older bundles are then rebuilt). */
const BUILD_VERSION = 1;

/**
 * The module at `entry` (a URL of a .ts file), loaded from a current bundle where possible.
 * @param {URL} entry
 * @returns {Promise<any>}
 */
export async function launch(entry) {
  if (process.env.RINGSPEC_LAUNCH !== "tsx") {
    const bundle = await currentBundle(fileURLToPath(entry)).catch(() => undefined);
    if (bundle !== undefined) return import(pathToFileURL(bundle).href);
  }
  const { register } = await import("tsx/esm/api");
  register();
  return import(entry.href);
}

/** Where the bundle of `entry` lives, and its manifest. */
function cachePaths(entry) {
  const name = entry.slice(ROOT.length).replace(/[^A-Za-z0-9]+/g, "-");
  return { bundle: join(CACHE, `${name}.mjs`), manifest: join(CACHE, `${name}.json`) };
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

/** The path of a bundle of `entry` built from today's sources (built now if there is none). */
async function currentBundle(entry) {
  const paths = cachePaths(entry);
  try {
    const manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
    if (manifest.bundle === paths.bundle && existsSync(paths.bundle) && fresh(manifest)) return paths.bundle;
  } catch {
    // No manifest yet, or an unreadable one: build.
  }
  return build(entry, paths);
}

async function build(entry, paths) {
  const esbuild = await import("esbuild");
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
        const text = readFileSync(args.path, "utf8");
        // import.meta.url names the source file, not the bundle.
        const contents = text.includes("import.meta.url") ? text.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)) : text;
        return { contents, loader };
      });
    },
  };
  // Per process and thread: campaign worker threads start together and may build the same bundle.
  const tmp = `.${process.pid}-${threadId}.tmp`;
  mkdirSync(dirname(paths.bundle), { recursive: true });
  await esbuild.build({
    entryPoints: [entry],
    outfile: paths.bundle + tmp,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    tsconfig: join(ROOT, "tsconfig.json"),
    logLevel: "silent",
    plugins: [sources],
  });
  // Renamed into place: another process may be building the same bundle at the same time.
  renameSync(paths.bundle + tmp, paths.bundle);
  writeFileSync(paths.manifest + tmp, JSON.stringify({ version: BUILD_VERSION, bundle: paths.bundle, inputs }));
  renameSync(paths.manifest + tmp, paths.manifest);
  return paths.bundle;
}
