// compute: a loop with no system calls at all; only the timer takes the CPU away from it.
#include "ulib.h"

int main(void) {
    uprintf("compute: starting\n");
    uint64_t x = 0x9E3779B97F4A7C15UL, sum = 0;
    for (int i = 0; i < 6000; i++) {   // xorshift64: a few instructions per round
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x >> 32;
    }
    uprintf("compute: checksum %x\n", sum);
    return 0;
}
