// syscalls: a system-call-heavy loop (getpid on every iteration, yield on every 8th).
#include "ulib.h"

int main(void) {
    int pid = sys_getpid();
    uprintf("syscalls: pid %d starting\n", pid);
    uint64_t sum = 0;
    for (int i = 0; i < 64; i++) {
        sum += sys_getpid();
        if (i % 8 == 7)
            sys_yield();
    }
    uprintf("syscalls: 64 getpid calls summed to %d\n", (int) sum);
    return sum == (uint64_t) pid * 64 ? 0 : 1;
}
