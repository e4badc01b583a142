// edge: a SYSCALL in the last two bytes of the canonical lower half, so that the return address
// (RCX = 0x800000000000) is not canonical. SYSRETQ must not be used to return there (on Intel
// it faults in ring 0 on the user stack); the kernel returns with IRETQ, whose #GP the kernel
// attributes to this process and kills it.
#include "ulib.h"

int main(void) {
    uprintf("edge: SYSCALL at 0x7ffffffffffe, returning to a non-canonical address\n");
    volatile uint8_t* top = (volatile uint8_t*) 0x7FFFFFFFFFFEUL;   // in this process's stack page
    top[0] = 0x0F;                                                   // syscall
    top[1] = 0x05;
    __asm__ volatile("jmp *%0" : : "r"(top), "a"(SYS_GETPID) : "memory");
    __builtin_unreachable();
}
