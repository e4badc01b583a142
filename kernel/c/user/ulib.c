// ulib.c: user-space formatting; each uprintf is one write system call.
#include "ulib.h"
#include <stdarg.h>

struct buffer {
    char text[160];
    size_t n;
};

static void put(struct buffer* b, char c) {
    if (b->n < sizeof b->text)
        b->text[b->n++] = c;
}

static void put_unsigned(struct buffer* b, uint64_t v, unsigned base) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put(b, digits[--n]);
}

void uprintf(const char* fmt, ...) {
    struct buffer b;
    b.n = 0;
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&b, *fmt);
            continue;
        }
        switch (*++fmt) {
        case 's':
            for (const char* s = va_arg(ap, const char*); *s; s++)
                put(&b, *s);
            break;
        case 'c':
            put(&b, (char) va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                put(&b, '-');
                put_unsigned(&b, -(int64_t) v, 10);
            } else
                put_unsigned(&b, v, 10);
            break;
        }
        case 'x':
            put(&b, '0');
            put(&b, 'x');
            put_unsigned(&b, va_arg(ap, uint64_t), 16);
            break;
        default:
            put(&b, *fmt);
            break;
        }
    }
    va_end(ap);
    sys_write(b.text, b.n);
}
