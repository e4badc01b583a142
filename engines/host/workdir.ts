// Per-case scratch directories (images, memory chunks, sockets, logs), removed on close.
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class WorkDir {
  private removed = false;
  private constructor(readonly path: string) {}

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
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Shared memory when the machine has it (memory-backed files stay out of the disk cache). */
export function fastTempBase(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}
