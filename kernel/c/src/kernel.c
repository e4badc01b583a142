// kernel.c: the C kernel's setup, processes, scheduler, system calls and exception handling.
// Entry and exit paths are in entry.S; this file decides what happens in between.
#include "kernel.h"

_Static_assert(__builtin_offsetof(struct cpustate, self) == CPU_SELF, "CPU_SELF");
_Static_assert(__builtin_offsetof(struct cpustate, kstack_top) == CPU_KSTACK_TOP, "CPU_KSTACK_TOP");
_Static_assert(__builtin_offsetof(struct cpustate, user_rsp) == CPU_USER_RSP, "CPU_USER_RSP");
_Static_assert(__builtin_offsetof(struct cpustate, sched_stack_top) == CPU_SCHED_STACK, "CPU_SCHED_STACK");
_Static_assert(__builtin_offsetof(struct cpustate, current) == CPU_CURRENT, "CPU_CURRENT");
_Static_assert(__builtin_offsetof(struct regstate, rax) == REG_RAX, "REG_RAX");
_Static_assert(__builtin_offsetof(struct regstate, vector) == REG_VECTOR, "REG_VECTOR");
_Static_assert(__builtin_offsetof(struct regstate, rip) == REG_RIP, "REG_RIP");
_Static_assert(__builtin_offsetof(struct regstate, cs) == REG_CS, "REG_CS");
_Static_assert(__builtin_offsetof(struct regstate, rflags) == REG_RFLAGS, "REG_RFLAGS");
_Static_assert(__builtin_offsetof(struct regstate, rsp) == REG_RSP, "REG_RSP");
_Static_assert(sizeof(struct regstate) == REGSTATE_SIZE, "REGSTATE_SIZE");

// ---- The structures the CPU reads.
struct __attribute__((packed)) tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};

struct gate {
    uint16_t offset_low, selector;
    uint8_t ist, type_attr;
    uint16_t offset_mid;
    uint32_t offset_high, zero;
};

struct __attribute__((packed)) pseudo_descriptor {
    uint16_t limit;
    uint64_t base;
};

static uint64_t gdt[7];
static struct tss tss;
static struct gate idt[256];
static struct cpustate cpu;

#define STACK(name, size) static uint8_t name[size] __attribute__((aligned(16)))
STACK(sched_stack, 4096);
STACK(df_stack, 4096);      // IST1: #DF always runs on a known-good stack
STACK(nmi_stack, 4096);     // IST2: an NMI may arrive anywhere, even between SWAPGS and SYSRETQ

static struct proc procs[NPROC];
static struct spinlock ptable_lock;     // procs[].state
static uint64_t ticks;
static int next_pid = 1;
extern const uint8_t iretq_to_user[];

static inline struct cpustate* this_cpu(void) {
    struct cpustate* c;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(c));
    return c;
}

// ---- Segments, TSS, IDT, MSRs.
static void segments_init(void) {
    gdt[0] = 0;
    gdt[KERNEL_CS >> 3] = 0x00AF9B000000FFFFUL;          // 64-bit code, DPL 0, accessed
    gdt[KERNEL_DS >> 3] = 0x00CF93000000FFFFUL;          // data, DPL 0
    gdt[USER_DS >> 3]   = 0x00CFF3000000FFFFUL;          // data, DPL 3
    gdt[USER_CS >> 3]   = 0x00AFFB000000FFFFUL;          // 64-bit code, DPL 3
    uint64_t base = (uint64_t) &tss, limit = sizeof tss - 1;
    gdt[TSS_SEL >> 3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89UL << 40)
        | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    gdt[(TSS_SEL >> 3) + 1] = base >> 32;

    tss.rsp[0] = (uint64_t) (sched_stack + sizeof sched_stack);
    tss.ist[0] = (uint64_t) (df_stack + sizeof df_stack);
    tss.ist[1] = (uint64_t) (nmi_stack + sizeof nmi_stack);
    tss.iomap_base = sizeof tss;                          // no I/O bitmap: user IN/OUT is #GP

    struct pseudo_descriptor gdtr = { sizeof gdt - 1, (uint64_t) gdt };
    __asm__ volatile("lgdt %0" : : "m"(gdtr));
    // Reload CS with a far return, then the data segments. Loading a NULL selector into GS
    // clears GS.base (Intel), so GS.base is written after this.
    __asm__ volatile("pushq %0\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "movl %1, %%eax\n\t"
                     "movw %%ax, %%ds\n\t"
                     "movw %%ax, %%es\n\t"
                     "movw %%ax, %%ss\n\t"
                     "xorl %%eax, %%eax\n\t"
                     "movw %%ax, %%fs\n\t"
                     "movw %%ax, %%gs"
                     : : "i"(KERNEL_CS), "i"(KERNEL_DS) : "rax", "memory");
    __asm__ volatile("ltr %w0" : : "r"(TSS_SEL));

    for (int v = 0; v < 256; v++) {
        uint64_t handler = exception_stubs[v];
        idt[v].offset_low = handler & 0xFFFF;
        idt[v].selector = KERNEL_CS;
        idt[v].ist = v == VEC_DF ? 1 : v == VEC_NMI ? 2 : 0;
        idt[v].type_attr = 0x8E;                          // present, DPL 0, 64-bit interrupt gate
        idt[v].offset_mid = (handler >> 16) & 0xFFFF;
        idt[v].offset_high = handler >> 32;
        idt[v].zero = 0;
    }
    idt[3].type_attr = 0xEE;                              // INT3 may be used from user mode
    struct pseudo_descriptor idtr = { sizeof idt - 1, (uint64_t) idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));

    // Per-CPU data: GS.base now; user mode will see it only in KERNEL_GS_BASE.
    cpu.self = &cpu;
    cpu.sched_stack_top = (uintptr_t) (sched_stack + sizeof sched_stack);
    cpu.kstack_top = cpu.sched_stack_top;
    wrmsr(MSR_GS_BASE, (uint64_t) &cpu);
    wrmsr(MSR_KERNEL_GS_BASE, 0);

    wrmsr(MSR_EFER, EFER_LME | EFER_LMA | EFER_SCE);
    wrmsr(MSR_STAR, ((uint64_t) (USER_DS - 8 - 3) << 48) | ((uint64_t) KERNEL_CS << 32));
    wrmsr(MSR_LSTAR, (uint64_t) syscall_entry);
    // SYSCALL clears IF (no interrupt before the stack switch), TF, DF, AC and NT.
    wrmsr(MSR_FMASK, 0x44700);
}

// ---- Processes.
struct program {
    const char* name;
    const uint8_t* start;
    const uint8_t* end;
};
#define PROGRAM(sym) extern const uint8_t sym##_start[], sym##_end[]
PROGRAM(user_syscalls);
PROGRAM(user_compute);
PROGRAM(user_fault);
PROGRAM(user_printer);
PROGRAM(user_edge);
static const struct program programs[] = {
    { "syscalls", user_syscalls_start, user_syscalls_end },
    { "compute", user_compute_start, user_compute_end },
    { "fault", user_fault_start, user_fault_end },
    { "printer", user_printer_start, user_printer_end },
    { "edge", user_edge_start, user_edge_end },
};

#define USER_STACK_PAGE (USER_STACK_TOP)                 // one page: [0x7FFFFFFFF000, 2^47)
#define USER_RSP_INIT   (USER_STACK_TOP + PAGE_SIZE - 256)

static void process_create(const struct program* prog) {
    int pid = __atomic_fetch_add(&next_pid, 1, __ATOMIC_RELAXED);
    if (pid >= NPROC)
        panic("too many processes");
    struct proc* p = &procs[pid];
    p->pid = pid;
    p->name = prog->name;
    p->pagetable = pagetable_new();
    size_t size = prog->end - prog->start;
    for (size_t off = 0; off < size; off += PAGE_SIZE) {
        uint8_t* page = page_alloc();
        size_t n = size - off < PAGE_SIZE ? size - off : PAGE_SIZE;
        memcpy(page, prog->start + off, n);
        if (vm_map(p->pagetable, USER_TEXT + off, (uintptr_t) page, PTE_P | PTE_W | PTE_U) < 0)
            panic("out of memory mapping %s", prog->name);
    }
    uint8_t* stack = page_alloc();
    if (vm_map(p->pagetable, USER_STACK_PAGE, (uintptr_t) stack, PTE_P | PTE_W | PTE_U) < 0)
        panic("out of memory mapping %s's stack", prog->name);

    p->kstack_top = (uintptr_t) page_alloc() + KSTACK_SIZE;
    struct regstate* r = (struct regstate*) (p->kstack_top - sizeof *r);
    memset(r, 0, sizeof *r);
    r->rip = USER_TEXT;
    r->cs = USER_CS;
    r->rflags = RFLAGS_IF | 0x2;
    r->rsp = USER_RSP_INIT;
    r->ss = USER_DS;
    p->regs = r;
    p->yields = 0;
    p->state = P_RUNNABLE;
}

// Makes p the running task: its address space, its kernel stack for the next entry.
_Noreturn static void run(struct proc* p) {
    struct cpustate* c = this_cpu();
    c->current = p;
    c->kstack_top = p->kstack_top;
    tss.rsp[0] = p->kstack_top;
    if (rcr3() != (uintptr_t) p->pagetable)
        lcr3((uintptr_t) p->pagetable);
    if (p->yields) {
        struct yieldstate* ys = p->yields;
        p->yields = 0;
        resume_yieldstate(ys);
    }
    resume_regstate(p->regs);
}

// Ends a process: its address space now, its kernel stack once the scheduler runs (it may be the
// stack this code runs on).
static void process_exit(struct proc* p) {
    spin_lock(&ptable_lock);
    p->state = P_EXITED;
    spin_unlock(&ptable_lock);
    lcr3((uintptr_t) kernel_pagetable);
    pagetable_free(p->pagetable);
    p->pagetable = 0;
}

// Round robin from the task after the last one run. Runs on the scheduler stack with IF = 0;
// when nothing is runnable it waits for the timer with interrupts on.
_Noreturn void schedule(void) {
    struct cpustate* c = this_cpu();
    int last = c->current ? c->current->pid : 0;
    for (;;) {
        int live = 0;
        struct proc* next = 0;
        spin_lock(&ptable_lock);
        for (int i = 1; i <= NPROC; i++) {
            struct proc* p = &procs[(last + i) % NPROC];
            if (p->state == P_EXITED) {           // reap: nothing runs on this stack any more
                page_free((void*) (p->kstack_top - KSTACK_SIZE));
                p->state = P_FREE;
            }
            if (p->state == P_RUNNABLE && !next)
                next = p;
            live += p->state == P_RUNNABLE || p->state == P_SLEEPING;
        }
        spin_unlock(&ptable_lock);
        if (next)
            run(next);
        if (!live)
            shutdown(0);
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    }
}

// ---- System calls.
int sysret_safe(const struct regstate* r) {
    return r->cs == USER_CS && r->ss == USER_DS
        && r->rip < 0x800000000000UL                       // canonical, lower half
        && (r->rflags & (RFLAGS_RF | RFLAGS_TF)) == 0;      // SYSRETQ cannot restore RF; TF traps at once
}

// Copies a user buffer to the console after checking every page is mapped for user mode.
static int64_t sys_write(struct proc* p, uintptr_t buf, uint64_t len) {
    if (len > 4096 || buf + len < buf)
        return -1;
    for (uint64_t i = 0; i < len; i++) {
        uintptr_t va = buf + i;
        if (i == 0 || (va & (PAGE_SIZE - 1)) == 0) {
            uint64_t pte = vm_lookup(p->pagetable, va);
            if (!(pte & PTE_P) || !(pte & PTE_U))
                return -1;
        }
        console_putc(*(const char*) va);
    }
    return len;
}

uint64_t syscall(struct regstate* regs) {
    struct proc* p = this_cpu()->current;
    switch (regs->rax) {
    case SYS_GETPID:
        return p->pid;
    case SYS_YIELD:
        yield_to_scheduler(&p->yields);
        return 0;
    case SYS_WRITE:
        return sys_write(p, regs->rdi, regs->rsi);
    case SYS_EXIT:
        kprintf("[kernel] process %d (%s) exited with status %d\n", p->pid, p->name, (int) regs->rdi);
        process_exit(p);
        enter_scheduler();
    case SYS_SLEEP:
        p->wake_tick = ticks + regs->rdi;
        spin_lock(&ptable_lock);
        p->state = P_SLEEPING;
        spin_unlock(&ptable_lock);
        yield_to_scheduler(&p->yields);
        return 0;
    default:
        return (uint64_t) -1;
    }
}

// ---- Interrupts and exceptions.
static const char* const exception_names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "BOUND range exceeded",
    "invalid opcode", "device not available", "double fault", "coprocessor segment overrun",
    "invalid TSS", "segment not present", "stack fault", "general protection", "page fault",
    "reserved", "x87 error", "alignment check", "machine check", "SIMD error",
    "virtualization", "control protection",
};

#ifndef QEMU_PIT
// The ringspec timer (docs/devices.md): a tick every TIMER_PERIOD retired instructions after the
// EOI, on vector TIMER_VECTOR.
static void timer_init(void) {
    outl(PORT_TIMER_VECTOR, TIMER_VECTOR);
    outl(PORT_TIMER_PERIOD, TIMER_PERIOD);
}
static void timer_eoi(void) {
    outl(PORT_TIMER_EOI, 0);
}
#else
// Only for booting on QEMU (kernel/c/qemu/run.sh), which has no ringspec timer: the legacy PIC
// remapped to vector 32 and the PIT at about 12 kHz.
static void timer_init(void) {
    outb(0x20, 0x11); outb(0xA0, 0x11);        // ICW1: edge, cascade, ICW4 follows
    outb(0x21, TIMER_VECTOR); outb(0xA1, TIMER_VECTOR + 8);
    outb(0x21, 4); outb(0xA1, 2);              // ICW3: slave on IRQ2
    outb(0x21, 1); outb(0xA1, 1);              // ICW4: 8086 mode
    outb(0x21, 0xFE); outb(0xA1, 0xFF);        // IRQ0 only
    outb(0x43, 0x34);                          // PIT channel 0, rate generator
    outb(0x40, 100); outb(0x40, 0);
}
static void timer_eoi(void) {
    outb(0x20, 0x20);
}
#endif

static void timer_tick(void) {
    uint64_t now = __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
    spin_lock(&ptable_lock);
    for (int i = 0; i < NPROC; i++)
        if (procs[i].state == P_SLEEPING && now >= procs[i].wake_tick)
            procs[i].state = P_RUNNABLE;
    spin_unlock(&ptable_lock);
    timer_eoi();
}

void exception(struct regstate* regs) {
    struct proc* p = this_cpu()->current;
    int from_user = (regs->cs & 3) == 3;
    uint64_t v = regs->vector;

    if (v == TIMER_VECTOR) {
        timer_tick();
        if (from_user) {                   // preempt: resume later from this regstate
            p->regs = regs;
            enter_scheduler();
        }
        return;                            // the idle loop: back to it
    }
    if (v == VEC_NMI) {
        kprintf("[kernel] NMI at %p\n", regs->rip);
        return;
    }
    const char* name = v < 32 && exception_names[v] ? exception_names[v] : "unexpected interrupt";
    if (from_user) {
        if (v == VEC_PF)
            kprintf("[kernel] process %d (%s) killed: page fault at %p (%s, %s) rip %p\n", p->pid,
                    p->name, rdcr2(), regs->errcode & 2 ? "write" : "read",
                    regs->errcode & 1 ? "protection" : "not present", regs->rip);
        else
            kprintf("[kernel] process %d (%s) killed: %s (vector %d, error code %p) rip %p\n", p->pid,
                    p->name, name, (int) v, regs->errcode, regs->rip);
        process_exit(p);
        enter_scheduler();
    }
    if (v == VEC_GP && regs->rip == (uint64_t) iretq_to_user) {
        // IRETQ refused the task's return frame (e.g. a non-canonical RIP): the fault is the
        // task's, not the kernel's. entry.S already swapped GS back to the kernel's.
        struct regstate* bad = (struct regstate*) (regs->rsp - REG_RIP);
        kprintf("[kernel] process %d (%s) killed: cannot return to %p (not canonical)\n", p->pid,
                p->name, bad->rip);
        process_exit(p);
        enter_scheduler();
    }
    panic("%s in the kernel (vector %d, error code %p) at rip %p, cr2 %p", name, (int) v,
          regs->errcode, regs->rip, rdcr2());
}

_Noreturn void shutdown(uint32_t code) {
    kprintf("[kernel] halting: exit code %d after %d ticks\n", (int) code, (int) ticks);
    outl(PORT_DEBUG_EXIT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

// ---- Boot.
extern uint8_t kernel_end[];

void kernel_main(uint64_t memory_size) {
    kprintf("ringspec C kernel: %d KiB of memory\n", (int) (memory_size >> 10));
    if (memory_size > (1UL << 30) || memory_size < (1UL << 21))
        panic("memory size %p outside [2 MiB, 1 GiB]", memory_size);
    segments_init();
    page_allocator_init((uintptr_t) kernel_end, memory_size);
    kernel_pagetable_init(memory_size);
    lcr3((uintptr_t) kernel_pagetable);

    int n = sizeof programs / sizeof programs[0];
    for (int i = 0; i < n; i++)
        process_create(&programs[i]);
    kprintf("[kernel] %d processes; timer every %d instructions\n", n, TIMER_PERIOD);

    timer_init();
    enter_scheduler();
}
