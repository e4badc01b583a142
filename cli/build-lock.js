// One build at a time: starts that find the compiled copy out of date at once (a campaign's worker
// threads, `serve` engines) share one build (cli/launch.js). The lock is a file created exclusively,
// naming its holder (process, thread, time); the holder removes it when done, also after a failed
// build. Waiting only saves work, it is never needed for a correct result (each build writes a
// folder of its own, made visible when complete), so every wait is bounded: a lock whose process
// has ended (a builder killed mid-build) or that is older than LOCK_WAIT_MS is taken over, and a
// start that has waited LOCK_WAIT_MS builds on its own. A worker thread ended by terminate()
// mid-build leaves a lock naming a process that still runs: the others wait for it up to
// LOCK_WAIT_MS. Two starts taking over the same lock at once may both build: that costs time,
// never correctness.
import { closeSync, lstatSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { threadId } from "node:worker_threads";

/** How long a start waits for another's build before building on its own, and the age at which a
 *  lock is taken over even though its process still runs (a build takes 1–3 s). */
const LOCK_WAIT_MS = 30_000;
/** How often a waiting start looks at the lock. */
const LOCK_POLL_MS = 20;

/**
 * What `build()` returns, built by this start holding the lock at `lock`, or by the start holding
 * it: once that start releases it, `built()` gives what it built (undefined if its build failed:
 * this start then takes the lock and builds). `built()` is also asked right after taking the lock,
 * as another start may have built between this one's look and its lock. `log` receives one line
 * for each wait and lock taken over (`name` says what is built). Throws, building nothing, when
 * no lock file can be made (a read-only cache). `waitMs` and `pollMs` (LOCK_WAIT_MS and
 * LOCK_POLL_MS unless given) are the longest wait and the time between looks at the lock.
 * @template T
 * @param {{ lock: string, name: string, built: () => T | undefined, build: () => Promise<T>, log: (message: string) => void, waitMs?: number, pollMs?: number }} how
 * @returns {Promise<T>}
 */
export async function buildOnce({ lock, name, built, build, log, waitMs = LOCK_WAIT_MS, pollMs = LOCK_POLL_MS }) {
  const deadline = performance.now() + waitMs;
  let waitingFor = "";
  for (;;) {
    const token = JSON.stringify({ pid: process.pid, thread: threadId, time: Date.now() });
    let fd;
    try {
      fd = openSync(lock, "wx");
    } catch (error) {
      // Not EEXIST: no file can be made here (read-only, not ours), so no build could be written
      // either: the caller falls back at once instead of compiling in vain.
      if (error?.code !== "EEXIST") throw error;
    }
    if (fd !== undefined) {
      try {
        writeFileSync(fd, token);
      } catch (error) {
        // A full disk (ENOSPC): an empty lock left here would hold others up until it is old.
        closeSync(fd);
        unlinkSync(lock);
        throw error;
      }
      closeSync(fd);
      try {
        return built() ?? (await build());
      } finally {
        removeLock(lock, token);
      }
    }
    if (performance.now() >= deadline) {
      // The holder's build may be in place by now (its lock not yet removed).
      const copy = built();
      log(`waited ${waitMs} ms for ${waitingFor}: ${copy === undefined ? `building ${name} alone` : `${name} was built meanwhile`}`);
      return copy ?? (await build());
    }
    const holder = readLock(lock);
    if (holder === undefined) {
      // Released meanwhile: its build (if it succeeded) is in place; else the next look takes
      // the lock.
      const copy = built();
      if (copy !== undefined) return copy;
    } else {
      const reason = whyAbandoned(holder, waitMs);
      if (reason !== undefined) {
        log(`the lock of ${name} (${holder.who}) is taken over: ${reason}`);
        removeLock(lock, holder.text);
        const after = readLock(lock);
        // Gone: taken at once. Still the same (an unreadable lock cannot be removed): built alone.
        if (after === undefined) continue;
        if (after.text === holder.text && after.time === holder.time) {
          log(`the lock of ${name} (${holder.who}) cannot be removed: building ${name} alone`);
          return await build();
        }
      } else if (waitingFor !== holder.who) log(`waiting for the build of ${name} by ${(waitingFor = holder.who)}`);
    }
    // Every look that did not take the lock sleeps before the next.
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The lock at `path` (its text, its holder: process, thread, time taken, and `who` for messages),
 *  or undefined when there is none (ENOENT). A lock that cannot be read (EISDIR, EACCES) is held
 *  by an unknown start: its age (lstat's modification time) decides. */
function readLock(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error?.code === "ENOENT") return undefined;
    const time = lstatSync(path, { throwIfNoEntry: false })?.mtimeMs;
    return time === undefined ? undefined : { text: undefined, who: "an unreadable lock", pid: undefined, thread: undefined, time };
  }
  try {
    const { pid, thread, time } = JSON.parse(text);
    if (typeof time === "number") return { text, who: text, pid, thread, time };
  } catch {
    // Created, not yet written (or its holder was killed at that moment): its age decides.
  }
  const time = lstatSync(path, { throwIfNoEntry: false })?.mtimeMs;
  return time === undefined ? undefined : { text, who: text === "" ? "a lock not yet written" : text, pid: undefined, thread: undefined, time };
}

/** Why the lock's holder will not finish its build, or undefined while it may. */
function whyAbandoned(holder, waitMs) {
  if (Date.now() - holder.time > waitMs) return `older than ${waitMs} ms`;
  // This thread is not building: the lock was left by an ended process that had the same id.
  if (holder.pid === process.pid && holder.thread === threadId) return "left by an earlier process of this id";
  if (Number.isInteger(holder.pid) && holder.pid > 0 && holder.pid !== process.pid) {
    try {
      process.kill(holder.pid, 0);
    } catch (error) {
      // EPERM (another user's process) means it runs.
      if (error?.code === "ESRCH") return `process ${holder.pid} is not running`;
    }
  }
  return undefined;
}

/** Removes the lock at `path` if it still holds `text` (not a lock another start took since). */
function removeLock(path, text) {
  try {
    if (readFileSync(path, "utf8") === text) unlinkSync(path);
  } catch {
    // Already removed.
  }
}
