// kernel.h: definitions shared by the C kernel's C files and its assembly entry code (entry.S).
// The kernel is small on purpose, in the style of a course's starting code (WeensyOS, Chickadee):
// every structure the hardware reads (GDT, IDT, TSS, page tables) is built here, in plain C.
#ifndef KERNEL_H
#define KERNEL_H

// ---- Segment selectors (the GDT is built in kernel.c). SYSCALL loads CS = STAR[47:32] and
// SS = STAR[47:32] + 8; SYSRETQ loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16 (RPL 3).
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS   0x1b   // GDT entry 3, RPL 3
#define USER_CS   0x23   // GDT entry 4, RPL 3
#define TSS_SEL   0x28   // GDT entries 5-6 (a 16-byte system descriptor)

// ---- Devices (docs/devices.md): port I/O only.
#define PORT_DEBUGCON     0xE9   // OUT: one console byte
#define PORT_DEBUG_EXIT   0xF4   // OUT: the run's result; the machine stops
#define PORT_TIMER_PERIOD 0xE0   // 32-bit: retired instructions between ticks (0 = off)
#define PORT_TIMER_VECTOR 0xE4   // 32-bit: the vector a tick raises
#define PORT_TIMER_EOI    0xEC   // 32-bit write: end of interrupt (the timer counts again)

#define TIMER_VECTOR      32
#define TIMER_PERIOD      4000   // retired instructions between ticks

// ---- Exception vectors the kernel names.
#define VEC_NMI  2
#define VEC_DF   8
#define VEC_GP   13
#define VEC_PF   14
// Not a hardware vector: marks a regstate built by syscall_entry.
#define VEC_SYSCALL 256

// ---- Per-CPU data, reached through GS (GS.base in the kernel, KERNEL_GS_BASE in user mode).
// Offsets are used by entry.S; kernel.c checks them with _Static_assert.
#define CPU_SELF        0    // struct cpustate* (so C can get a plain pointer)
#define CPU_KSTACK_TOP  8    // the running task's kernel stack top (= TSS.RSP0)
#define CPU_USER_RSP    16   // syscall_entry's scratch slot for the user RSP
#define CPU_SCHED_STACK 24   // the scheduler's own stack top
#define CPU_CURRENT     32   // struct proc* running (or last run)

// ---- struct regstate (the pt_regs frame): byte offsets used by entry.S.
#define REG_RAX     (14 * 8)
#define REG_VECTOR  (15 * 8)
#define REG_ERRCODE (16 * 8)
#define REG_RIP     (17 * 8)
#define REG_CS      (18 * 8)
#define REG_RFLAGS  (19 * 8)
#define REG_RSP     (20 * 8)
#define REG_SS      (21 * 8)
#define REGSTATE_SIZE (22 * 8)

// ---- Memory map (physical addresses; the kernel identity-maps all of guest memory).
#define PAGE_SIZE        4096
#define USER_TEXT        0x40000000UL       // 1 GiB: where user programs are linked
#define USER_STACK_TOP   0x7FFFFFFFF000UL   // just below the top of the canonical lower half
#define KSTACK_SIZE      PAGE_SIZE

// Page-table entry bits.
#define PTE_P  0x1UL
#define PTE_W  0x2UL
#define PTE_U  0x4UL
#define PTE_PS 0x80UL
#define PTE_ADDR 0x000FFFFFFFFFF000UL

#define RFLAGS_IF (1UL << 9)
#define RFLAGS_TF (1UL << 8)
#define RFLAGS_RF (1UL << 16)

// Syscall numbers (RAX); arguments in RDI, RSI, RDX; the result in RAX.
#define SYS_GETPID 1
#define SYS_YIELD  2
#define SYS_WRITE  3
#define SYS_EXIT   4
#define SYS_SLEEP  5

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <stddef.h>

// The register file of a task that entered the kernel: GPRs pushed by entry.S, then the vector
// and error code, then the frame the CPU pushed (or syscall_entry built): RIP CS RFLAGS RSP SS.
struct regstate {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, errcode;
    uint64_t rip, cs, rflags, rsp, ss;
};

// What proc_yield leaves on the kernel stack: callee-saved registers, RFLAGS, the return address.
struct yieldstate {
    uint64_t r15, r14, r13, r12, rbx, rbp, rflags, rip;
};

enum proc_state { P_FREE = 0, P_RUNNABLE, P_SLEEPING, P_EXITED };

struct proc {
    int pid;
    enum proc_state state;
    uint64_t* pagetable;          // PML4 (physical = virtual in the kernel)
    uintptr_t kstack_top;
    struct regstate* regs;        // set when the task entered through an interrupt or fault
    struct yieldstate* yields;    // set when the task gave up the CPU inside the kernel
    uint64_t wake_tick;
    const char* name;
};

struct cpustate {
    struct cpustate* self;
    uintptr_t kstack_top;
    uint64_t user_rsp;
    uintptr_t sched_stack_top;
    struct proc* current;
};

#define NPROC 8

// entry.S
void yield_to_scheduler(struct yieldstate** save);        // saves a yieldstate, runs the scheduler
_Noreturn void resume_yieldstate(struct yieldstate* ys);  // back into proc_yield's caller
_Noreturn void resume_regstate(struct regstate* regs);    // back to wherever regs says (IRETQ)
_Noreturn void enter_scheduler(void);                     // switch to the scheduler stack
extern const uint64_t exception_stubs[256];
void syscall_entry(void);

// kernel.c
_Noreturn void schedule(void);
uint64_t syscall(struct regstate* regs);
void exception(struct regstate* regs);
int sysret_safe(const struct regstate* regs);
_Noreturn void shutdown(uint32_t code);

// vm.c
void* page_alloc(void);
void page_free(void* page);
void page_allocator_init(uintptr_t start, uintptr_t end);
uint64_t* pagetable_new(void);
void pagetable_free(uint64_t* pml4);
int vm_map(uint64_t* pml4, uintptr_t va, uintptr_t pa, uint64_t perm);
uint64_t vm_lookup(const uint64_t* pml4, uintptr_t va);  // PTE (with access bits ANDed), or 0
void kernel_pagetable_init(uintptr_t memory_size);
extern uint64_t* kernel_pagetable;

// console.c
void console_putc(char c);
void console_write(const char* s, size_t n);
void kprintf(const char* fmt, ...);
_Noreturn void panic(const char* fmt, ...);

// lib.c
void* memset(void* dst, int c, size_t n);
void* memcpy(void* dst, const void* src, size_t n);
size_t strlen(const char* s);
struct spinlock {
    int locked;
};
void spin_lock(struct spinlock* l);
void spin_unlock(struct spinlock* l);
void bit_set(uint64_t* words, uint64_t bit);
void bit_clear(uint64_t* words, uint64_t bit);
int bit_test(const uint64_t* words, uint64_t bit);

// ---- Small wrappers for privileged instructions.
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline void wrmsr(uint32_t msr, uint64_t v) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t) v), "d"((uint32_t) (v >> 32)));
}
static inline uint64_t rdcr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline void lcr3(uintptr_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline uintptr_t rcr3(void) { uintptr_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }

#define MSR_EFER           0xC0000080
#define MSR_STAR           0xC0000081
#define MSR_LSTAR          0xC0000082
#define MSR_FMASK          0xC0000084
#define MSR_GS_BASE        0xC0000101
#define MSR_KERNEL_GS_BASE 0xC0000102
#define EFER_SCE 0x1UL
#define EFER_LME 0x100UL
#define EFER_LMA 0x400UL
#define EFER_NXE 0x800UL

#endif
#endif
