// crt0.S: a user program starts here (USER_TEXT), with RSP just below its stack's top.
    .section .text.start, "ax"
    .globl _start
_start:
    call main
    movl %eax, %edi
    movl $4, %eax          // SYS_EXIT
    syscall
1:  jmp 1b
