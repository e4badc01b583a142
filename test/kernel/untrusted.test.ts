// Untrusted kernels (students' submissions) stop cleanly, with the reason, within their budget:
// one that loops (step limit, or the wall-clock limit), one that triple-faults, one that halts
// with nothing to wake it, one that floods the console, one that writes more memory than its
// budget. On each engine and in lockstep, through runKernel and through the `ringspec kernel`
// command. (Bad images and loader descriptions:
// test/kernel/loader.test.ts and test/cli/kernel.test.ts.)
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadKernel, parseLoaderDescription } from "../../kernel/loader/index.ts";
import { MEMORY_CHECK_EVERY, runKernel } from "../../kernel/run.ts";
import { KERNEL_ENGINE_NAMES } from "../../kernel/engines.ts";
import { main } from "../../cli/main.ts";

const RAW = { format: "ringspec-loader/1", image: { type: "raw", load_address: "0x100000" } } as const;

/** A raw kernel at 1 MiB in the loader's boot state (long mode, no IDT, IF = 0). */
function guest(bytes: readonly number[]) {
  return loadKernel(Uint8Array.from(bytes), parseLoaderDescription(RAW)).state;
}

const LOOP = [0xeb, 0xfe]; //                       1: jmp 1b
const UD2 = [0x0f, 0x0b]; //                        ud2: #UD, no IDT → #GP → #DF → shutdown
const DIVIDE = [0x31, 0xc9, 0xf7, 0xf1]; //         xor %ecx,%ecx; div %ecx: #DE, then as above
const HLT = [0xf4]; //                              hlt with IF = 0: nothing can wake it
const FLOOD = [0xb0, 0x78, 0xe6, 0xe9, 0xeb, 0xfc]; // 1: mov $'x',%al; out %al,$0xe9; jmp 1b
/** Maps the first GiB of physical memory with 2 MiB pages (the boot map covers only memory_size),
 *  then writes one byte to every 4 KiB page from 4 MiB up: physical memory beyond the guest's. */
const HOARD = [
  0x0f, 0x20, 0xd8, //                               mov %cr3,%rax
  0x48, 0x8b, 0x18, //                               mov (%rax),%rbx           PML4[0]
  0x48, 0x81, 0xe3, 0x00, 0xf0, 0xff, 0xff, //       and $-4096,%rbx
  0x48, 0x8b, 0x1b, //                               mov (%rbx),%rbx           PDPT[0]
  0x48, 0x81, 0xe3, 0x00, 0xf0, 0xff, 0xff, //       and $-4096,%rbx           the page directory
  0x31, 0xc9, //                                     xor %ecx,%ecx
  0x48, 0x89, 0xca, //                            1: mov %rcx,%rdx
  0x48, 0xc1, 0xe2, 0x15, //                         shl $21,%rdx
  0x48, 0x81, 0xca, 0x83, 0x00, 0x00, 0x00, //       or $0x83,%rdx             present, writable, 2 MiB
  0x48, 0x89, 0x14, 0xcb, //                         mov %rdx,(%rbx,%rcx,8)
  0xff, 0xc1, //                                     inc %ecx
  0x81, 0xf9, 0x00, 0x02, 0x00, 0x00, //             cmp $512,%ecx
  0x75, 0xe4, //                                     jne 1b
  0x0f, 0x22, 0xd8, //                               mov %rax,%cr3             flush the TLB
  0x48, 0xc7, 0xc7, 0x00, 0x00, 0x40, 0x00, //       mov $0x400000,%rdi
  0xc6, 0x07, 0x01, //                            2: movb $1,(%rdi)
  0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, //       add $0x1000,%rdi
  0xeb, 0xf4, //                                     jmp 2b
];

describe.each([...KERNEL_ENGINE_NAMES.map((e) => [e, false] as const), ["spec", true] as const])("an untrusted kernel on %s (lockstep: %s)", (engine, lockstep) => {
  const run = (bytes: readonly number[], maxSteps: number, timeoutMs = 60_000, consoleLimit = 64, memoryLimitBytes?: number) =>
    // Lockstep compares whole states every 1024 steps here: a state of thousands of pages costs.
    runKernel(guest(bytes), { engine, profile: "intel", maxSteps, timeoutMs, consoleLimit, lockstep, lockstepEvery: 1024, ...(memoryLimitBytes !== undefined ? { memoryLimitBytes } : {}) });

  it("that loops stops at its step limit, exactly", () => {
    const r = run(LOOP, 3000);
    expect([r.stop, r.steps, r.divergence]).toEqual(["limit", 3000, undefined]);
  });

  it("that loops with a step limit it cannot reach stops at its wall-clock limit, with the reason", () => {
    // A short limit: the loop runs (and burns CPU) until it, whatever its length.
    const r = run(LOOP, Number.MAX_SAFE_INTEGER, 50);
    expect(r.stop).toBe("timeout");
    expect(r.detail).toBe("no stop within 0.05 s");
    expect(r.steps).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });

  it.each([["ud2", UD2, 1], ["a divide error", DIVIDE, 2]] as const)("that triple-faults (%s with no IDT) stops with shutdown at once", (_, bytes, steps) => {
    const r = run(bytes, 1000);
    expect([r.stop, r.steps, r.divergence]).toEqual(["shutdown", steps, undefined]);
    expect(r.state.cpu.shutdown).toBe(true);
  });

  it("that halts with interrupts disabled stops with hlt instead of waiting forever", () => {
    const r = run(HLT, 1000);
    expect([r.stop, r.steps]).toEqual(["hlt", 1]);
  });

  it("that writes page after page of physical memory stops with memory-limit at the first count past its budget", () => {
    const r = run(HOARD, 1_000_000, 120_000, 64, 8 * 1024 * 1024);
    expect(r.stop).toBe("memory-limit");
    expect(r.steps).toBe(MEMORY_CHECK_EVERY);
    expect(r.detail).toMatch(/^the kernel wrote to [0-9]+ KiB of guest memory, more than its 8192 KiB$/);
    expect(r.divergence).toBeUndefined();
  }, 120_000);

  it("that floods the console stops at the cap with exactly the capped bytes", () => {
    const r = run(FLOOD, 1_000_000, 60_000, 100);
    expect(r.stop).toBe("console-limit");
    expect(r.detail).toBe("the kernel wrote more than 100 console bytes");
    expect(new TextDecoder().decode(r.console)).toBe("x".repeat(100));
    expect(r.steps).toBeLessThan(400);
  });
});

describe("ringspec kernel on untrusted images: the stop on one line, the console kept, exit 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "ringspec-untrusted-"));
  const image = (name: string, bytes: readonly number[]) => {
    writeFileSync(join(dir, `${name}.bin`), Uint8Array.from(bytes));
    return join(dir, `${name}.bin`);
  };
  const loader = (limits: Record<string, number>) => {
    const file = join(dir, `loader-${Object.values(limits).join("-")}.json`);
    writeFileSync(file, JSON.stringify({ ...RAW, limits }));
    return file;
  };
  async function run(args: string[]) {
    let stdout = "";
    const stderr: string[] = [];
    const code = await main(args, { out: (t) => (stdout += t), err: (l) => stderr.push(l) });
    return { code, stdout, stderr };
  }

  it("the loader description's limits bound the run: a looping kernel stops at limits.max_steps", async () => {
    const r = await run(["kernel", image("loop", LOOP), "--loader", loader({ max_steps: 500 })]);
    expect(r.code).toBe(1);
    expect(r.stderr[0]).toMatch(/^stop: limit after 500 steps \(500 instructions\) in [0-9.]+ s, [0-9.]+ MIPS \(engine impl\)$/);
  });

  it("--timeout bounds it in wall-clock time", async () => {
    const r = await run(["kernel", image("loop", LOOP), "--loader", loader({ max_steps: 1_000_000_000 }), "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr[0]).toMatch(/^stop: timeout after [0-9]+ steps .*: no stop within 0\.05 s \(engine impl\)$/);
  });

  it("a triple fault is reported as shutdown, in lockstep too", async () => {
    const r = await run(["kernel", image("ud2", UD2), "--loader", loader({ max_steps: 100 }), "--lockstep"]);
    expect(r.code).toBe(1);
    expect(r.stderr[0]).toMatch(/^stop: shutdown after 1 steps/);
    expect(r.stderr[1]).toMatch(/^lockstep: spec and impl agreed at every step/);
  });

  it("a console flood is cut at limits.console_bytes: what was printed is kept, the rest is not", async () => {
    const r = await run(["kernel", image("flood", FLOOD), "--loader", loader({ console_bytes: 32 })]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("x".repeat(32));
    expect(r.stderr[0]).toMatch(/^stop: console-limit after [0-9]+ steps .*: the kernel wrote more than 32 console bytes \(engine impl\)$/);
  });

  it("a loader description asking for more than the limits allow is one line, exit 2", async () => {
    const r = await run(["kernel", image("loop", LOOP), "--loader", loader({ max_steps: 1e12 })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toEqual([`ringspec: ${join(dir, "loader-1000000000000.json")}: limits.max_steps: Too big: expected number to be <=1000000000`]);
  });

  it("a truncated ELF is one line naming the field, exit 2", async () => {
    const elf = readFileSync(new URL("../../kernel/c/build/kernel.elf", import.meta.url));
    const truncated = join(dir, "truncated.elf");
    writeFileSync(truncated, elf.subarray(0, 0x2000));
    const r = await run(["kernel", "check", truncated]);
    expect(r.code).toBe(2);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(new RegExp(`^ringspec: ${truncated}: program header [0-9]+: p_offset: the segment's file bytes .* lies outside the file \\(8192 bytes\\)$`));
  });
});
