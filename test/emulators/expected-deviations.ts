// Where Debian's QEMU 7.2 (TCG, -cpu max,vendor=GenuineIntel) and Bochs 2.7 (corei7_icelake_u)
// differ from the vectors, and why: every vector result on an emulator must be a pass or exactly
// the differences listed here (vectors.test.ts). `recorded` names the entry of
// docs/reference/recorded-deviations.md the deviation rediscovers; entries without it are new.
// (The deviation tables `ringspec conform` will produce supersede this list.)

export interface Deviation {
  readonly id: string;
  readonly what: string;
  /** The recorded-deviations.md line it matches, or undefined when the list lacks it. */
  readonly recorded?: string;
}

export interface ExpectedFailure {
  /** Each deviation with the exact fields it makes differ in this vector. */
  readonly deviations: readonly (readonly [string, readonly string[]])[];
  /** For a case the engine cannot run at all: the error's text. */
  readonly error?: RegExp;
}

export const QEMU_DEVIATIONS: readonly Deviation[] = [
  { id: "rf-fault-frame", what: "RF is not set in the RFLAGS image pushed for a fault (byte 2 of the pushed RFLAGS)", recorded: "Never sets RF in the RFLAGS image pushed for a fault-class exception" },
  { id: "idt-error-code", what: "IDT error codes are vector×16 + 2, without EXT (#GP/#NP for a bad or absent gate)", recorded: "IDT-related error codes computed as vector×16 + 2 instead of vector×8 + 2, and without the EXT bit" },
  { id: "ist-null-ss", what: "an IST stack switch at the same privilege loads a null SS", recorded: "Loads a null SS on an IST stack switch without a privilege change" },
  { id: "rdmsr-unknown", what: "RDMSR of an unknown MSR returns 0 instead of #GP(0)", recorded: "RDMSR of an unknown MSR returns 0" },
  { id: "pf-rsvd-p", what: "#PF for a reserved bit has error code 0x8, without P", recorded: "A page-table reserved bit gives #PF error code 0x8 without P" },
  { id: "syscall-compat-cstar", what: "SYSCALL in compatibility mode enters through CSTAR with the Intel vendor (Intel: #UD)", recorded: "SYSCALL in compatibility mode goes through CSTAR even with the Intel vendor string" },
  { id: "sysret-noncanonical", what: "SYSRET with a non-canonical RCX faults at CPL 3 (Intel: #GP(0) at CPL 0 before any change)", recorded: "SYSRET with a non-canonical RCX: Intel raises #GP(0) in ring 0 ... QEMU and KVM-PVM fault in ring 3" },
  { id: "iretq-noncanonical", what: "IRETQ to a non-canonical RIP completes and the fetch faults at CPL 3 (the fault belongs to the IRETQ)", recorded: "IRETQ to a non-canonical RIP: the fault belongs to the IRETQ itself; only Bochs does so" },
  { id: "syscall-clears-flags", what: "SYSCALL clears CF, PF, AF, ZF, SF and OF in the new RFLAGS even where FMASK keeps them (R11 is right)" },
  { id: "hlt-keeps-rf", what: "RF loaded by IRETQ stays set after the following HLT completes (it should clear once an instruction completes)" },
];

export const BOCHS_DEVIATIONS: readonly Deviation[] = [
  { id: "iret32-no-ss", what: "a 32-bit IRET in 64-bit mode pops only EIP, CS and EFLAGS", recorded: "A 32-bit-operand IRET (CF without REX.W) in 64-bit mode pops only EIP, CS and EFLAGS" },
  { id: "syscall-tf-trap", what: "a single-step #DB follows a SYSCALL whose FMASK clears TF", recorded: "Raises a single-step #DB after a SYSCALL whose FMASK clears TF" },
  { id: "apic-below-16", what: "not a CPU deviation: Bochs's local APIC drops vectors below 16, so the engine cannot make IRQ 14 pending (the recording harness used the 8259)" },
];

const RF = "rf-fault-frame";
const rfOnly = (address: string): ExpectedFailure => ({ deviations: [[RF, [`memory@${address}`]]] });

export const QEMU_EXPECTED: Readonly<Record<string, ExpectedFailure>> = {
  "df-rsp0-unmapped-ist": rfOnly("0x20fea"),
  "gp-noncanonical-load": rfOnly("0x1ffea"),
  "iretq-ring3-to-ring0-gp": rfOnly("0x1ffea"),
  "pf-kernel-write-ro-wp1": rfOnly("0x1ffea"),
  "pf-smap": rfOnly("0x1ffea"),
  "pf-user-fetch-nx": rfOnly("0x1ffea"),
  "pf-user-read-notpresent": rfOnly("0x1ffea"),
  "pf-user-read-supervisor": rfOnly("0x1ffea"),
  "pf-user-write-notpresent": rfOnly("0x1ffea"),
  "ring3-cli-iopl0-gp": rfOnly("0x1ffea"),
  "ring3-clts-gp": rfOnly("0x1ffea"),
  "ring3-in-iopl0-gp": rfOnly("0x1ffea"),
  "ring3-lgdt-gp": rfOnly("0x1ffea"),
  "ring3-mov-cr3-gp": rfOnly("0x1ffea"),
  "ring3-mov-ds-dpl0-gp": rfOnly("0x1ffea"),
  "ring3-sgdt-no-umip": rfOnly("0x1ffea"),
  "ring3-wbinvd-gp": rfOnly("0x1ffea"),
  "swapgs-ring3-gp": rfOnly("0x1ffea"),
  "sysret-at-cpl3-gp": rfOnly("0x1ffea"),
  "idt-gate-bad-type": { deviations: [["idt-error-code", ["memory@0x1ffd1"]], [RF, ["memory@0x1ffea"]]] },
  "int3-ring3-dpl0-gp": { deviations: [["idt-error-code", ["memory@0x1ffd0"]], [RF, ["memory@0x1ffea"]]] },
  "np-gate-hardware-exception": { deviations: [["idt-error-code", ["memory@0x1ffd0"]], [RF, ["memory@0x1ffea"]]] },
  "np-gate-software-int": { deviations: [["idt-error-code", ["memory@0x1ffd1"]], [RF, ["memory@0x1ffea"]]] },
  "pf-reserved-bit": { deviations: [["pf-rsvd-p", ["memory@0x1ffd0"]], [RF, ["memory@0x1ffea"]]] },
  "ist-unaligned-aligned-down": { deviations: [["ist-null-ss", ["sregs.ss.selector"]], [RF, ["memory@0x22fea"]]] },
  "nmi-ist3": { deviations: [["ist-null-ss", ["sregs.ss.selector"]]] },
  // No #GP frame at all: RDMSR completes, the case runs on to its next instruction.
  "gp-rdmsr-unknown-msr": {
    deviations: [["rdmsr-unknown", ["regs.rsp", "regs.rip", "memory@0x1ffd8", "memory@0x1ffda", "memory@0x1ffe0", "memory@0x1ffe8", "memory@0x1ffea", "memory@0x1fff2", "memory@0x1fff8"]]],
  },
  "syscall-compat-mode": {
    deviations: [["syscall-compat-cstar", ["regs.rcx", "regs.rsp", "regs.r11", "regs.rip", "sregs.ss.selector", "memory@0x1ffda", "memory@0x1ffe0", "memory@0x1ffe8", "memory@0x1ffea", "memory@0x1fff2", "memory@0x1fff8"]]],
  },
  "sysret-noncanonical-rcx": {
    deviations: [["sysret-noncanonical", ["sregs.ss.selector", "sregs.ss.limit", "sregs.ss.type", "sregs.ss.present", "sregs.ss.db", "sregs.ss.s", "sregs.ss.g", "memory@0x1ffda", "memory@0x1ffdd", "memory@0x1ffe0", "memory@0x1ffe9", "memory@0x1fff8"]]],
  },
  "sysret-noncanonical-rcx-user-rsp": {
    deviations: [
      // QEMU's frame lands on the kernel stack (0x1ffd8), Intel's on the user stack SYSRET left in RSP.
      ["sysret-noncanonical", ["regs.rsp", "sregs.ss.selector", "sregs.ss.limit", "sregs.ss.type", "sregs.ss.present", "sregs.ss.db", "sregs.ss.s", "sregs.ss.g", "memory@0x1ffdd", "memory@0x1ffe0", "memory@0x1ffe8", "memory@0x1fff2", "memory@0x1fff8", "memory@0x20ffda", "memory@0x20ffe0", "memory@0x20ffe8", "memory@0x20ffea", "memory@0x20fff2", "memory@0x20fff8"]],
    ],
  },
  "iretq-noncanonical-rip-to-ring3": {
    deviations: [
      // The #GP frame Intel pushes below the IRETQ frame is never written by QEMU.
      ["iretq-noncanonical", ["regs.rsp", "sregs.ss.selector", "sregs.ss.limit", "sregs.ss.type", "sregs.ss.present", "sregs.ss.db", "sregs.ss.s", "sregs.ss.g", "memory@0x1ffa8", "memory@0x1ffaa", "memory@0x1ffb0", "memory@0x1ffb8", "memory@0x1ffba", "memory@0x1ffc0", "memory@0x1ffc8"]],
    ],
  },
  "syscall-basic": { deviations: [["syscall-clears-flags", ["regs.rflags"]]] },
  "iretq-rflags-vm-rf-popped": { deviations: [["hlt-keeps-rf", ["regs.rflags"]]] },
};

export const BOCHS_EXPECTED: Readonly<Record<string, ExpectedFailure>> = {
  "iretd-no-rexw": { deviations: [["iret32-no-ss", ["regs.rsp"]]] },
  "syscall-tf-masked": { deviations: [["syscall-tf-trap", ["regs.rsp", "regs.rip", "memory@0x1ffd9", "memory@0x1ffe0", "memory@0x1ffe8", "memory@0x1fff2", "memory@0x1fff8"]]] },
  "irq-vector14-no-errcode": { deviations: [["apic-below-16", []]], error: /cpu\.pending_irq = 14: Bochs's local APIC drops vectors below 16/ },
};
