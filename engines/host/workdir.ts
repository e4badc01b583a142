// Per-case scratch directories (images, memory chunks, sockets, logs), removed on close.
import { mkdtempSync, rmSync, existsSync, openSync, closeSync, createWriteStream } from "node:fs";
import { spawnSync } from "node:child_process";
import type { Writable } from "node:stream";
import { onExitRemove } from "./process.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class WorkDir {
  private removed = false;
  private readonly guard: { readonly release: () => void };
  private constructor(readonly path: string) {
    // Removed on close, or when ringspec exits or is interrupted first.
    this.guard = onExitRemove(path);
  }

  /** A fresh directory under the system temp dir (or `base`). Socket paths stay short. */
  static create(prefix: string, base: string = tmpdir()): WorkDir {
    return new WorkDir(mkdtempSync(join(base, `ringspec-${prefix}-`)));
  }

  file(name: string): string {
    return join(this.path, name);
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.guard.release();
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Shared memory when the machine has it (memory-backed files stay out of the disk cache). */
export function fastTempBase(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/**
 * A FIFO for a child's stdin: some programs (Bochs's debugger) stall when stdin is the socket pair
 * Node gives a child. Returns the descriptor to hand to the child (opened read-write, so that
 * opening never blocks) and a stream the engine writes to.
 */
export function createFifo(path: string): { readonly childFd: number; readonly writer: Writable; readonly close: () => void } {
  const made = spawnSync("mkfifo", ["-m", "600", path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr?.toString().trim() || made.error?.message || "failed"}`);
  const childFd = openSync(path, "r+");
  const writeFd = openSync(path, "w");
  const writer = createWriteStream("", { fd: writeFd, autoClose: true });
  let closed = false;
  return {
    childFd,
    writer,
    close: () => {
      if (closed) return;
      closed = true;
      writer.destroy();
      try {
        closeSync(childFd);
      } catch {
        // already closed
      }
    },
  };
}
