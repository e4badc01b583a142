// The boot protocol (`ringspec-boot/1`): the long-mode state a kernel starts from, as a
// bootloader would leave it. The model covers IA-32e mode only, so the loader does what a real
// bootloader's trampoline does before jumping to a 64-bit kernel:
//   - a boot GDT (0x08 64-bit code, 0x10 data, both DPL 0) at boot_area;
//   - page tables at boot_area + 0x1000.. that identity-map all of guest memory with 2 MiB
//     supervisor, writable pages (CR0.WP = 1, no user mappings);
//   - CR0 = PE MP ET NE WP PG, CR4 = PAE, EFER = LME LMA; IF = 0; no IDT (IDTR limit 0): any
//     exception before the kernel loads its own IDT ends in a triple fault;
//   - RSP = boot_area + 0x8000 (a 16 KiB stack), RIP = the entry point, RDI = memory size.
// The kernel then installs its own GDT, IDT, TSS and page tables.
import type { ArchState, Segment } from "../../contract/state.ts";
import { DEFAULT_CPU, POWER_UP_REGISTERS, RESET_DEVICES } from "../../contract/state.ts";
import { GPR_NAMES } from "../../contract/schema.ts";
import type { LoaderDescription } from "./description.ts";
import { GuestMemory } from "../../guest/memory.ts";

export const BOOT_CS: Segment = { selector: 0x08, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
export const BOOT_DS: Segment = { selector: 0x10, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
const NULL_SEGMENT: Segment = { selector: 0, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
/** As after reset: a 16-bit busy TSS at base 0 (the kernel loads its own with LTR). */
const RESET_TR: Segment = { selector: 0, base: 0n, limit: 0xffff, type: 11, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 };
const RESET_LDTR: Segment = { selector: 0, base: 0n, limit: 0xffff, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };

export const CR0_BOOT = 0x80010033n; // PG WP NE ET MP PE
export const CR4_BOOT = 0x20n; // PAE
export const EFER_BOOT = 0x500n; // LMA LME

/** Offsets inside the boot area. */
export const BOOT_LAYOUT = { gdt: 0x0000n, pml4: 0x1000n, pdpt: 0x2000n, pd: 0x3000n, stackTop: 0x8000n } as const;

/** Guest physical memory being filled: the guest kit's (page number → 4 KiB). */
export { GuestMemory };

/** Writes the boot GDT and page tables into `memory`; returns the boot state. */
export function bootState(memory: GuestMemory, description: LoaderDescription, entry: bigint): ArchState {
  const area = description.boot_area;
  const size = description.memory_size;
  memory.write64(area + BOOT_LAYOUT.gdt + 0x08n, 0x00af9b000000ffffn);
  memory.write64(area + BOOT_LAYOUT.gdt + 0x10n, 0x00cf93000000ffffn);
  memory.write64(area + BOOT_LAYOUT.pml4, area + BOOT_LAYOUT.pdpt | 0x3n);
  memory.write64(area + BOOT_LAYOUT.pdpt, area + BOOT_LAYOUT.pd | 0x3n);
  for (let address = 0n, i = 0n; address < size; address += 2n << 20n, i++) memory.write64(area + BOOT_LAYOUT.pd + 8n * i, address | 0x83n);

  const gpr = GPR_NAMES.map(() => 0n);
  gpr[4] = area + BOOT_LAYOUT.stackTop; // RSP
  gpr[7] = size; // RDI
  let state: ArchState = {
    gpr, rip: entry, rflags: 0x2n,
    cs: BOOT_CS, ds: BOOT_DS, es: BOOT_DS, ss: BOOT_DS, fs: NULL_SEGMENT, gs: NULL_SEGMENT,
    tr: RESET_TR, ldtr: RESET_LDTR,
    gdtr: { base: area + BOOT_LAYOUT.gdt, limit: 0x17 },
    idtr: { base: 0n, limit: 0 },
    cr0: CR0_BOOT, cr2: 0n, cr3: area + BOOT_LAYOUT.pml4, cr4: CR4_BOOT, cr8: 0n, efer: EFER_BOOT,
    star: 0n, lstar: 0n, cstar: 0n, fmask: 0n, kernelGsBase: 0n,
    ...POWER_UP_REGISTERS,
    memory: memory.pages,
    cpu: DEFAULT_CPU,
    devices: RESET_DEVICES,
  };
  const regs = description.entry?.regs;
  if (regs !== undefined) {
    const gprs = [...state.gpr];
    GPR_NAMES.forEach((name, i) => {
      const v = regs[name];
      if (v !== undefined) gprs[i] = BigInt(v);
    });
    // The description's registers are validated hex text (contract/schema.ts RegsJson).
    state = { ...state, gpr: gprs, rip: regs.rip === undefined ? state.rip : BigInt(regs.rip), rflags: regs.rflags === undefined ? state.rflags : BigInt(regs.rflags) };
  }
  return state;
}
