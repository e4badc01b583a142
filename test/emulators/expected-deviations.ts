// What the emulator tests accept besides a pass. Deviations are not listed by hand: a vector that
// deviates must fall under a rule group of the committed deviation table of its emulator
// (docs/deviations/*.json, `npm run deviations`; test/emulators/tables.ts), where each group is
// reviewed against the SDM (docs/deviations/README.md). Listed here are only
//   - the vectors an engine cannot run at all, with the reason it gives (a capability of the
//     harness, not a deviation), and
//   - the deviations the vectors show that the time-bounded campaign behind the table did not
//     reach, each with the one vector that shows it. vectors.test.ts checks both ways: the vector
//     must still deviate under that rule, and the table must not name it already.

export interface EmulatorExpectations {
  readonly cannotRun: Readonly<Record<string, RegExp>>;
  /** Rule group → the vector that shows it (and why the campaign did not reach it). */
  readonly vectorOnly: Readonly<Record<string, { readonly vector: string; readonly why: string }>>;
}

export const EXPECTED: { readonly qemu: EmulatorExpectations; readonly bochs: EmulatorExpectations } = {
  qemu: {
    cannotRun: {},
    // iretq-rflags-vm-rf-popped (after an IRETQ that loads RF = 1, QEMU's HLT leaves RF set; SDM
    // Vol. 3A §18.3.1.1) deviates under RF-01, which the table names since its 2026-12-07 run for
    // another case (LZCNT on `-cpu max`, vendor model; docs/deviations/README.md), so it is no
    // longer listed here; the campaign still reached no case of its own.
    vectorOnly: {},
  },
  bochs: {
    cannotRun: {
      // Bochs's local APIC drops vectors below 16, so the engine cannot make IRQ 14 pending (the
      // recording harness used the 8259).
      "irq-vector14-no-errcode": /cpu\.pending_irq = 14: Bochs's local APIC drops vectors below 16/,
    },
    vectorOnly: {
      "SYSCALL-10": {
        vector: "syscall-tf-masked",
        why: "a single-step #DB after a SYSCALL whose FMASK clears TF (recorded); the campaign's SYSCALL cases rarely start with TF = 1 and FMASK.TF = 1",
      },
    },
  },
};
