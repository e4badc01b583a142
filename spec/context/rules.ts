// The context-switch rules: what a correct kernel guarantees at every user↔kernel boundary,
// checked from outside on any running machine (issue 11, invariants a–f). They are properties of
// kernels, not of the CPU, so their source is the kernel conventions the SDM's mechanisms serve.
import { defineRules } from "../rules/rule.ts";

export type Invariant = "a" | "b" | "c" | "d" | "e" | "f";

export const CONTEXT_RULES = [
  { id: "CTX-01", invariant: "a", description: "A task resumes in user mode with exactly the user context it had when it entered the kernel, except what the entry defines: SYSCALL → RAX is the result, RCX = the return RIP and R11 = the return RFLAGS (as SYSRET leaves them); INT n → RAX; interrupts and faults → nothing", source: "SDM Vol. 3A §6.12.1, §6.14 (the interrupted procedure's state); Linux entry_64.S pt_regs restore" },
  { id: "CTX-02", invariant: "b", description: "An IDT entry from user mode lands on the task's kernel stack (TSS.RSP0) or the gate's IST stack, with the frame right below its 16-byte-aligned top", source: "SDM Vol. 3A §6.14.2, §6.14.5" },
  { id: "CTX-02-SYSCALL", invariant: "b", description: "After SYSCALL, the first stack the kernel's entry code switches to is the task's kernel stack (within kernel_stack_size below TSS.RSP0); SYSCALL itself leaves RSP on the user stack", source: "SDM Vol. 2B SYSCALL (RSP not saved or switched); Linux entry_SYSCALL_64" },
  { id: "CTX-02-RING0", invariant: "b", description: "An event delivered in kernel mode never writes its frame to a user-accessible page (the kernel never runs on a stack user mode controls)", source: "SDM Vol. 3A §6.14.2 (no stack switch without a privilege change); CVE-2012-0217 (SYSRET with a non-canonical RCX)" },
  { id: "CTX-03-GS", invariant: "c", description: "In user mode GS.base is the user's: every kernel entry and exit path executes SWAPGS exactly once (parity), so the kernel's per-CPU base is only ever in KERNEL_GS_BASE there", source: "SDM Vol. 2B SWAPGS" },
  { id: "CTX-03-IF", invariant: "c", description: "A task runs in user mode with RFLAGS.IF = 1 (the timer can always preempt it)", source: "SDM Vol. 3A §6.8.1" },
  { id: "CTX-04", invariant: "d", description: "CPL 3 reaches CPL 0 only through an IDT gate (at the gate's handler) or SYSCALL (at LSTAR)", source: "SDM Vol. 3A §5.8, §6.12; Vol. 2B SYSCALL" },
  { id: "CTX-05", invariant: "e", description: "Whenever a task runs in user mode, TSS.RSP0 is the top of that task's own kernel stack: unchanged since its first run, and (per-task stacks) not the stack of another task suspended in the kernel", source: "SDM Vol. 3A §8.7 (TSS in 64-bit mode: RSP0 is used on the next privilege change)" },
  { id: "CTX-06", invariant: "f", description: "No user-accessible mapping reaches kernel memory: the kernel image, its page tables, GDT, IDT, TSS, kernel and IST stacks, and the ranges the loader description declares", source: "SDM Vol. 3A §4.6 (U/S); the user/kernel separation every course kernel builds" },
] as const satisfies readonly { id: string; invariant: Invariant; description: string; source: string }[];

export type ContextRuleId = (typeof CONTEXT_RULES)[number]["id"];

export const INVARIANTS: Readonly<Record<Invariant, { readonly title: string; readonly rules: readonly ContextRuleId[] }>> = {
  a: { title: "a task resumes with the user context it entered with", rules: ["CTX-01"] },
  b: { title: "the kernel runs on the task's kernel stack (RSP0) or an IST stack", rules: ["CTX-02", "CTX-02-SYSCALL", "CTX-02-RING0"] },
  c: { title: "user mode runs with the user's GS.base (SWAPGS parity) and IF = 1", rules: ["CTX-03-GS", "CTX-03-IF"] },
  d: { title: "CPL 3 reaches CPL 0 only through IDT gates or LSTAR", rules: ["CTX-04"] },
  e: { title: "TSS.RSP0 is the running task's kernel stack top", rules: ["CTX-05"] },
  f: { title: "no user-accessible mapping of kernel memory", rules: ["CTX-06"] },
};

/** The same rules in the catalogue's form (spec/rule-catalogue.ts). */
export const CONTEXT_RULE_LIST = defineRules(CONTEXT_RULES.map(({ id, description, source }) => ({ id, description, source })));
