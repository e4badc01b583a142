// entry.S: every way into and out of the C kernel, in assembly (the rest is C).
//   _start            boot: the loader's long-mode state -> kernel_main
//   syscall_entry     SYSCALL from user mode; back with SYSRETQ when safe, IRETQ otherwise
//   vector_stub_N     one per IDT vector (0-255): push an error code if the CPU did not, then
//   exception_entry   build a struct regstate and call exception()
//   exception_return  restore a regstate and IRETQ (SWAPGS first when returning to user mode)
//   yield_to_scheduler / resume_yieldstate / resume_regstate / enter_scheduler: context switch
//
// GS discipline (SWAPGS parity): in user mode GS.base is the user's and KERNEL_GS_BASE holds the
// per-CPU pointer; every entry from user mode executes SWAPGS before touching %gs, every exit to
// user mode executes SWAPGS as the last thing before SYSRETQ/IRETQ.
#include "kernel.h"

.macro PUSH_GPRS
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.endm

.macro POP_GPRS
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
.endm

// ---------------------------------------------------------------------------------------------
    .section .text.boot, "ax"
    .globl _start
_start:
    // The loader's boot state (kernel/loader): 64-bit mode, identity-mapped memory, IF = 0,
    // RDI = guest memory size. Move to the kernel's boot stack and enter C.
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    call kernel_main
1:  hlt
    jmp 1b

// ---------------------------------------------------------------------------------------------
    .text
    .globl syscall_entry
syscall_entry:
    // SYSCALL left RCX = user RIP, R11 = user RFLAGS, and changed neither RSP nor GS.
    swapgs
    movq %rsp, %gs:CPU_USER_RSP          // the user RSP, until it is in the regstate
    movq %gs:CPU_KSTACK_TOP, %rsp        // the task's kernel stack (= TSS.RSP0)
    pushq $USER_DS                        // build the frame an interrupt would have pushed
    pushq %gs:CPU_USER_RSP
    pushq %r11
    pushq $USER_CS
    pushq %rcx
    pushq $0                              // error code
    pushq $VEC_SYSCALL                    // "vector": this regstate came from SYSCALL
    PUSH_GPRS
    movq %rsp, %rdi
    call syscall
    movq %rax, REG_RAX(%rsp)              // the result
    // SYSRETQ cannot return to a non-canonical RIP (Intel: #GP in ring 0, on the user stack)
    // nor restore RF/TF sanely: let C decide, and take the IRETQ path otherwise.
    movq %rsp, %rdi
    call sysret_safe
    testl %eax, %eax
    jz exception_return
    POP_GPRS
    movq REG_RIP - REG_VECTOR(%rsp), %rcx     // RCX and R11 as SYSRETQ defines them
    movq REG_RFLAGS - REG_VECTOR(%rsp), %r11
    movq REG_RSP - REG_VECTOR(%rsp), %rsp     // the user stack from here on
    swapgs
    sysretq

// ---------------------------------------------------------------------------------------------
// One stub per vector. The CPU pushes an error code for 8, 10-14, 17, 21, 29 and 30; the other
// stubs push a 0 so that every regstate has the same shape.
.macro VECTOR_STUB n
    .p2align 4
vector_stub_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp exception_entry
.endm

.macro STUB_ADDRESS n
    .quad vector_stub_\n
.endm

    .altmacro
    .set vector, 0
    .rept 256
    VECTOR_STUB %vector
    .set vector, vector + 1
    .endr

exception_entry:
    cld                                   // the C code assumes DF = 0; user mode may have set it
    PUSH_GPRS
    testb $3, REG_CS(%rsp)
    jnz 1f                                // from user mode: GS is the user's
    // From kernel mode GS is already the kernel's -- except when IRETQ to user mode faulted
    // (a bad return frame): exception_return had already swapped GS back to the user's.
    leaq iretq_to_user(%rip), %rax
    cmpq %rax, REG_RIP(%rsp)
    jne 2f
1:  swapgs
2:  movq %rsp, %rdi
    call exception
    .globl exception_return
exception_return:
    testb $3, REG_CS(%rsp)
    jz 1f
    POP_GPRS
    addq $16, %rsp                        // vector and error code
    swapgs
    .globl iretq_to_user
iretq_to_user:
    iretq
1:  POP_GPRS
    addq $16, %rsp
    iretq

// ---------------------------------------------------------------------------------------------
// void yield_to_scheduler(struct yieldstate** save): saves the callee-saved registers and RFLAGS
// on this kernel stack (a struct yieldstate), stores its address in *save, and runs the
// scheduler. resume_yieldstate later returns from this call as if nothing happened.
    .globl yield_to_scheduler
yield_to_scheduler:
    pushfq
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    jmp enter_scheduler

    .globl resume_yieldstate
resume_yieldstate:
    movq %rdi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    popfq
    ret

    .globl resume_regstate
resume_regstate:
    movq %rdi, %rsp
    jmp exception_return

    .globl enter_scheduler
enter_scheduler:
    movq %gs:CPU_SCHED_STACK, %rsp
    call schedule
1:  hlt
    jmp 1b

// ---------------------------------------------------------------------------------------------
    .section .bss
    .p2align 4
boot_stack:
    .space 4096
boot_stack_top:

    .section .rodata
    .p2align 3
    .globl exception_stubs
exception_stubs:
    .set vector, 0
    .rept 256
    STUB_ADDRESS %vector
    .set vector, vector + 1
    .endr
