// The demo kernel as a machine state: the guest kit's layout (the loader's part: GDT, IDT, TSS,
// page tables), the kernel's code, its data (per-CPU area, process table, each process's first
// regstate), and the user programs in their own pages. The machine starts at kernel_start in
// long mode with IF = 0, as a bootloader leaves a kernel.
import { Assembler, buildGuest, littleEndian, starFor, type Guest } from "../../guest/index.ts";
import type { ArchState } from "../../contract/state.ts";
import type { ContextConfig } from "../../spec/context/index.ts";
import { kernelCode, exceptionStubs, type KernelBugs } from "./kernel.ts";
import { FULL_WORKLOAD, SHORT_WORKLOAD, userPrograms } from "./programs.ts";
import {
  CPU, KERNEL_CODE, PERCPU, PROC, PROCS, PROC_SIZE, REG, REGSTATE_SIZE, SCHED_STACK, STATE, STUBS, STUB_STRIDE,
  USER_CODE, USER_CS, USER_SS, USER_STACK_TOP, demoLayout, kernelStackTop, processSpace, userPages,
} from "./layout.ts";
import { VARIANTS, type VariantName } from "./variants.ts";

export interface DemoKernel {
  readonly state: ArchState;
  readonly symbols: ReadonlyMap<string, bigint>;
  /** What the context checker needs to know about this kernel. */
  readonly context: ContextConfig;
  readonly variant: VariantName | undefined;
}

const q = (v: bigint) => [...littleEndian(v, 8)];

export interface DemoOptions {
  /** One of the broken variants (variants.ts); the correct kernel when absent. */
  readonly variant?: VariantName;
  /** Less work for the user programs (the run `npm test` uses). */
  readonly short?: boolean;
}

export function buildDemoKernel(options: DemoOptions = {}): DemoKernel {
  const variant = options.variant;
  if (variant !== undefined && !(variant in VARIANTS)) throw new Error(`no demo variant ${variant}`);
  const bugs: KernelBugs = {
    missingSwapgs: variant === "missing-swapgs",
    yieldLosesR12: variant === "yield-clobbers-r12",
    staleRsp0: variant === "stale-rsp0",
    sysretAlways: variant === "sysret-noncanonical",
  };
  const programs = userPrograms(options.short === true ? SHORT_WORKLOAD : FULL_WORKLOAD);
  const spaces = programs.map((p, i) => processSpace(i, { edge: p.edge, kernelUserAccessible: variant === "user-kernel-mapping" }));
  // The layout first (for STAR), then the kernel, whose LSTAR the layout records.
  const draft = demoLayout(spaces, 0n);
  const star = starFor(draft.gdt.entries);
  const a = new Assembler();
  kernelCode(a.section(KERNEL_CODE, { name: "kernel" }), bugs, star);
  exceptionStubs(a.section(STUBS, { name: "stubs" }));
  const kernel = a.assemble();
  for (let v = 0; v < 256; v++)
    if (kernel.symbol(`stub_${v}`) !== STUBS + STUB_STRIDE * BigInt(v)) throw new Error(`demo kernel: stub ${v} is not at its IDT address`);
  const layout = demoLayout(spaces, kernel.symbol("syscall_entry"));

  // Per-CPU data: `current` starts at the last process so that the scheduler's first pick is the first.
  const last = PROCS + PROC_SIZE * BigInt(programs.length - 1);
  const percpu = new Uint8Array(0x30);
  const put = (buf: Uint8Array, at: bigint, v: bigint) => buf.set(q(v), Number(at));
  put(percpu, CPU.self, PERCPU);
  put(percpu, CPU.current, last);
  put(percpu, CPU.schedStack, SCHED_STACK);

  const table = new Uint8Array(Number(PROC_SIZE) * programs.length);
  const placed: { address: bigint; bytes: Uint8Array; physical: true }[] = [];
  programs.forEach((p, i) => {
    const top = kernelStackTop(i);
    const entry = Number(PROC_SIZE) * i;
    put(table, BigInt(entry) + PROC.state, BigInt(STATE.runnable));
    put(table, BigInt(entry) + PROC.pid, BigInt(i + 1));
    put(table, BigInt(entry) + PROC.cr3, spaces[i]!.tables[0]!);
    put(table, BigInt(entry) + PROC.kstackTop, top);
    put(table, BigInt(entry) + PROC.regs, top - REGSTATE_SIZE);
    // The first regstate: the process enters user mode at its entry through exception_return.
    const regs = new Uint8Array(Number(REGSTATE_SIZE));
    put(regs, REG.rip, USER_CODE);
    put(regs, REG.cs, BigInt(USER_CS));
    put(regs, REG.rflags, variant === "if-clear" ? 0x2n : 0x202n);
    put(regs, REG.rsp, USER_STACK_TOP);
    put(regs, REG.ss, BigInt(USER_SS));
    placed.push({ address: top - REGSTATE_SIZE, bytes: regs, physical: true });
    for (const section of p.image.sections) placed.push({ address: userPages(i) + (section.origin - USER_CODE), bytes: section.bytes, physical: true });
  });
  placed.push({ address: PERCPU, bytes: percpu, physical: true }, { address: PROCS, bytes: table, physical: true });

  const guest: Guest = buildGuest(layout, { code: [kernel, ...placed], start: { ring: 0, rip: kernel.symbol("kernel_start"), gsBase: 0n, kernelGsBase: 0n } });
  return {
    state: guest.state,
    symbols: guest.symbols,
    variant,
    context: {
      kernelStacks: "per-task",
      kernelStackSize: 0x1000n,
      kernelMemory: [
        { start: KERNEL_CODE, end: STUBS + 0x1000n, what: "the kernel's code" },
        { start: PERCPU, end: PROCS + 0x1000n, what: "the kernel's per-CPU data and process table" },
      ],
    },
  };
}
