// What the emulator tests accept besides a pass. Deviations are not listed by hand: a vector that
// deviates must fall under a rule group of the committed deviation table of its emulator
// (docs/deviations/*.json, `npm run deviations`; test/emulators/tables.ts), where each group is
// reviewed against the SDM (docs/deviations/README.md). Listed here are only
//   - the vectors an engine cannot run at all, with the reason it gives (a capability of the
//     harness, not a deviation), and
//   - the deviations the vectors show that the time-bounded campaign behind the table did not
//     reach, by vector: "this vector deviates under rule X on this emulator". vectors.test.ts
//     asserts each of them on every run, whether or not the table names rule X for some other
//     case (a regenerated table may gain or lose a group of that name for an unrelated reason;
//     the vector's own deviation does not come and go with it).

export interface EmulatorExpectations {
  readonly cannotRun: Readonly<Record<string, RegExp>>;
  /** Vector → the rule group its deviation falls under, and what it shows. */
  readonly vectorDeviations: Readonly<Record<string, { readonly rule: string; readonly why: string }>>;
}

export const EXPECTED: { readonly qemu: EmulatorExpectations; readonly bochs: EmulatorExpectations } = {
  qemu: {
    cannotRun: {},
    vectorDeviations: {
      "iretq-rflags-vm-rf-popped": {
        rule: "RF-01",
        why: "after an IRETQ that loads RF = 1, the HLT that follows leaves RF set (SDM Vol. 3A §18.3.1.1: cleared when an instruction other than IRET completes); the campaign behind the table reached no such case (its RF-01 group, if any, is another case's)",
      },
    },
  },
  bochs: {
    cannotRun: {
      // Bochs's local APIC drops vectors below 16, so the engine cannot make IRQ 14 pending (the
      // recording harness used the 8259).
      "irq-vector14-no-errcode": /cpu\.pending_irq = 14: Bochs's local APIC drops vectors below 16/,
    },
    vectorDeviations: {
      "syscall-tf-masked": {
        rule: "SYSCALL-10",
        why: "a single-step #DB after a SYSCALL whose FMASK clears TF (recorded); the campaign's SYSCALL cases rarely start with TF = 1 and FMASK.TF = 1",
      },
    },
  },
};
