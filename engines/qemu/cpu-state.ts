// The architectural state from QEMU's migration stream: the `cpu` section (registers, segment
// caches, descriptor tables, control registers, EFER and the SYSCALL MSRs), `cpu_common` (halted,
// pending interrupt requests) and `apic` (task priority, pending vectors in IRR).
import { POWER_UP_REGISTERS, RESET_DEVICES, type ArchState, type CpuRunState, type InterruptShadow, type Segment } from "../../contract/state.ts";
import { EngineError } from "../host/errors.ts";
import { decodeSection, integerField, type FieldValue, type MigrationStream } from "./migration.ts";

/** QEMU's segment order in `env.segs`: ES, CS, SS, DS, FS, GS. */
const SEGMENT_INDEX = { es: 0, cs: 1, ss: 2, ds: 3, fs: 4, gs: 5 } as const;

/** hflags bit: interrupts inhibited for one instruction (STI / MOV SS shadow). */
const HF_INHIBIT_IRQ = 1n << 3n;
/** hflags2 bit: NMIs blocked (an NMI was delivered and no IRET followed). */
const HF2_NMI = 1n << 2n;
/** cpu_common.interrupt_request bit for a pending NMI (CPU_INTERRUPT_NMI). */
const INTERRUPT_NMI = 0x200n;

/** QEMU's descriptor flags word: the descriptor's bits 40–55 shifted into place (attributes << 8). */
export function segmentFromFlags(selector: bigint, base: bigint, limit: bigint, flags: bigint): Segment {
  const f = Number(flags);
  const present = (f >> 15) & 1;
  return {
    selector: Number(selector & 0xffffn),
    base,
    limit: Number(limit & 0xffffffffn),
    type: (f >> 8) & 15,
    s: (f >> 12) & 1,
    dpl: (f >> 13) & 3,
    present,
    avl: (f >> 20) & 1,
    l: (f >> 21) & 1,
    db: (f >> 22) & 1,
    g: (f >> 23) & 1,
    // QEMU keeps no "unusable" flag (emulator-harnesses.md): a not-present cache is unusable.
    unusable: present === 1 ? 0 : 1,
  };
}

export interface QemuCpuState {
  /** Everything but memory. */
  readonly registers: Omit<ArchState, "memory" | "cpu">;
  readonly cpu: CpuRunState;
  /** Raw facts that no ArchState field carries, for diagnostics. */
  readonly inhibitIrq: boolean;
  readonly smbase: bigint;
  readonly smiCount: bigint | undefined;
}

function highestSetVector(words: readonly bigint[]): number | null {
  for (let w = words.length - 1; w >= 0; w--) {
    const word = words[w]!;
    for (let bit = 31; bit >= 0; bit--) if ((word >> BigInt(bit)) & 1n) return w * 32 + bit;
  }
  return null;
}

/** Decodes the CPU state from a parsed stream. `shutdown`: QEMU's run state said shutdown. */
export function cpuStateFromStream(stream: MigrationStream, shutdown: boolean): QemuCpuState {
  const section = (name: string) => {
    const raw = stream.sections.get(name);
    if (raw === undefined) throw new EngineError("protocol", `migration stream: no ${name} section`);
    return decodeSection(raw, stream.description);
  };
  const cpu = section("cpu");
  const common = section("cpu_common");
  const apic = section("apic");
  const int = (fields: ReadonlyMap<string, FieldValue>, name: string, where: string) => integerField(fields, name, where);
  const c = (name: string) => int(cpu, name, "cpu");
  const segment = (prefix: string) => segmentFromFlags(c(`${prefix}.selector`), c(`${prefix}.base`), c(`${prefix}.limit`), c(`${prefix}.flags`));
  const seg = (name: keyof typeof SEGMENT_INDEX) => segment(`env.segs[${SEGMENT_INDEX[name]}]`);

  const hflags = c("env.hflags");
  const hflags2 = c("env.hflags2");
  const interruptRequest = int(common, "interrupt_request", "cpu_common");
  const irr = Array.from({ length: 8 }, (_, i) => int(apic, `irr[${i}]`, "apic"));
  const tpr = int(apic, "tpr", "apic");
  const smi = cpu.get("cpu/msr_smi_count:env.msr_smi_count");

  const inhibitIrq = (hflags & HF_INHIBIT_IRQ) !== 0n;
  // QEMU does not say whether a shadow came from STI or MOV SS; "sti" stands for either (and
  // cpu.shadow is in the unobservable list).
  const shadow: InterruptShadow = inhibitIrq ? "sti" : "none";
  return {
    registers: {
      gpr: Array.from({ length: 16 }, (_, i) => c(`env.regs[${i}]`)),
      rip: c("env.eip"),
      rflags: c("env.eflags"),
      es: seg("es"), cs: seg("cs"), ss: seg("ss"), ds: seg("ds"), fs: seg("fs"), gs: seg("gs"),
      tr: segment("env.tr"),
      ldtr: segment("env.ldt"),
      gdtr: { base: c("env.gdt.base"), limit: Number(c("env.gdt.limit") & 0xffffn) },
      idtr: { base: c("env.idt.base"), limit: Number(c("env.idt.limit") & 0xffffn) },
      cr0: c("env.cr[0]"),
      cr2: c("env.cr[2]"),
      cr3: c("env.cr[3]"),
      cr4: c("env.cr[4]"),
      // CR8 is the APIC's task priority, bits 7:4.
      cr8: (tpr >> 4n) & 15n,
      efer: c("env.efer"),
      star: c("env.star"),
      lstar: c("env.lstar"),
      cstar: c("env.cstar"),
      fmask: c("env.fmask"),
      kernelGsBase: c("env.kernelgsbase"),
      // Not read from the stream yet: reported at their power-up values and listed as
      // unobservable (QEMU_UNOBSERVABLE), so they are "not compared", never passed.
      ...POWER_UP_REGISTERS,
      devices: RESET_DEVICES,
    },
    cpu: {
      pendingIrq: highestSetVector(irr),
      pendingNmi: (interruptRequest & INTERRUPT_NMI) !== 0n,
      nmiBlocked: (hflags2 & HF2_NMI) !== 0n,
      shadow,
      halted: int(common, "halted", "cpu_common") !== 0n,
      shutdown,
      pendingDebugTrap: false,
    },
    inhibitIrq,
    smbase: c("env.smbase"),
    smiCount: typeof smi === "bigint" ? smi : undefined,
  };
}
