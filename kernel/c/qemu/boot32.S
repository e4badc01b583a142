// boot32.S: a multiboot (v1) trampoline so that QEMU's -kernel can boot the C kernel for
// comparison with ringspec's engines. It does what ringspec's loader does (kernel/loader/boot.ts):
// identity-map guest memory with 2 MiB pages at 0x2000-0x4fff, load a GDT with 0x08 = 64-bit
// code and 0x10 = data, enter long mode, and jump to the kernel's _start with RDI = memory size.
// It also masks the legacy PICs, so that only the timer the kernel programs interrupts it.
#define MEMORY_SIZE 0x400000
#define LOAD_ADDR   0xFF000
#define KERNEL      0x100000

    .code32
    .section .boot, "ax"
    .globl boot32
multiboot_header:
    .long 0x1BADB002
    .long 0x00010002                         // memory info, address fields (a.out kludge)
    .long -(0x1BADB002 + 0x00010002)
    .long multiboot_header                   // header_addr
    .long LOAD_ADDR                          // load_addr
    .long 0                                  // load_end_addr: the whole file
    .long bss_end                            // bss_end_addr
    .long boot32                             // entry_addr

boot32:
    cli
    movb $0xFF, %al
    outb %al, $0x21
    outb %al, $0xA1
    // Page tables: PML4 0x2000 -> PDPT 0x3000 -> PD 0x4000 (2 MiB pages over MEMORY_SIZE).
    movl $0x2000, %edi
    xorl %eax, %eax
    movl $(3 * 1024), %ecx
    rep stosl
    movl $0x3003, 0x2000
    movl $0x4003, 0x3000
    movl $0x4000, %edi
    movl $0x83, %eax
1:  movl %eax, (%edi)
    addl $8, %edi
    addl $0x200000, %eax
    cmpl $(MEMORY_SIZE + 0x83), %eax
    jb 1b
    movl $0x2000, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                          // PAE
    movl %eax, %cr4
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax                         // LME
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax                    // PG WP PE
    movl %eax, %cr0
    lgdt gdtr
    ljmp $0x08, $long_mode

    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq $0x9000, %rsp
    movq $MEMORY_SIZE, %rdi
    movq $KERNEL, %rax
    jmp *%rax

    .p2align 3
gdt:
    .quad 0
    .quad 0x00AF9B000000FFFF
    .quad 0x00CF93000000FFFF
gdtr:
    .word 23
    .long gdt
