#!/bin/sh
# Boots the C kernel on QEMU (qemu-system-x86_64, TCG) for comparison with ringspec's engines:
# the console on stdout, the exit port as QEMU's isa-debug-exit. QEMU has no ringspec timer, so
# this build uses the PIT through the legacy PIC instead (-DQEMU_PIT, kernel/c/src/kernel.c).
# Needs gcc, binutils and qemu-system-x86. Not part of npm test.
set -eu
cd "$(dirname "$0")/.."
./build.sh > /dev/null
mkdir -p build/qemu
# Rebuild the kernel with the PIT timer, as a flat binary.
gcc -std=gnu11 -O2 -ffreestanding -mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -nostdlib \
  -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -fno-unwind-tables \
  -fno-tree-loop-distribute-patterns -DQEMU_PIT -Isrc -T src/kernel.ld -nostdlib -static -no-pie \
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments -o build/qemu/kernel-pit.elf \
  src/entry.S src/kernel.c src/vm.c src/console.c src/lib.c src/programs.S
objcopy -O binary build/qemu/kernel-pit.elf build/qemu/kernel-pit.bin
memsz=$(( $(nm build/qemu/kernel-pit.elf | awk '$3=="kernel_end"{print "0x"$1}') - 0x100000 ))
gcc -c -o build/qemu/boot32.o qemu/boot32.S
objcopy -I binary -O elf64-x86-64 --rename-section .data=.kernel build/qemu/kernel-pit.bin build/qemu/kernel-pit.o
ld -m elf_x86_64 -T qemu/qemu.ld --defsym KERNEL_MEMSZ=$memsz -o build/qemu/image.elf build/qemu/boot32.o build/qemu/kernel-pit.o
objcopy -O binary build/qemu/image.elf build/qemu/image.bin
status=0
timeout 30 qemu-system-x86_64 -kernel build/qemu/image.bin -m 4 -display none -no-reboot -serial none \
  -monitor none -debugcon stdio -device isa-debug-exit,iobase=0xf4,iosize=4 || status=$?
echo "qemu exit status $status (isa-debug-exit: (value << 1) | 1; 1 = the kernel wrote 0)"
