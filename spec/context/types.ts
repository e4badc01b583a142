// The abstract model of tasks the context-switch checker keeps: who is running, which tasks are
// suspended inside the kernel and with what user context, and what each task's kernel stack is.
import type { RuleId } from "../rules/rule.ts";
import type { Invariant } from "./rules.ts";

/** How many times each invariant was checked (a report's "not exercised" when 0). */
export type CheckCounts = Readonly<Record<Invariant, number>>;

export interface KernelRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly what: string;
}

/** What the checker must be told about a kernel (kernel/loader's `context` block). */
export interface ContextConfig {
  /** Tasks are told apart by CR3 unless the kernel names its current-task pointer: then by the
   *  8-byte value at this kernel address (tasks sharing an address space). */
  readonly taskSymbol?: { readonly name: string; readonly address: bigint };
  /** "per-task": every task has its own kernel stack (Chickadee, xv6, Linux); "shared": one
   *  kernel stack for all tasks (WeensyOS), so RSP0 never changes. */
  readonly kernelStacks: "per-task" | "shared";
  /** Bytes below a kernel stack top that belong to that stack. */
  readonly kernelStackSize: bigint;
  /** Physical ranges user mode must never reach (the image, the loader's boot area, declared ranges). */
  readonly kernelMemory: readonly KernelRange[];
}

/** How a task entered the kernel. */
export type EntryKind = "syscall" | "software" | "exception" | "external" | "nmi";

/** A task's user-mode context: what it must find again when it resumes. */
export interface UserContext {
  /** RAX..R15 in SDM order; RSP is the user RSP. */
  readonly gpr: readonly bigint[];
  readonly rip: bigint;
  readonly rflags: bigint;
  /** Selectors; undefined when the entry does not show them (SYSCALL replaces CS and SS). */
  readonly cs: number | undefined;
  readonly ss: number | undefined;
  readonly ds: number;
  readonly es: number;
  readonly fs: number;
  readonly gs: number;
  readonly fsBase: bigint;
  readonly gsBase: bigint;
}

/** A task inside the kernel: how it got there and what it must get back. */
export interface Suspended {
  readonly step: number;
  readonly kind: EntryKind;
  readonly vector: number | undefined;
  /** Where user mode was when it entered (the SYSCALL, the faulting or interrupted instruction). */
  readonly at: bigint;
  readonly context: UserContext;
  /** TSS.RSP0 when it entered: the kernel stack its entry used. */
  readonly kernelStackTop: bigint;
}

export interface TaskRecord {
  /** "task 2 (cr3 0x10d000)": numbered in order of first appearance. */
  readonly label: string;
  /** TSS.RSP0 the first time it ran in user mode. */
  readonly kernelStackTop: bigint | undefined;
  readonly firstRunStep: number;
  /** CS and SS it last ran with in user mode (SYSCALL entries do not show them). */
  readonly userCs: number | undefined;
  readonly userSs: number | undefined;
}

export interface Violation {
  readonly rule: RuleId;
  readonly invariant: Invariant;
  readonly step: number;
  /** The instruction (or boundary) where it was found. */
  readonly rip: bigint;
  readonly task: string;
  /** One line, in the words of an OS course. */
  readonly message: string;
  /** The state fields that show it, as `name → value`. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface ContextModel {
  readonly config: ContextConfig;
  /** CPL after the last step observed. */
  readonly cpl: number;
  /** Whose GS.base is live: flips at every SWAPGS. */
  readonly gs: "kernel" | "user";
  /** GS.base and KERNEL_GS_BASE after the last step (finds a SWAPGS when events carry no bytes). */
  readonly lastGs: { readonly base: bigint; readonly kernel: bigint } | undefined;
  readonly tasks: ReadonlyMap<bigint, TaskRecord>;
  readonly suspended: ReadonlyMap<bigint, Suspended>;
  /** Open after a SYSCALL until the entry code first moves RSP. */
  readonly syscallWindow: { readonly task: bigint; readonly step: number; readonly userRsp: bigint; readonly top: bigint } | undefined;
  /** kernelStacks "shared": the one RSP0. */
  readonly sharedTop: bigint | undefined;
  /** Page-table pages seen per CR3 (kernel memory for CTX-06), computed once per address space. */
  readonly tablesByCr3: ReadonlyMap<bigint, readonly bigint[]>;
  readonly checks: CheckCounts;
}
