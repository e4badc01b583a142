// What is current in the launcher's cache (node_modules/.cache/ringspec/, see cli/launch.js): the
// names of an entry's builds, manifest and lock, and whether the build a manifest names may run.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { threadId } from "node:worker_threads";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CACHE = join(ROOT, "node_modules", ".cache", "ringspec");
/** The package bundles' folders, one for each set of packages and build inputs. */
export const PACKAGES = join(CACHE, "_packages");
/** This process and thread, in the names of what it writes and in its debug lines. */
export const SELF = `${process.pid}-${threadId}`;

/** The name of `entry`'s builds, the path of their manifest and of the lock held while one builds,
 *  and `source`, the entry's path relative to ROOT, which its manifest records. The name is the
 *  path with its separators as '-' (src/entry.ts: src-entry-ts); a path with any other character
 *  but letters, digits, '/' and its extension's dot (src/a-b.ts, which would be named as
 *  src/a/b.ts) is named with a hash of the path appended, one name per entry. */
export function cachePaths(entry) {
  const source = entry.slice(ROOT.length);
  const plain = /^[A-Za-z0-9/]*[A-Za-z0-9]\.[A-Za-z0-9]+$/.test(source) && !source.includes("//");
  const name = source.replace(/[^A-Za-z0-9]+/g, "-") + (plain ? "" : `-${createHash("sha256").update(source).digest("hex").slice(0, 12)}`);
  return { name, source, manifest: join(CACHE, `${name}.json`), lock: join(CACHE, `${name}.lock`) };
}

/** The folder of the build a manifest names. */
export function buildFolder(manifest) {
  return join(CACHE, String(manifest.entry).split("/")[0]);
}

/** The package bundles' folders a manifest names (none when it lists none). */
export function bundleFolders(manifest) {
  return Array.isArray(manifest?.bundles) ? manifest.bundles.map(([file]) => dirname(join(ROOT, String(file)))) : [];
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
  const folder = buildFolder(manifest);
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
export function currentCopy(paths) {
  try {
    const manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
    const compiled = typeof manifest.entry === "string" ? join(CACHE, manifest.entry) : "";
    if (manifest.source === paths.source && compiled.startsWith(join(CACHE, paths.name + ".")) && existsSync(compiled) && fresh(manifest)) return compiled;
  } catch {
    // No manifest yet, or an unreadable one: not current.
  }
  return undefined;
}
