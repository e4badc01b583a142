// Publishing a build of the launcher (cli/launch.js): its manifest renamed into place, and what
// earlier builds left removed once no start can still be loading it.
import { readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { createHash } from "node:crypto";
import { CACHE, PACKAGES, ROOT, SELF, buildFolder, bundleFolders } from "./launch-cache.js";

/** A build directory no manifest names any more is removed this long after it was replaced (a
 *  process started from it may still import its lazily loaded modules for a while). */
const STALE_BUILD_MS = 3_600_000;

/**
 * Makes `build` (what compile() resolved to) the current build of the entry of `paths`: its
 * manifest written beside, then renamed into place; the build it replaces retired; stale leftovers
 * removed. Returns the compiled entry.
 */
export function publish(paths, build) {
  const tmp = `${paths.manifest}.${SELF}.tmp`;
  const digest = createHash("sha256");
  for (const [, bytes] of build.inputs) digest.update(bytes);
  writeFileSync(tmp, JSON.stringify({ root: ROOT, source: paths.source, entry: build.compiledEntry.slice(CACHE.length + 1), sources: build.inputs.map(([file, bytes]) => [file, bytes.length]), digest: digest.digest("hex"), bundles: build.bundles, outputs: build.outputs }));
  retire(paths);
  // Renamed into place: another process may be reading the manifest at the same time.
  renameSync(tmp, paths.manifest);
  removeStaleBuilds(paths.name, build.outdir);
  removeStalePackages();
  return build.compiledEntry;
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
  // The package bundles it imports too: another build may no longer name them.
  for (const path of [buildFolder(manifest), ...new Set(bundleFolders(manifest))]) {
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
    removeIfStale(path);
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
      for (const folder of bundleFolders(JSON.parse(readFileSync(join(CACHE, file), "utf8")))) named.add(folder);
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
    if (!named.has(path)) removeIfStale(path);
  }
}

/** Removes `path` (a build or bundle folder, or an unfinished manifest) once older than
 *  STALE_BUILD_MS. */
function removeIfStale(path) {
  try {
    if (Date.now() - statSync(path).mtimeMs > STALE_BUILD_MS) rmSync(path, { recursive: true, force: true });
  } catch {
    // Removed by another process meanwhile.
  }
}
