// programs.S: the user programs' flat binaries (built by kernel/c/build.sh), linked into the
// kernel image as data. process_create copies each one to its own pages at USER_TEXT.
.macro PROGRAM name
    .section .rodata
    .p2align 12
    .globl user_\name\()_start, user_\name\()_end
user_\name\()_start:
    .incbin "build/user-\name\().bin"
user_\name\()_end:
.endm

PROGRAM syscalls
PROGRAM compute
PROGRAM fault
PROGRAM printer
PROGRAM edge
