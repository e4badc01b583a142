// console.c: kernel output on the debug console (port 0xE9, docs/devices.md) and panic.
#include "kernel.h"
#include <stdarg.h>

void console_putc(char c) {
    outb(PORT_DEBUGCON, (uint8_t) c);
}

void console_write(const char* s, size_t n) {
    for (size_t i = 0; i < n; i++)
        console_putc(s[i]);
}

static void put_unsigned(uint64_t v, unsigned base) {
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        console_putc(buf[--n]);
}

// %s %c %d %u %x %p (%p and %x print 64-bit values as 0x...; %d and %u take int).
static void vkprintf(const char* fmt, va_list ap) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            console_putc(*fmt);
            continue;
        }
        switch (*++fmt) {
        case 's': {
            const char* s = va_arg(ap, const char*);
            console_write(s, strlen(s));
            break;
        }
        case 'c':
            console_putc((char) va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                console_putc('-');
                put_unsigned(-(int64_t) v, 10);
            } else
                put_unsigned(v, 10);
            break;
        }
        case 'u':
            put_unsigned(va_arg(ap, unsigned), 10);
            break;
        case 'x':
        case 'p':
            console_write("0x", 2);
            put_unsigned(va_arg(ap, uint64_t), 16);
            break;
        case '%':
            console_putc('%');
            break;
        default:
            return;
        }
    }
}

static struct spinlock console_lock;

void kprintf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    spin_lock(&console_lock);
    vkprintf(fmt, ap);
    spin_unlock(&console_lock);
    va_end(ap);
}

_Noreturn void panic(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    console_write("[kernel] PANIC: ", 16);
    vkprintf(fmt, ap);
    va_end(ap);
    console_putc('\n');
    outl(PORT_DEBUG_EXIT, 0xDEAD);
    for (;;)
        __asm__ volatile("cli; hlt");
}
