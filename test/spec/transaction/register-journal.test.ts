// The register undo log (spec/transaction/register-journal.ts): a transaction given a journal owns
// its start record and writes it and its register array in place; `rollBackRegisters` takes the
// writes back, `startMachine` gives the record as it began, and a record handed out by `m` never
// changes afterwards.
import { describe, expect, it } from "vitest";
import { INTEL } from "../../../contract/profile.ts";
import { machineFromState, withOwnRegisters, type Machine } from "../../../spec/machine/machine.ts";
import { RAX, RSP } from "../../../spec/machine/registers.ts";
import { RegisterJournal } from "../../../spec/transaction/register-journal.ts";
import { Transaction } from "../../../spec/transaction/transaction.ts";
import { guestState } from "../../helpers/fixture.ts";

function owned(): { machine: Machine; record: ReturnType<typeof withOwnRegisters>; before: ReturnType<typeof withOwnRegisters>; t: Transaction } {
  const machine = machineFromState(guestState({ ring: 0 }));
  const record = withOwnRegisters(machine);
  const before = withOwnRegisters(record);
  const t = new Transaction(record, INTEL, null, machine.memory.draft(), new RegisterJournal());
  return { machine, record, before, t };
}

describe("a transaction that owns its start record", () => {
  it("writes the record and its registers in place; rollBackRegisters takes every write back", () => {
    const { record, before, t } = owned();
    t.update("RF-01", { rip: 0x1234n, rflags: 0x2n });
    t.writeGpr("STACK-01", RSP, 0x5000n);
    t.update("SWAPGS-03", { kernelGsBase: 0x77n });
    expect(record.rip).toBe(0x1234n);
    expect(record.gpr[RSP]).toBe(0x5000n);
    expect(record.kernelGsBase).toBe(0x77n);
    t.rollBackRegisters();
    expect(record).toEqual(before);
  });

  it("startMachine is the record as it began, and stays so while the record is written on", () => {
    const { record, before, t } = owned();
    t.update("RF-01", { rip: 0x1234n });
    t.writeGpr("STACK-01", RAX, 0x99n);
    const start = t.startMachine();
    expect(start).toEqual(before);
    t.writeGpr("STACK-01", RAX, 0x98n);
    t.writeGpr("STACK-01", RSP, 0x4000n);
    t.update("RF-01", { rip: 0x5678n });
    expect(start).toEqual(before);
    expect(record.gpr[RAX]).toBe(0x98n);
  });

  it("a record handed out by m never changes afterwards; later writes go to a copy", () => {
    const { record, t } = owned();
    t.update("RF-01", { rip: 0x1000n });
    t.writeGpr("STACK-01", RAX, 1n);
    const handedOut = t.m;
    const snapshot = withOwnRegisters(handedOut);
    t.update("RF-01", { rip: 0x2000n });
    t.writeGpr("STACK-01", RAX, 2n);
    expect(handedOut).toEqual(snapshot);
    expect(t.now.rip).toBe(0x2000n);
    expect(t.now.gpr[RAX]).toBe(2n);
    // The copy is the transaction's own: the start record keeps the writes made before m, and a
    // roll-back takes those back too.
    expect(record.rip).toBe(0x1000n);
    t.rollBackRegisters();
    expect(record.gpr[RAX]).not.toBe(1n);
  });

  it("without a journal the start record is never written", () => {
    const machine = machineFromState(guestState({ ring: 0 }));
    const copy = withOwnRegisters(machine);
    const t = new Transaction(machine, INTEL, null, machine.memory.draft());
    t.update("RF-01", { rip: 0x1234n });
    t.writeGpr("STACK-01", RSP, 0x5000n);
    expect(withOwnRegisters(machine)).toEqual(copy);
    expect(t.now.rip).toBe(0x1234n);
    expect(t.startMachine()).toBe(machine);
  });
});
