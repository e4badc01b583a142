// The emulator options of `run` and `vectors check` (--engine qemu|bochs|gdb, --qemu, --qemu-cpu,
// --bochs, --gdb, --workers), without needing the emulators: bad combinations are usage errors,
// and an emulator that is missing fails each case with one line while the check goes on.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";

const VECTORS = join(fileURLToPath(new URL("../../", import.meta.url)), "conformance/vectors");

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => (stdout += t), err: (l) => (stderr += l + "\n") });
  return { code, stdout, stderr };
}

describe("emulator options", () => {
  it("rejects an emulator option given for another engine, naming both", async () => {
    const r = await run(["vectors", "check", VECTORS, "--qemu", "/usr/bin/qemu-system-x86_64"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("ringspec: --qemu goes with --engine qemu\n");
    expect((await run(["run", join(VECTORS, "syscall-basic.json"), "--engine", "qemu", "--bochs", "x"])).stderr).toMatch(/--bochs goes with --engine bochs/);
  });

  it("needs --gdb for --engine gdb, in the HOST:PORT form, and one worker", async () => {
    expect((await run(["vectors", "check", VECTORS, "--engine", "gdb"])).stderr).toMatch(/--engine gdb needs --gdb HOST:PORT/);
    expect((await run(["vectors", "check", VECTORS, "--engine", "gdb", "--gdb", "nowhere"])).stderr).toMatch(/--gdb: expected HOST:PORT/);
    expect((await run(["vectors", "check", VECTORS, "--engine", "gdb", "--gdb", "localhost:1234", "--workers", "2"])).stderr).toMatch(/one stub/);
  });

  it("takes --workers from 1 to 64", async () => {
    for (const bad of ["0", "65", "two"]) expect((await run(["vectors", "check", VECTORS, "--workers", bad])).stderr).toMatch(/--workers: expected a whole number from 1 to 64/);
    const r = await run(["vectors", "check", VECTORS, "--workers", "2", "--engine", "impl"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("70 passed, 0 failed");
  });

  it("fails every case on a missing emulator with the reason, and goes on", async () => {
    const r = await run(["vectors", "check", join(VECTORS, "syscall-basic.json"), join(VECTORS, "sysret64-basic.json"), "--engine", "qemu", "--qemu", "/nonexistent/qemu", "--workers", "2"]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("FAIL ")).map((l) => l.split(" ")[1])).toEqual(["syscall-basic", "sysret64-basic"]);
    expect(lines.filter((l) => l.includes("/nonexistent/qemu: not found"))).toHaveLength(2);
    expect(lines[lines.length - 1]).toBe("0 passed, 2 failed");
  });
});
