// The demo kernel's memory map, as data (the guest kit's layout, guest/layout.ts), and the
// offsets its code and data share. Physical = linear in the kernel's half (0–2 MiB, one
// supervisor 2 MiB page, mapped in every address space); each process has its own address space
// (CR3) adding its user pages.
//
//   0x1000   page tables of the boot address space (kernel only)
//   0x8000   GDT (0x08 kernel CS, 0x10 kernel SS, 0x18 user CS32, 0x20 user SS, 0x28 user CS,
//            0x30 TSS); 0x9000 IDT (256 gates → the kernel's stubs); 0xa000 TSS
//   0x10000  kernel code; 0x18000 the 256 exception stubs, 16 bytes apart
//   0x20000  boot stack top; 0x21000.. IST stacks (IST1 #DF, IST2 NMI)
//   0x30000  per-CPU data (GS.base in the kernel, KERNEL_GS_BASE in user mode)
//   0x31000  the process table; 0x3f000 the scheduler's stack top
//   0x41000 + 0x1000·i  process i's kernel stack top (its TSS.RSP0)
//   0x60000 + 0x8000·i  process i's page tables
//   0x100000 + 0x10000·i  process i's user pages: code (→ 0x400000), stack (→ 0x5ff000), and
//            for the edge program the top page of the lower half (→ 0x7ffffffff000)
import { defineLayout, identity, type AddressSpace, type GuestLayout, type Mapping } from "../../guest/index.ts";

export const KERNEL_CODE = 0x10000n;
export const STUBS = 0x18000n;
export const STUB_STRIDE = 16n;
export const BOOT_STACK = 0x20000n;
export const PERCPU = 0x30000n;
export const PROCS = 0x31000n;
export const PROC_SIZE = 0x40n;
export const SCHED_STACK = 0x3f000n;
export const TSS = 0xa000n;

export const USER_CODE = 0x400000n;
export const USER_STACK_PAGE = 0x5ff000n;
export const USER_STACK_TOP = 0x600000n;
export const EDGE_PAGE = 0x7ffffffff000n;

export const KERNEL_CS = 0x08;
export const USER_CS = 0x2b;
export const USER_SS = 0x23;

export const TIMER_VECTOR = 0x20;
/** Retired instructions between a timer EOI and the next tick (docs/devices.md). */
export const TIMER_PERIOD = 600;

/** Per-CPU fields (GS-relative). */
export const CPU = { self: 0n, kstackTop: 8n, userRsp: 0x10n, current: 0x18n, schedStack: 0x20n, ticks: 0x28n } as const;
/** Process-table entry fields. */
export const PROC = { state: 0n, pid: 8n, cr3: 0x10n, kstackTop: 0x18n, regs: 0x20n, yields: 0x28n, wake: 0x30n } as const;
export const STATE = { free: 0, runnable: 1, sleeping: 2, exited: 3 } as const;

/** struct regstate (pt_regs): the 15 GPRs (R15 lowest), vector, error code, then the frame. */
export const REG = {
  r15: 0x00n, r14: 0x08n, r13: 0x10n, r12: 0x18n, r11: 0x20n, r10: 0x28n, r9: 0x30n, r8: 0x38n,
  rbp: 0x40n, rdi: 0x48n, rsi: 0x50n, rdx: 0x58n, rcx: 0x60n, rbx: 0x68n, rax: 0x70n,
  vector: 0x78n, errcode: 0x80n, rip: 0x88n, cs: 0x90n, rflags: 0x98n, rsp: 0xa0n, ss: 0xa8n,
} as const;
export const REGSTATE_SIZE = 0xb0n;
/** regstate.vector for a SYSCALL entry (no hardware vector). */
export const SYSCALL_MARK = 0x100;

export const kernelStackTop = (i: number) => 0x41000n + 0x1000n * BigInt(i);
export const userPages = (i: number) => 0x100000n + 0x10000n * BigInt(i);
const tableFrames = (i: number) => Array.from({ length: 8 }, (_, k) => 0x60000n + 0x8000n * BigInt(i) + 0x1000n * BigInt(k));

/** The kernel half every address space shares: 0–2 MiB, supervisor only (user: a broken variant). */
function kernelHalf(userAccessible: boolean): Mapping {
  return identity(0n, 0x200000n, "2M", userAccessible);
}

export function processSpace(i: number, options: { edge: boolean; kernelUserAccessible: boolean }): AddressSpace {
  const base = userPages(i);
  const page = (linear: bigint, physical: bigint): Mapping => ({ ...identity(linear, 0x1000n, "4K", true), physical });
  return {
    tables: tableFrames(i),
    mappings: [
      kernelHalf(options.kernelUserAccessible),
      page(USER_CODE, base),
      page(USER_STACK_PAGE, base + 0x8000n),
      ...(options.edge ? [page(EDGE_PAGE, base + 0xc000n)] : []),
    ],
  };
}

export function demoLayout(processes: readonly AddressSpace[], lstar: bigint): GuestLayout {
  return defineLayout({
    paging: { tables: Array.from({ length: 4 }, (_, k) => 0x1000n + 0x1000n * BigInt(k)), mappings: [kernelHalf(false)] },
    addressSpaces: processes,
    idt: { stubs: null, handler: (v) => STUBS + STUB_STRIDE * BigInt(v), ist: { 8: 1, 2: 2 } },
    stacks: { kernel: BOOT_STACK },
    code: { kernel: KERNEL_CODE, user: USER_CODE },
    percpu: null,
    haltPads: [],
    // The kernel's own init code writes these MSRs (as a course kernel does); the layout's
    // values are what the loader leaves before it.
    msrs: { lstar, fmask: 0n },
  });
}
