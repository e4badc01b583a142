// The C teaching kernel on real QEMU (kernel/c/qemu/run.sh: rebuilt with the PIT as its timer,
// booted with -kernel, the console on QEMU's debugcon and the exit port as isa-debug-exit). Run on
// a copy of kernel/c, so that the committed build outputs are not touched. Needs gcc and binutils
// besides QEMU (.ci/run installs them). The processes interleave by QEMU's timer, so each
// process's own lines and how it ends are checked, not their order.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const KERNEL = fileURLToPath(new URL("../../kernel/c/", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "ringspec-c-kernel-qemu-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the C kernel on QEMU", () => {
  it("boots, runs its five processes to their ends and exits with code 0", () => {
    cpSync(KERNEL, join(scratch, "c"), { recursive: true });
    const r = spawnSync("sh", [join(scratch, "c/qemu/run.sh")], { encoding: "utf8", timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    const of = (prefix: string) => lines.filter((l) => l.startsWith(prefix));
    expect(of("syscalls:")).toEqual(["syscalls: pid 1 starting", "syscalls: 64 getpid calls summed to 64"]);
    expect(of("compute:")).toHaveLength(2);
    expect(of("compute:")[1]).toMatch(/^compute: checksum 0x[0-9a-f]+$/);
    expect(of("printer:")).toEqual(["printer: line 1 of 3", "printer: line 2 of 3", "printer: line 3 of 3"]);
    expect(lines).toContain("[kernel] process 3 (fault) killed: page fault at 0xdead000 (write, not present) rip 0x40000027");
    expect(lines).toContain("[kernel] process 5 (edge) killed: general protection (vector 13, error code 0x0) rip 0x800000000000");
    for (const [pid, name] of [[1, "syscalls"], [2, "compute"], [4, "printer"]] as const) expect(lines).toContain(`[kernel] process ${pid} (${name}) exited with status 0`);
    expect(lines.some((l) => /^\[kernel\] halting: exit code 0 after \d+ ticks$/.test(l))).toBe(true);
    // isa-debug-exit: status (value << 1) | 1, the kernel wrote 0.
    expect(lines).toContain("qemu exit status 1 (isa-debug-exit: (value << 1) | 1; 1 = the kernel wrote 0)");
  }, 240_000);
});
