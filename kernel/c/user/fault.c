// fault: writes to an unmapped page; the kernel kills it with a message.
#include "ulib.h"

int main(void) {
    uprintf("fault: writing to 0xdead000, which is not mapped\n");
    *(volatile int*) 0xdead000 = 1;
    uprintf("fault: still alive (the kernel should have killed this process)\n");
    return 1;
}
