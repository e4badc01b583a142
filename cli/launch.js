// Loads the TypeScript sources quickly under Node 20. Loading them through tsx's module hooks costs
// most of a short command's CPU time, and tests and campaigns start many processes and threads. So
// the sources an entry point reaches are compiled once with esbuild, each to a plain ES module of
// its own under node_modules/.cache/ringspec/, and reused while every input holds the bytes it was
// compiled from (the sources, tsconfig.json, esbuild's package.json, the bundled packages'
// package.json and the launcher's files; their
// content, not their times, which a checkout or `cp -p` can keep): cli/launch-cache.js says what
// is current, cli/launch-compile.js compiles, cli/launch-publish.js makes a build current and
// removes what earlier builds left. Starts that find the copy out of date at once share one build
// (cli/build-lock.js); a build becomes visible only when complete (its manifest, renamed into
// place, names a folder no other build writes).
// Not one bundle: esbuild turns a bundle's top-level `const`s into `var`s, which V8 optimises worse.
// Packages load from node_modules, but for zod (~80 modules, slow through Node's loader): it is
// bundled once under _packages/ for every build made from the same zod and build inputs.
// `import.meta.url` keeps naming each source file, so files read beside a module are found.
// Whenever the compiled copy cannot be used (no esbuild, a read-only install, a build error, or
// RINGSPEC_LAUNCH=tsx) the sources load through tsx. README.md gives the figures.
import { mkdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildOnce } from "./build-lock.js";
import { CACHE, SELF, cachePaths, currentCopy } from "./launch-cache.js";
import { compile } from "./launch-compile.js";
import { publish } from "./launch-publish.js";

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

/** The path of `entry` compiled from today's sources (compiled now, or by another start building
 *  it at the same time, if there is no such copy). */
async function currentCompiled(entry) {
  const paths = cachePaths(entry);
  const current = currentCopy(paths);
  if (current !== undefined) return current;
  mkdirSync(CACHE, { recursive: true });
  return buildOnce({ lock: paths.lock, name: paths.name, built: () => currentCopy(paths), build: () => build(entry, paths), log: debug });
}

/** `entry` compiled and published as the current build of `paths`; its compiled entry. */
async function build(entry, paths) {
  debug(`building ${paths.name}`);
  const esbuild = await import("esbuild");
  try {
    return publish(paths, await compile(esbuild, entry, paths));
  } finally {
    // esbuild's service is a child process: stopped at once, so the process or thread that built
    // reaps it (left running, it became a zombie when its worker thread ended). stop() would also
    // end a second build running in the same thread: none does (one entry at a time).
    await esbuild.stop();
  }
}
