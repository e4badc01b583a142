// printer: prints a few lines, sleeping two timer ticks between them.
#include "ulib.h"

int main(void) {
    for (int i = 1; i <= 3; i++) {
        uprintf("printer: line %d of 3\n", i);
        sys_sleep(2);
    }
    return 0;
}
