// lib.c: the few C library functions the kernel (and GCC's code generation) need.
#include "kernel.h"

// String instructions, as many kernels write them (Linux's memcpy uses REP MOVSB on CPUs with
// fast strings). DF is 0 here: SYSCALL clears it through FMASK and exception_entry executes CLD.
void* memset(void* dst, int c, size_t n) {
    void* d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void* memcpy(void* dst, const void* src, size_t n) {
    void* d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

size_t strlen(const char* s) {
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

// Spinlocks. This kernel runs on one CPU with interrupts off in the kernel, so a lock is never
// contended; it is taken anyway, as kernel code written for several CPUs would.
void spin_lock(struct spinlock* l) {
    while (!__sync_bool_compare_and_swap(&l->locked, 0, 1))
        __builtin_ia32_pause();
}

void spin_unlock(struct spinlock* l) {
    __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

// Bit strings (the page allocator's free map): BTS/BTR on memory, as Linux's set_bit/clear_bit.
void bit_set(uint64_t* words, uint64_t bit) {
    __asm__ volatile("btsq %1, %0" : "+m"(words[bit / 64]) : "r"(bit % 64) : "cc");
}

void bit_clear(uint64_t* words, uint64_t bit) {
    __asm__ volatile("btrq %1, %0" : "+m"(words[bit / 64]) : "r"(bit % 64) : "cc");
}

int bit_test(const uint64_t* words, uint64_t bit) {
    return (words[bit / 64] >> (bit % 64)) & 1;
}
