#!/bin/sh
# Builds the C kernel: kernel/c/build/kernel.elf (committed, so tests need no compiler), the user
# programs' ELFs (kept for disassembly), and objdump listings of both, from which
# kernel/c/INSTRUCTIONS.md is generated (npm run kernel:instructions).
# Needs gcc and binutils (Debian: apt-get install -y gcc binutils). Run from anywhere.
set -eu
cd "$(dirname "$0")"
mkdir -p build

# The course-style flags: freestanding, no red zone (interrupts push onto the kernel stack),
# general-purpose registers only (no SSE state to save), no PIC, no libc. The rest keep the code
# plain and the build reproducible: no stack protector, no CET (ENDBR64), no unwind tables, no
# loop-to-memset conversion (memset itself is a loop), no build ID.
CFLAGS="-std=gnu11 -O2 -ffreestanding -mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -nostdlib \
  -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -fno-unwind-tables \
  -fno-tree-loop-distribute-patterns -fno-ident -g0 -Wall -Wextra -Werror"
LDFLAGS="-nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,norelro -Wl,--no-warn-rwx-segments"

for prog in syscalls compute fault printer edge; do
  gcc $CFLAGS -T user/user.ld $LDFLAGS -o build/user-$prog.elf user/crt0.S user/$prog.c user/ulib.c
  objcopy -O binary build/user-$prog.elf build/user-$prog.bin
done

gcc $CFLAGS -Isrc -T src/kernel.ld $LDFLAGS -o build/kernel.elf \
  src/entry.S src/kernel.c src/vm.c src/console.c src/lib.c src/programs.S

# Listings: the executable code only (kernel and each user program).
objdump -d --no-show-raw-insn -M att build/kernel.elf > /dev/null   # fails early if objdump is missing
for f in kernel user-syscalls user-compute user-fault user-printer user-edge; do
  objdump -d -w -M att build/$f.elf | sed -e '1,2d' > build/$f.objdump
done

ls -l build/kernel.elf
