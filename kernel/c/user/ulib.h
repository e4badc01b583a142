// ulib.h: what a user program of the C kernel can call. System calls go through SYSCALL with the
// number in RAX and arguments in RDI, RSI, RDX; SYSCALL itself overwrites RCX and R11.
#ifndef ULIB_H
#define ULIB_H
#include <stdint.h>
#include <stddef.h>
#include "../src/kernel.h"

static inline int64_t syscall3(uint64_t n, uint64_t a, uint64_t b, uint64_t c) {
    int64_t ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static inline int sys_getpid(void) { return (int) syscall3(SYS_GETPID, 0, 0, 0); }
static inline void sys_yield(void) { syscall3(SYS_YIELD, 0, 0, 0); }
static inline int64_t sys_write(const void* buf, size_t n) { return syscall3(SYS_WRITE, (uint64_t) buf, n, 0); }
static inline void sys_sleep(uint64_t ticks) { syscall3(SYS_SLEEP, ticks, 0, 0); }
_Noreturn static inline void sys_exit(int status) {
    syscall3(SYS_EXIT, (uint64_t) status, 0, 0);
    __builtin_unreachable();
}

// printf-style output through one write system call: %s %d %x (64-bit hex), %c.
void uprintf(const char* fmt, ...);
int main(void);
#endif
