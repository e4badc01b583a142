// cli/build-lock.js on its own, with fake built/build callbacks (no esbuild): what a start does
// with each kind of lock it finds. Short waits (waitMs, pollMs) keep each test brief; assertions are
// on log lines and call counts, never on time.
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

/** Set by a test: the next write of a lock's token fails as on a full disk. */
const failures = vi.hoisted(() => ({ tokenWrite: false }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const writeFileSync = (...args: Parameters<typeof fs.writeFileSync>) => {
    if (failures.tokenWrite && typeof args[0] === "number") {
      failures.tokenWrite = false;
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    }
    return fs.writeFileSync(...args);
  };
  return { ...fs, default: { ...fs, writeFileSync }, writeFileSync };
});

const { buildOnce } = await import("../../cli/build-lock.js");

let dir: string;
let lock: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ringspec-build-lock-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  lock = join(dir, "entry.lock");
  rmSync(lock, { recursive: true, force: true });
});

/** buildOnce with counting fakes: `built()` finds `existing` (nothing unless given) until build()
 *  ran; build() gives "new". */
function start(options: { waitMs?: number; pollMs?: number } = {}, existing?: string) {
  const calls = { built: 0, build: 0 };
  const log: string[] = [];
  let made: string | undefined = existing;
  const result = buildOnce({
    lock,
    name: "entry",
    built: () => {
      calls.built++;
      return made;
    },
    build: async () => {
      calls.build++;
      return (made = "new");
    },
    log: (line: string) => log.push(line),
    ...options,
  });
  return { result, calls, log };
}

describe("cli/build-lock.js buildOnce", () => {
  it("no lock: takes it, builds once, removes it", async () => {
    const s = start();
    expect(await s.result).toBe("new");
    expect(s.calls).toEqual({ built: 1, build: 1 });
    expect(s.log).toEqual([]);
    expect(existsSync(lock)).toBe(false);
  });

  it("a lock held by a live start (here: another thread of this process, its time in the future) is waited for until waitMs, then the start builds alone", async () => {
    const holder = JSON.stringify({ pid: process.pid, thread: threadId + 1, time: Date.now() + 3_600_000 });
    writeFileSync(lock, holder);
    const s = start({ waitMs: 200, pollMs: 20 });
    expect(await s.result).toBe("new");
    expect(s.log).toEqual([`waiting for the build of entry by ${holder}`, `waited 200 ms for ${holder}: building entry alone`]);
    expect(s.calls.build).toBe(1);
    // The holder's lock is not this start's to remove.
    expect(existsSync(lock)).toBe(true);
  });

  it("a start that waited waitMs uses the holder's build when it is in place by then (its lock not yet removed), building nothing", async () => {
    const holder = JSON.stringify({ pid: process.pid, thread: threadId + 1, time: Date.now() + 3_600_000 });
    writeFileSync(lock, holder);
    const s = start({ waitMs: 200, pollMs: 20 }, "theirs");
    expect(await s.result).toBe("theirs");
    expect(s.log.at(-1)).toBe(`waited 200 ms for ${holder}: entry was built meanwhile`);
    expect(s.calls).toEqual({ built: 1, build: 0 });
  });

  it("a lock naming this process and thread (which is not building: left by an ended process of the same id) is taken over without waiting", async () => {
    writeFileSync(lock, JSON.stringify({ pid: process.pid, thread: threadId, time: Date.now() }));
    const s = start({ waitMs: 200, pollMs: 20 });
    expect(await s.result).toBe("new");
    expect(s.log).toHaveLength(1);
    expect(s.log[0]).toMatch(/^the lock of entry \(.*\) is taken over: left by an earlier process of this id$/);
    expect(s.calls).toEqual({ built: 1, build: 1 });
    expect(existsSync(lock)).toBe(false);
  });

  it("a lock that cannot be read (a directory: EISDIR) is held, not released: the start waits, sleeping between looks, then builds alone", async () => {
    mkdirSync(lock);
    // Its time in the future, as a live holder's: aged from now, it would reach waitMs just as the
    // wait does, and which of the two ends the wait would depend on the machine's speed.
    const fresh = new Date(Date.now() + 3_600_000);
    utimesSync(lock, fresh, fresh);
    const s = start({ waitMs: 200, pollMs: 20 });
    expect(await s.result).toBe("new");
    expect(s.log).toEqual(["waiting for the build of entry by an unreadable lock", "waited 200 ms for an unreadable lock: building entry alone"]);
    // Not asked again and again while it waits (each look at a released lock asks built()).
    expect(s.calls.built).toBeLessThanOrEqual(1);
    expect(s.calls.build).toBe(1);
  });

  it("an unreadable lock older than waitMs is taken over; as it cannot be removed, the start builds alone at once", async () => {
    mkdirSync(lock);
    const old = new Date(Date.now() - 600_000);
    utimesSync(lock, old, old);
    const s = start({ waitMs: 200, pollMs: 20 });
    expect(await s.result).toBe("new");
    expect(s.log).toEqual(["the lock of entry (an unreadable lock) is taken over: older than 200 ms", "the lock of entry (an unreadable lock) cannot be removed: building entry alone"]);
    expect(s.calls.build).toBe(1);
  });

  it("a failed write of the lock's token (a full disk) leaves no lock behind, and the error is thrown", async () => {
    failures.tokenWrite = true;
    const s = start();
    await expect(s.result).rejects.toThrow(/ENOSPC/);
    expect(failures.tokenWrite).toBe(false);
    expect(s.calls).toEqual({ built: 0, build: 0 });
    expect(existsSync(lock)).toBe(false);
  });
});
