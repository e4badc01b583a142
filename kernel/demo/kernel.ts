// The demo kernel's code, in the style of Linux's entry_64.S and Chickadee's k-exception.S,
// written through the guest kit's assembler. Every entry from user mode and every exit to it is
// here, in full:
//   kernel_start      MSRs (SCE, STAR, LSTAR, FMASK, GS bases), the timer, then the scheduler
//   syscall_entry     SWAPGS, user RSP to per-CPU scratch, the task's kernel stack, a regstate
//                     (pt_regs) frame, dispatch; back with SYSRETQ when safe (canonical RIP,
//                     no RF/TF), else through exception_return's IRETQ
//   stub_N            one per vector: push an error code if the CPU did not, push N
//   exception_entry   regstate, SWAPGS when coming from user mode (or from a faulting IRETQ to
//                     user mode), then the timer, a user fault (the task is killed) or a panic
//   exception_return  restore a regstate; SWAPGS when returning to user mode; IRETQ
//   yield_to_scheduler / schedule / run: round robin; a task gives up the CPU inside the kernel
//                     with a yieldstate (callee-saved registers and RFLAGS on its kernel stack)
//                     and is resumed from it, or from its regstate (IRETQ) after preemption.
// The kernel code follows the C calling convention: a system call preserves the user's
// callee-saved registers (RBX RBP R12–R15) by never changing them, except across a yield, whose
// yieldstate saves them; the SYSRETQ path therefore restores only the caller-saved ones (as
// Linux's syscall fast path did).
import { Code as C, Register as R, abs, mem, rip, sym, type Section } from "../../guest/index.ts";
import { CPU, PERCPU, PROC, PROCS, PROC_SIZE, REG, STATE, STUBS, STUB_STRIDE, SYSCALL_MARK, TIMER_PERIOD, TIMER_VECTOR, TSS, USER_CS, USER_SS } from "./layout.ts";

/** The deliberate bugs of the broken variants (variants.ts). */
export interface KernelBugs {
  /** The SYSRETQ path does not SWAPGS back to the user's GS. */
  readonly missingSwapgs?: boolean;
  /** yield_to_scheduler does not save (and resume does not restore) R12. */
  readonly yieldLosesR12?: boolean;
  /** run() does not update TSS.RSP0 for the task it switches to. */
  readonly staleRsp0?: boolean;
  /** SYSRETQ even when the return RIP is not canonical. */
  readonly sysretAlways?: boolean;
}

const MSR = { efer: 0xc0000080, star: 0xc0000081, lstar: 0xc0000082, fmask: 0xc0000084, gsBase: 0xc0000101, kernelGsBase: 0xc0000102 };
const GPRS = [R.RAX, R.RBX, R.RCX, R.RDX, R.RSI, R.RDI, R.RBP, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];
const gs = (offset: bigint) => abs(offset, R.GS);
/** [base + offset]. A displacement beyond a byte is given as iced-x86's 64-bit-mode size 8 (a
 *  sign-extended disp32): guest/'s mem() says 4, which iced's encoder rejects in 64-bit code. */
const at = (base: number, offset: bigint) => {
  const m = mem(base, offset);
  return m.displacementSize === 4 ? { ...m, displacementSize: 8 as const } : m;
};
const NPROC = 5;
const PROCS_END = PROCS + PROC_SIZE * BigInt(NPROC);

function pushGprs(s: Section): void {
  for (const r of GPRS) s.emit(C.Push_r64, r);
}

function popGprs(s: Section): void {
  for (const r of [...GPRS].reverse()) s.emit(C.Pop_r64, r);
}

/** wrmsr of a 32-bit value (EDX = 0). */
function wrmsr(s: Section, msr: number, low: number | ReturnType<typeof sym>, high = 0): void {
  s.emit(C.Mov_r32_imm32, R.ECX, msr).emit(C.Mov_r32_imm32, R.EAX, low).emit(C.Mov_r32_imm32, R.EDX, high).emit(C.Wrmsr);
}

/** Prints the NUL-terminated string at `label` on the console (clobbers RAX, RSI). */
function print(s: Section, label: string): void {
  s.emit(C.Lea_r64_m, R.RSI, rip(label)).emit(C.Call_rel32_64, "puts");
}

export function kernelCode(s: Section, bugs: KernelBugs, star: bigint): void {
  // ---- Boot: the loader's long-mode state, IF = 0, on the boot stack.
  s.label("kernel_start");
  s.emit(C.Mov_r32_imm32, R.ECX, MSR.efer).emit(C.Rdmsr).emit(C.Or_rm32_imm8, R.EAX, 1).emit(C.Wrmsr); // EFER.SCE
  wrmsr(s, MSR.star, 0, Number(star >> 32n));
  wrmsr(s, MSR.lstar, sym("syscall_entry"));
  wrmsr(s, MSR.fmask, 0x47700); // SYSCALL clears IF TF DF AC NT
  wrmsr(s, MSR.gsBase, Number(PERCPU)); // the kernel's GS: per-CPU data
  wrmsr(s, MSR.kernelGsBase, 0); // the user's GS, swapped in on the way out
  print(s, "banner");
  s.emit(C.Mov_r32_imm32, R.EAX, TIMER_VECTOR).emit(C.Out_imm8_EAX, 0xe4, R.EAX);
  s.emit(C.Mov_r32_imm32, R.EAX, TIMER_PERIOD).emit(C.Out_imm8_EAX, 0xe0, R.EAX);
  s.emit(C.Jmp_rel32_64, "enter_scheduler");

  // ---- SYSCALL: RCX = user RIP, R11 = user RFLAGS; RSP and GS are still the user's.
  s.label("syscall_entry");
  s.emit(C.Swapgs);
  s.emit(C.Mov_rm64_r64, gs(CPU.userRsp), R.RSP);
  s.emit(C.Mov_r64_rm64, R.RSP, gs(CPU.kstackTop));
  s.emit(C.Pushq_imm8, USER_SS).emit(C.Push_rm64, gs(CPU.userRsp)).emit(C.Push_r64, R.R11).emit(C.Pushq_imm8, USER_CS).emit(C.Push_r64, R.RCX);
  s.emit(C.Pushq_imm8, 0).emit(C.Pushq_imm32, SYSCALL_MARK);
  pushGprs(s);
  // Dispatch on RAX; arguments in RDI, RSI. Only caller-saved registers are used below.
  s.emit(C.Cmp_rm64_imm8, R.RAX, 1).emit(C.Je_rel32_64, "sys_getpid");
  s.emit(C.Cmp_rm64_imm8, R.RAX, 2).emit(C.Je_rel32_64, "sys_yield");
  s.emit(C.Cmp_rm64_imm8, R.RAX, 3).emit(C.Je_rel32_64, "sys_write");
  s.emit(C.Cmp_rm64_imm8, R.RAX, 4).emit(C.Je_rel32_64, "sys_exit");
  s.emit(C.Cmp_rm64_imm8, R.RAX, 5).emit(C.Je_rel32_64, "sys_sleep");
  s.emit(C.Mov_rm64_imm32, R.RAX, -1).emit(C.Jmp_rel32_64, "syscall_return");

  s.label("sys_getpid");
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_r64_rm64, R.RAX, at(R.RAX, PROC.pid)).emit(C.Jmp_rel32_64, "syscall_return");

  s.label("sys_yield");
  s.emit(C.Mov_r64_rm64, R.RDI, gs(CPU.current)).emit(C.Call_rel32_64, "yield_to_scheduler");
  s.emit(C.Xor_r32_rm32, R.EAX, R.EAX).emit(C.Jmp_rel32_64, "syscall_return");

  // write(buf, len): the buffer must lie in the user's pages [0x400000, 0x600000), len ≤ 256.
  s.label("sys_write");
  s.emit(C.Mov_r64_imm64, R.RAX, -1n);
  s.emit(C.Cmp_rm64_imm32, R.RSI, 256).emit(C.Ja_rel32_64, "syscall_return");
  s.emit(C.Cmp_rm64_imm32, R.RDI, 0x400000).emit(C.Jb_rel32_64, "syscall_return");
  s.emit(C.Lea_r64_m, R.RDX, mem(R.RDI, 0n, R.None, R.RSI, 1));
  s.emit(C.Cmp_rm64_imm32, R.RDX, 0x600000).emit(C.Ja_rel32_64, "syscall_return");
  s.emit(C.Mov_r64_rm64, R.RDX, R.RSI); // the result
  s.emit(C.Test_rm64_r64, R.RSI, R.RSI).emit(C.Je_rel32_64, "write_done");
  s.label("write_loop");
  s.emit(C.Movzx_r32_rm8, R.EAX, mem(R.RDI)).emit(C.Out_imm8_AL, 0xe9, R.AL);
  s.emit(C.Inc_rm64, R.RDI).emit(C.Dec_rm64, R.RSI).emit(C.Jne_rel32_64, "write_loop");
  s.label("write_done");
  s.emit(C.Mov_r64_rm64, R.RAX, R.RDX).emit(C.Jmp_rel32_64, "syscall_return");

  s.label("sys_exit");
  s.emit(C.Mov_r64_rm64, R.RDI, gs(CPU.current)).emit(C.Mov_rm64_imm32, at(R.RDI, PROC.state), STATE.exited);
  print(s, "msg_process");
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_r64_rm64, R.RAX, at(R.RAX, PROC.pid)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_exited");
  s.emit(C.Jmp_rel32_64, "enter_scheduler");

  s.label("sys_sleep");
  s.emit(C.Mov_r64_rm64, R.RDX, gs(CPU.ticks)).emit(C.Add_r64_rm64, R.RDX, R.RDI);
  s.emit(C.Mov_r64_rm64, R.RDI, gs(CPU.current));
  s.emit(C.Mov_rm64_r64, at(R.RDI, PROC.wake), R.RDX).emit(C.Mov_rm64_imm32, at(R.RDI, PROC.state), STATE.sleeping);
  s.emit(C.Call_rel32_64, "yield_to_scheduler");
  s.emit(C.Xor_r32_rm32, R.EAX, R.EAX).emit(C.Jmp_rel32_64, "syscall_return");

  // RAX = the result; RSP = the regstate. SYSRETQ only when it is safe.
  s.label("syscall_return");
  s.emit(C.Mov_rm64_r64, at(R.RSP, REG.rax), R.RAX);
  if (bugs.sysretAlways !== true) {
    // A non-canonical RIP would make SYSRETQ fault in ring 0 with the user's RSP loaded (Intel).
    s.emit(C.Mov_r64_rm64, R.RCX, at(R.RSP, REG.rip)).emit(C.Shr_rm64_imm8, R.RCX, 47).emit(C.Jne_rel32_64, "exception_return");
    s.emit(C.Test_rm64_imm32, at(R.RSP, REG.rflags), 0x10100).emit(C.Jne_rel32_64, "exception_return"); // RF, TF
  }
  for (const [r, off] of [[R.RDX, REG.rdx], [R.RSI, REG.rsi], [R.RDI, REG.rdi], [R.R8, REG.r8], [R.R9, REG.r9], [R.R10, REG.r10]] as const) s.emit(C.Mov_r64_rm64, r, at(R.RSP, off));
  s.emit(C.Mov_r64_rm64, R.RCX, at(R.RSP, REG.rip)).emit(C.Mov_r64_rm64, R.R11, at(R.RSP, REG.rflags));
  s.emit(C.Mov_r64_rm64, R.RSP, at(R.RSP, REG.rsp)); // the user stack from here on
  if (bugs.missingSwapgs !== true) s.emit(C.Swapgs);
  s.label("sysretq_to_user").emit(C.Sysretq);

  // ---- Exceptions and interrupts.
  s.label("exception_entry");
  s.emit(C.Cld);
  pushGprs(s);
  s.emit(C.Test_rm8_imm8, at(R.RSP, REG.cs), 3).emit(C.Jne_rel8_64, "entry_swapgs");
  // From kernel mode GS is the kernel's, unless IRETQ to user mode faulted: GS was already swapped.
  s.emit(C.Lea_r64_m, R.RAX, rip("iretq_to_user"));
  s.emit(C.Cmp_rm64_r64, at(R.RSP, REG.rip), R.RAX).emit(C.Jne_rel8_64, "entry_dispatch");
  s.label("entry_swapgs").emit(C.Swapgs);
  s.label("entry_dispatch");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.vector));
  s.emit(C.Cmp_rm64_imm8, R.RAX, TIMER_VECTOR).emit(C.Je_rel32_64, "timer_interrupt");
  s.emit(C.Cmp_rm64_imm8, R.RAX, 2).emit(C.Je_rel32_64, "exception_return"); // NMI: nothing to do
  s.emit(C.Test_rm8_imm8, at(R.RSP, REG.cs), 3).emit(C.Jne_rel32_64, "user_fault");
  s.emit(C.Lea_r64_m, R.RAX, rip("iretq_to_user"));
  s.emit(C.Cmp_rm64_r64, at(R.RSP, REG.rip), R.RAX).emit(C.Je_rel32_64, "bad_iret");
  // Anything else in kernel mode is a kernel bug.
  print(s, "msg_panic");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.vector)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_at");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.rip)).emit(C.Call_rel32_64, "print_hex");
  print(s, "newline");
  s.emit(C.Mov_r32_imm32, R.EAX, 0xdead).emit(C.Out_imm8_EAX, 0xf4, R.EAX);
  s.label("panic_halt").emit(C.Cli).emit(C.Hlt).emit(C.Jmp_rel8_64, "panic_halt");

  s.label("timer_interrupt");
  s.emit(C.Inc_rm64, gs(CPU.ticks));
  s.emit(C.Mov_r64_rm64, R.RDX, gs(CPU.ticks));
  s.emit(C.Mov_r32_imm32, R.EAX, Number(PROCS));
  s.label("wake_loop");
  s.emit(C.Cmp_rm64_imm8, at(R.RAX, PROC.state), STATE.sleeping).emit(C.Jne_rel8_64, "wake_next");
  s.emit(C.Cmp_r64_rm64, R.RDX, at(R.RAX, PROC.wake)).emit(C.Jb_rel8_64, "wake_next");
  s.emit(C.Mov_rm64_imm32, at(R.RAX, PROC.state), STATE.runnable);
  s.label("wake_next");
  s.emit(C.Add_rm64_imm8, R.RAX, Number(PROC_SIZE)).emit(C.Cmp_rm64_imm32, R.RAX, Number(PROCS_END)).emit(C.Jb_rel8_64, "wake_loop");
  s.emit(C.Out_imm8_EAX, 0xec, R.EAX); // EOI: the timer counts again
  s.emit(C.Test_rm8_imm8, at(R.RSP, REG.cs), 3).emit(C.Je_rel32_64, "exception_return"); // the idle loop
  // Preempt the task: it resumes later from this regstate.
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_rm64_r64, at(R.RAX, PROC.regs), R.RSP).emit(C.Mov_rm64_imm32, at(R.RAX, PROC.yields), 0);
  s.emit(C.Jmp_rel32_64, "enter_scheduler");

  s.label("user_fault");
  print(s, "msg_process");
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_r64_rm64, R.RAX, at(R.RAX, PROC.pid)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_killed");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.vector)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_at");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.rip)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_cr2");
  s.emit(C.Mov_r64_cr, R.RAX, R.CR2).emit(C.Call_rel32_64, "print_hex");
  print(s, "newline");
  s.emit(C.Jmp_rel8_64, "kill_current");

  // IRETQ refused the task's frame (a non-canonical RIP): the task's fault, not the kernel's.
  s.label("bad_iret");
  print(s, "msg_process");
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_r64_rm64, R.RAX, at(R.RAX, PROC.pid)).emit(C.Call_rel32_64, "print_hex");
  print(s, "msg_bad_return");
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.RSP, REG.rsp)).emit(C.Mov_r64_rm64, R.RAX, mem(R.RAX)).emit(C.Call_rel32_64, "print_hex");
  print(s, "newline");
  s.label("kill_current");
  s.emit(C.Mov_r64_rm64, R.RAX, gs(CPU.current)).emit(C.Mov_rm64_imm32, at(R.RAX, PROC.state), STATE.exited);
  s.emit(C.Jmp_rel32_64, "enter_scheduler");

  s.label("exception_return");
  s.emit(C.Test_rm8_imm8, at(R.RSP, REG.cs), 3).emit(C.Je_rel8_64, "return_to_kernel");
  popGprs(s);
  s.emit(C.Add_rm64_imm8, R.RSP, 16).emit(C.Swapgs);
  s.label("iretq_to_user").emit(C.Iretq);
  s.label("return_to_kernel");
  popGprs(s);
  s.emit(C.Add_rm64_imm8, R.RSP, 16).emit(C.Iretq);

  // ---- Context switch.
  // yield_to_scheduler(RDI = proc): the yieldstate (callee-saved registers, RFLAGS, the return
  // address) on this kernel stack; resumed by run() as if the call returned.
  const saved = bugs.yieldLosesR12 === true ? [R.RBP, R.RBX, R.R13, R.R14, R.R15] : [R.RBP, R.RBX, R.R12, R.R13, R.R14, R.R15];
  s.label("yield_to_scheduler");
  s.emit(C.Pushfq);
  for (const r of saved) s.emit(C.Push_r64, r);
  s.emit(C.Mov_rm64_r64, at(R.RDI, PROC.yields), R.RSP);
  s.label("enter_scheduler");
  s.emit(C.Mov_r64_rm64, R.RSP, gs(CPU.schedStack));

  // Round robin from the task after the current one. R12 walks the table, R13 counts.
  s.label("schedule");
  s.emit(C.Mov_r64_rm64, R.R12, gs(CPU.current));
  s.emit(C.Mov_r32_imm32, R.R13D, NPROC);
  s.label("schedule_next");
  s.emit(C.Add_rm64_imm8, R.R12, Number(PROC_SIZE)).emit(C.Cmp_rm64_imm32, R.R12, Number(PROCS_END)).emit(C.Jb_rel8_64, "schedule_check");
  s.emit(C.Mov_r32_imm32, R.R12D, Number(PROCS));
  s.label("schedule_check");
  s.emit(C.Cmp_rm64_imm8, at(R.R12, PROC.state), STATE.runnable).emit(C.Je_rel32_64, "run");
  s.emit(C.Dec_rm32, R.R13D).emit(C.Jne_rel8_64, "schedule_next");
  // Nothing runnable: wait for the timer if anyone sleeps, else stop the machine.
  s.emit(C.Mov_r32_imm32, R.EAX, Number(PROCS));
  s.label("any_sleeping");
  s.emit(C.Cmp_rm64_imm8, at(R.RAX, PROC.state), STATE.sleeping).emit(C.Je_rel8_64, "idle");
  s.emit(C.Add_rm64_imm8, R.RAX, Number(PROC_SIZE)).emit(C.Cmp_rm64_imm32, R.RAX, Number(PROCS_END)).emit(C.Jb_rel8_64, "any_sleeping");
  print(s, "msg_halting");
  s.emit(C.Xor_r32_rm32, R.EAX, R.EAX).emit(C.Out_imm8_EAX, 0xf4, R.EAX);
  s.emit(C.Jmp_rel32_64, "panic_halt");
  s.label("idle");
  s.emit(C.Sti).emit(C.Hlt).emit(C.Cli).emit(C.Jmp_rel32_64, "schedule");

  // run(R12 = proc): its address space, its kernel stack for the next entry, then resume it.
  s.label("run");
  s.emit(C.Mov_rm64_r64, gs(CPU.current), R.R12);
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.R12, PROC.kstackTop)).emit(C.Mov_rm64_r64, gs(CPU.kstackTop), R.RAX);
  if (bugs.staleRsp0 !== true) s.emit(C.Mov_rm64_r64, abs(TSS + 4n), R.RAX); // TSS.RSP0
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.R12, PROC.cr3)).emit(C.Mov_cr_r64, R.CR3, R.RAX);
  s.emit(C.Mov_r64_rm64, R.RAX, at(R.R12, PROC.yields)).emit(C.Test_rm64_r64, R.RAX, R.RAX).emit(C.Je_rel8_64, "run_regstate");
  s.emit(C.Mov_rm64_imm32, at(R.R12, PROC.yields), 0).emit(C.Mov_r64_rm64, R.RSP, R.RAX);
  for (const r of [...saved].reverse()) s.emit(C.Pop_r64, r);
  s.emit(C.Popfq).emit(C.Retnq);
  s.label("run_regstate");
  s.emit(C.Mov_r64_rm64, R.RSP, at(R.R12, PROC.regs)).emit(C.Jmp_rel32_64, "exception_return");

  // ---- Console helpers (kernel mode; clobber only caller-saved registers).
  s.label("puts"); // RSI = NUL-terminated string
  s.emit(C.Movzx_r32_rm8, R.EAX, mem(R.RSI)).emit(C.Test_rm8_r8, R.AL, R.AL).emit(C.Je_rel8_64, "puts_done");
  s.emit(C.Out_imm8_AL, 0xe9, R.AL).emit(C.Inc_rm64, R.RSI).emit(C.Jmp_rel8_64, "puts");
  s.label("puts_done").emit(C.Retnq);

  s.label("print_hex"); // RAX = value: "0x" and its hex digits, no leading zeros
  s.emit(C.Mov_r64_rm64, R.RDX, R.RAX);
  s.emit(C.Mov_r32_imm32, R.EAX, 0x30).emit(C.Out_imm8_AL, 0xe9, R.AL).emit(C.Mov_r32_imm32, R.EAX, 0x78).emit(C.Out_imm8_AL, 0xe9, R.AL);
  s.emit(C.Mov_r32_imm32, R.ECX, 60);
  s.label("hex_skip"); // skip leading zero digits, keeping the last one
  s.emit(C.Mov_r64_rm64, R.RAX, R.RDX).emit(C.Shr_rm64_CL, R.RAX, R.CL).emit(C.And_rm32_imm8, R.EAX, 15).emit(C.Jne_rel8_64, "hex_digit");
  s.emit(C.Sub_rm32_imm8, R.ECX, 4).emit(C.Jne_rel8_64, "hex_skip");
  s.label("hex_digit");
  s.emit(C.Mov_r64_rm64, R.RAX, R.RDX).emit(C.Shr_rm64_CL, R.RAX, R.CL).emit(C.And_rm32_imm8, R.EAX, 15);
  s.emit(C.Cmp_rm32_imm8, R.EAX, 10).emit(C.Jb_rel8_64, "hex_decimal").emit(C.Add_rm32_imm8, R.EAX, 0x27);
  s.label("hex_decimal");
  s.emit(C.Add_rm32_imm8, R.EAX, 0x30).emit(C.Out_imm8_AL, 0xe9, R.AL);
  s.emit(C.Sub_rm32_imm8, R.ECX, 4).emit(C.Jns_rel8_64, "hex_digit");
  s.emit(C.Retnq);

  s.label("banner").asciz("ringspec demo kernel: 5 processes, timer every 600 instructions\n");
  s.label("msg_process").asciz("[kernel] process ");
  s.label("msg_exited").asciz(" exited\n");
  s.label("msg_killed").asciz(" killed: exception ");
  s.label("msg_at").asciz(" at rip ");
  s.label("msg_cr2").asciz(", cr2 ");
  s.label("msg_bad_return").asciz(" killed: cannot return to ");
  s.label("msg_panic").asciz("[kernel] PANIC: exception ");
  s.label("msg_halting").asciz("[kernel] all processes done; halting\n");
  s.label("newline").asciz("\n");
}

/** The 256 exception stubs, each exactly 16 bytes at STUBS + 16·vector (the IDT's handlers).
 *  They are padded by hand: their section is far from exception_entry, so every JMP is rel32. */
export function exceptionStubs(s: Section): void {
  const withErrorCode = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
  for (let v = 0; v < 256; v++) {
    s.label(`stub_${v}`);
    let size = 5; // jmp rel32
    if (!withErrorCode.has(v)) {
      s.emit(C.Pushq_imm8, 0);
      size += 2;
    }
    if (v < 128) s.emit(C.Pushq_imm8, v);
    else s.emit(C.Pushq_imm32, v);
    size += v < 128 ? 2 : 5;
    s.emit(C.Jmp_rel32_64, "exception_entry").space(Number(STUB_STRIDE) - size, 0xcc);
  }
}

export { STUBS };
