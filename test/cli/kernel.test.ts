// `ringspec kernel` and `ringspec kernel check`: arguments, bad input (one line, exit 2), and
// what a run that cannot finish reports.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const C_KERNEL = join(ROOT, "kernel/c/build/kernel.elf");
const DIR = mkdtempSync(join(tmpdir(), "ringspec-kernel-cli-"));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string[] }> {
  let stdout = "";
  const stderr: string[] = [];
  const code = await main(args, { out: (t) => (stdout += t), err: (l) => stderr.push(l) });
  return { code, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(DIR, name);
  writeFileSync(path, text);
  return path;
}

describe("ringspec kernel: bad input is one line and exit 2", () => {
  it.each([
    [["kernel", "a", "b"], "ringspec: kernel: expected one IMAGE, got 2"],
    [["kernel", "/nonexistent/k.elf"], "ringspec: /nonexistent/k.elf: no such file"],
    [["kernel", C_KERNEL, "--engine", "qemu"], 'ringspec: --engine: expected spec or impl, got "qemu"'],
    [["kernel", C_KERNEL, "--json"], "ringspec: kernel: --json needs --trace (or belongs to kernel check)"],
    [["kernel", C_KERNEL, "--rubric", "r.json"], "ringspec: kernel: --rubric belongs to kernel check"],
    [["kernel", "check"], "ringspec: kernel check: expected one IMAGE, got 0 (see kernel --help)"],
    [["kernel", "check", C_KERNEL, "--lockstep"], "ringspec: kernel check: --lockstep belongs to kernel (a check runs one engine)"],
    [["kernel", C_KERNEL, "--compare-every", "4"], "ringspec: kernel: --compare-every needs --lockstep"],
    [["kernel", C_KERNEL, "--lockstep", "--compare-every", "0"], 'ringspec: --compare-every: expected a positive whole number of steps, got "0"'],
  ])("%j", async (args, line) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toEqual([line]);
  });

  it("a raw file without a loader description, a bad description, a bad rubric: the file and the field", async () => {
    const raw = file("raw.bin", "\x90\xf4");
    expect((await run(["kernel", raw])).stderr).toEqual([`ringspec: ${raw}: image: not an ELF file; a raw binary needs a loader description with image.type "raw" and image.load_address`]);
    const loader = file("bad-loader.json", JSON.stringify({ format: "ringspec-loader/1", memory_size: "0x10" }));
    expect((await run(["kernel", C_KERNEL, "--loader", loader])).stderr).toEqual([`ringspec: ${loader}: memory_size: must be between 0x200000 (2 MiB) and 0x40000000 (1 GiB)`]);
    const rubric = file("bad-rubric.json", JSON.stringify({ format: "ringspec-rubric/1", tests: [{ invariant: "g", points: 1 }] }));
    const r = await run(["kernel", "check", C_KERNEL, "--rubric", rubric]);
    expect(r.code).toBe(2);
    expect(r.stderr).toEqual([`ringspec: ${rubric}: tests[0]: a test needs exactly one of "invariant", "console" or "exit", with "points"`]);
    const notJson = file("not-json.json", "{");
    expect((await run(["kernel", "check", C_KERNEL, "--rubric", notJson])).stderr[0]).toMatch(new RegExp(`^ringspec: ${notJson}: not valid JSON`));
  });

  it("a raw image with a loader description runs, and its exit value is the status", async () => {
    // mov $'k', %al; out %al, $0xe9; mov $0, %eax; out %eax, $0xf4
    const raw = join(DIR, "exit0.bin");
    writeFileSync(raw, Uint8Array.from([0xb0, 0x6b, 0xe6, 0xe9, 0xb8, 0, 0, 0, 0, 0xe7, 0xf4]));
    const loader = file("raw-loader.json", JSON.stringify({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x100000" } }));
    const r = await run(["kernel", raw, "--loader", loader, "--lockstep"]);
    expect(r.stdout).toBe("k");
    expect(r.stderr[0]).toMatch(/^stop: exit 0 after 4 steps \(4 instructions\) in [0-9.]+ s, [0-9.]+ MIPS \(engine impl\)$/);
    expect(r.stderr[1]).toMatch(/^lockstep: spec and impl agreed at every step \(4 steps/);
    expect(r.code).toBe(0);
  });
});

describe("ringspec kernel --lockstep --compare-every N", () => {
  it("compares events at every step and whole states every N steps, and says so", async () => {
    const r = await run(["kernel", "demo", "--lockstep", "--compare-every", "64", "--max-steps", "3000"]);
    expect(r.code).toBe(1); // the step limit, not an exit
    expect(r.stderr[0]).toMatch(/^stop: limit after 3000 steps /);
    expect(r.stderr[1]).toBe("lockstep: spec and impl agreed at every step (3000 steps: events, whole states every 64 steps and at every delivery, I/O and privilege change and console; memory at every privilege change, delivery and the end)");
  });
});

describe("ringspec kernel check on a run that ends before any user↔kernel boundary", () => {
  it("reports each invariant as not exercised, the stop, and the command that reproduces it", async () => {
    const results = join(DIR, "results.json");
    const junit = join(DIR, "junit.xml");
    const r = await run(["kernel", "check", C_KERNEL, "--max-steps", "30", "--gradescope", results, "--junit", junit]);
    expect(r.code).toBe(0); // --gradescope: graded, the score carries the verdict
    expect(r.stdout).toContain("run: limit after 30 steps");
    expect(r.stdout).toContain("FAIL (a) a task resumes with the user context it entered with: not exercised");
    expect(r.stdout).toContain(`reproduce: npx ringspec kernel check ${C_KERNEL} --max-steps 30 --engine spec`);
    const json = JSON.parse((await import("node:fs")).readFileSync(results, "utf8"));
    expect(Object.keys(json)).toEqual(["score", "execution_time", "output", "tests"]);
    expect(json.score).toBe(0);
    expect(json.tests).toHaveLength(7);
    expect(Object.keys(json.tests[0])).toEqual(["name", "score", "max_score", "status", "output", "visibility"]);
    expect(json.tests[6]).toMatchObject({ name: "the kernel exits with 0", score: 0, max_score: 1, status: "failed", visibility: "visible" });
    const xml = (await import("node:fs")).readFileSync(junit, "utf8");
    expect(xml).toContain('<testsuite name="ringspec kernel check" tests="7" failures="7"');
  });

  it("without --gradescope a failed check exits 1", async () => {
    expect((await run(["kernel", "check", C_KERNEL, "--max-steps", "30", "--json"])).code).toBe(1);
  });
});

describe("ringspec kernel on the built-in demo kernel", () => {
  it("--trace FROM:TO prints those steps with symbols instead of the console", async () => {
    const r = await run(["kernel", "demo", "--trace", "463:466", "--max-steps", "466"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^463  0x40000e  syscall  \[retired\]  rcx=0x400010 /);
    expect(lines[1]).toMatch(/^464  0x10080 <syscall_entry>  swapgs  \[retired\]  gs\.base=0x30000 KERNEL_GS_BASE=0x0$/);
    expect(lines[3]).toMatch(/^466  0x1008c <syscall_entry\+0xc>  mov %gs:8,%rsp  \[retired\]  rsp=0x41000$/);
    expect(r.stderr[0]).toMatch(/^stop: limit after 466 steps/);
    const json = await run(["kernel", "demo", "--trace", "463:463", "--json", "--max-steps", "463"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ step: 463, rip: "0x40000e", instruction: { disassembly: "syscall" } });
  });

  it.each([
    [["kernel", "demo", "--trace", "5"], 'ringspec: --trace: expected FROM:TO, steps from 1 with FROM <= TO, got "5"'],
    [["kernel", "demo", "--json"], "ringspec: kernel: --json needs --trace (or belongs to kernel check)"],
    [["kernel", "demo:nope"], 'ringspec: demo:nope: unknown demo variant "nope" (variants: missing-swapgs, yield-clobbers-r12, stale-rsp0, if-clear, user-kernel-mapping, sysret-noncanonical)'],
  ])("%j", async (args, line) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toEqual([line]);
  });

  it("without IMAGE it boots the demo kernel; a built-in kernel takes no loader description", async () => {
    const r = await run(["kernel", "--max-steps", "1000"]);
    expect(r.stdout).toBe("ringspec demo kernel: 5 processes, timer every 600 instructions\n");
    expect(r.stderr[0]).toMatch(/^stop: limit after 1000 steps/);
    expect(r.code).toBe(1);
    const loader = file("plain-loader.json", JSON.stringify({ format: "ringspec-loader/1" }));
    expect((await run(["kernel", "demo", "--loader", loader])).stderr).toEqual(["ringspec: --loader: the built-in demo needs no loader description"]);
  });

  it("kernel check demo:VARIANT names the broken invariant and exits 1; with --gradescope it writes results.json and exits 0", async () => {
    const r = await run(["kernel", "check", "demo:if-clear", "--max-steps", "3000"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL \(c\) user mode runs with the user's GS.base \(SWAPGS parity\) and IF = 1: [0-9]+ violations?; the first:\n {5}CTX-03-IF at step [0-9]+: task 1 \(cr3 0x60000\) returned to user mode with interrupts disabled \(IF = 0\)/);
    expect(r.stdout).toContain("reproduce: npx ringspec kernel check demo:if-clear --max-steps 3000 --engine spec");
  });
});
