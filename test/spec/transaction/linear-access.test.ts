// Linear memory access through the step's Transaction: canonical checks (CANON table, PF-05), #AC
// (SMAP-06), page-crossing accesses (PF-01) and which A/D bits survive a faulting step.
import { describe, expect, it } from "vitest";
import "../../../spec/index.ts";
import { isFault, type Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { canonical, CR0, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { Transaction } from "../../../spec/transaction/transaction.ts";
import { kernelMachine, vectorMachine, withRegs } from "../../helpers/fixture.ts";
import { A, ALL, D, ENTRY, entryAt, FRAME, kernelWith, LINEAR, P, PT, RW, US, userWith, writeEntry } from "../paging/tables.ts";

const PAGE = LINEAR & ~0xfffn;
const NEXT_PAGE = PAGE + 0x1000n;
const NEXT_FRAME = 0x7655_8000n;
const NEXT_PTE = PT + 10n * 8n;

/** LINEAR's page plus the page after it (PT index 10, flags given). */
function twoPages(m: Machine, nextFlags: bigint): Machine {
  return { ...m, memory: writeEntry(m.memory, NEXT_PTE, NEXT_FRAME | nextFlags) };
}

function expectFault(x: unknown, vector: number, errorCode: number, rule?: string): Fault {
  if (!isFault(x)) throw new Error(`expected a fault, got ${String(x)}`);
  expect(x.vector).toBe(vector);
  expect(x.errorCode).toBe(errorCode);
  if (rule !== undefined) expect(x.rule).toBe(rule);
  return x;
}

const tx = (m: Machine, coverage: Set<string> | null = null): Transaction => new Transaction(m, INTEL, coverage);

describe("reads and writes through paging", () => {
  it("PF-04: readLinear returns the bytes at the translated physical address (little-endian)", () => {
    const m = kernelWith();
    const t = tx({ ...m, memory: m.memory.write(FRAME | 0x123n, 8, 0x1122_3344_5566_7788n) });
    expect(t.readLinear(LINEAR, 8, "supervisor")).toBe(0x1122_3344_5566_7788n);
    expect(t.readLinear(LINEAR + 2n, 2, "supervisor")).toBe(0x5566n);
  });

  it("PF-04: writeLinear stores at the translated address; the start machine is untouched", () => {
    const m = kernelWith();
    const t = tx(m);
    expect(t.writeLinear(LINEAR, 4, 0xdead_beefn, "supervisor")).toBeUndefined();
    expect(t.snapshot().memory.read(FRAME | 0x123n, 4)).toBe(0xdead_beefn);
    expect(m.memory.read(FRAME | 0x123n, 4)).toBe(0n);
  });

  it("PF-02: pf-user-read-notpresent / pf-user-write-notpresent / pf-user-read-supervisor error codes via the Transaction", () => {
    const read = expectFault(tx(vectorMachine("pf-user-read-notpresent")).readLinear(0x401000n, 8, "user"), 14, 0x4, "PF-NP");
    expect(read.address).toBe(0x401000n);
    expectFault(tx(vectorMachine("pf-user-write-notpresent")).writeLinear(0x401000n, 8, 0n, "user"), 14, 0x6, "PF-NP");
    expectFault(tx(vectorMachine("pf-user-read-supervisor")).readLinear(0x30010n, 8, "user"), 14, 0x5, "PF-04-US");
  });

  it("PF-03: descriptor-table reads at CPL 3 are implicit: U/S = 0 in the error code", () => {
    const m = userWith({ PTE: 0n });
    expectFault(tx(m).readLinear(LINEAR, 8, "implicit"), 14, 0x0, "PF-NP");
  });
});

describe("canonical checks (CANON table, PF-05)", () => {
  it("CANON-01: canonical means bits 63:47 all equal", () => {
    expect(canonical(0x0000_7fff_ffff_ffffn)).toBe(true);
    expect(canonical(0x0000_8000_0000_0000n)).toBe(false);
    expect(canonical(0xffff_7fff_ffff_ffffn)).toBe(false);
    expect(canonical(0xffff_8000_0000_0000n)).toBe(true);
  });

  it("CANON-GP: gp-noncanonical-load: a data read at 0x0000800000000000 raises #GP(0)", () => {
    const m = vectorMachine("gp-noncanonical-load");
    expectFault(tx(m).readLinear(0x0000_8000_0000_0000n, 8, "supervisor"), 13, 0, "CANON-GP");
    expectFault(tx(m).writeLinear(0x0000_8000_0000_0000n, 8, 0n, "supervisor"), 13, 0, "CANON-GP");
  });

  it("CANON-GP: an access whose last byte is non-canonical raises #GP(0)", () => {
    expectFault(tx(kernelMachine()).readLinear(0x0000_7fff_ffff_fffcn, 8, "supervisor"), 13, 0, "CANON-GP");
  });

  it("CANON-SS: a non-canonical stack reference raises #SS(0); PUSH leaves RSP unchanged", () => {
    const m = withRegs(kernelMachine(), { rsp: 0x8000_0000_0000_0008n });
    expectFault(tx(m).readLinear(0x8000_0000_0000_0000n, 8, "supervisor", { stack: true }), 12, 0, "CANON-SS");
    const t = tx(m);
    expectFault(t.push(1n), 12, 0, "CANON-SS");
    expect(t.gpr(RSP)).toBe(0x8000_0000_0000_0008n);
  });

  it("CANON-FETCH: a fetch from a non-canonical address raises #GP(0)", () => {
    expectFault(tx(kernelMachine()).readLinear(0x0000_8000_0000_0000n, 1, "supervisor", { kind: "execute" }), 13, 0, "CANON-FETCH");
  });

  it("PF-05: a non-canonical address never reaches paging (#GP, not #PF) even when nothing is mapped", () => {
    const empty = { ...kernelMachine(), cr3: 0x60000n };
    expectFault(tx(empty).readLinear(0x0000_8000_0000_0000n, 8, "user"), 13, 0);
    expectFault(tx(empty).readLinear(0xffff_8000_0000_0000n, 8, "supervisor"), 14, 0, "PF-NP");
  });

  it("PF-05: the coverage set records CANON-01, the CANON rule and PF-05", () => {
    const coverage = new Set<string>();
    tx(kernelMachine(), coverage).readLinear(0x0000_8000_0000_0000n, 8, "supervisor");
    expect([...coverage].sort()).toEqual(["CANON-01", "CANON-GP", "PF-05"]);
  });
});

describe("alignment check (SMAP-06, SDM Vol. 3A §6.15 interrupt 17)", () => {
  // userMachine's CR0 (0x80050033) has AM = 1.
  const user = (ac: boolean): Machine => {
    const m = userWith();
    return { ...m, rflags: ac ? m.rflags | RFLAGS.AC : m.rflags & ~RFLAGS.AC };
  };

  it("SMAP-06: at CPL 3 with CR0.AM = 1 and AC = 1, misaligned 2/4/8-byte reads and writes raise #AC(0)", () => {
    for (const [size, offset] of [[2, 1n], [4, 2n], [8, 4n], [8, 1n]] as const) {
      expectFault(tx(user(true)).readLinear(PAGE + offset, size, "user"), 17, 0, "SMAP-06");
      expectFault(tx(user(true)).writeLinear(PAGE + offset, size, 0n, "user"), 17, 0, "SMAP-06");
    }
  });

  it("SMAP-06: aligned accesses and single bytes are never alignment faults", () => {
    const t = tx(user(true));
    for (const size of [1, 2, 4, 8]) expect(isFault(t.readLinear(PAGE + 8n, size, "user"))).toBe(false);
    expect(isFault(t.readLinear(PAGE + 3n, 1, "user"))).toBe(false);
  });

  it("SMAP-06: no #AC when CR0.AM = 0 or RFLAGS.AC = 0", () => {
    expect(isFault(tx(user(false)).readLinear(PAGE + 1n, 4, "user"))).toBe(false);
    const noAm = { ...user(true), cr0: user(true).cr0 & ~CR0.AM };
    expect(isFault(tx(noAm).readLinear(PAGE + 1n, 4, "user"))).toBe(false);
  });

  it("SMAP-06: ac-ring0-no-check: a CPL 0 misaligned load with AM = AC = 1 is not checked", () => {
    const m = vectorMachine("ac-ring0-no-check");
    expect((m.rflags & RFLAGS.AC) !== 0n && (m.cr0 & CR0.AM) !== 0n).toBe(true);
    expect(isFault(tx(m).readLinear(0x20000n - 7n, 4, "supervisor"))).toBe(false);
  });

  it("SMAP-06: implicit accesses and instruction fetches at CPL 3 are not alignment-checked", () => {
    const t = tx(user(true));
    expect(isFault(t.readLinear(PAGE + 1n, 8, "implicit"))).toBe(false);
    expect(isFault(t.readLinear(PAGE + 1n, 4, "user", { kind: "execute" }))).toBe(false);
  });

  it("SMAP-06: a stack push at CPL 3 to a misaligned RSP raises #AC(0) and leaves RSP", () => {
    const m = withRegs(user(true), { rsp: PAGE + 0x104n });
    const t = tx(m);
    expectFault(t.push(7n), 17, 0, "SMAP-06");
    expect(t.gpr(RSP)).toBe(PAGE + 0x104n);
  });

  it("SMAP-06: an explicit alignment overrides the size (e.g. a 10-byte operand needing 8)", () => {
    expectFault(tx(user(true)).writeLinear(PAGE + 4n, 10, 0n, "user", { alignment: 8 }), 17, 0);
    expect(tx(user(true)).writeLinear(PAGE + 4n, 10, 0n, "user")).toBeUndefined();
  });

  it("SMAP-06: #AC comes after the canonical check and before paging", () => {
    const unmapped = { ...user(true), cr3: 0x60000n };
    expectFault(tx(unmapped).readLinear(0x0000_8000_0000_0001n, 8, "user"), 13, 0);
    expectFault(tx(unmapped).readLinear(PAGE + 1n, 8, "user"), 17, 0);
  });
});

describe("page-crossing accesses (PF-01)", () => {
  it("PF-01: a read across a page boundary joins the bytes of both frames", () => {
    let m = twoPages(kernelWith(), ALL);
    m = { ...m, memory: m.memory.write(FRAME | 0xffcn, 4, 0x4433_2211n).write(NEXT_FRAME, 4, 0x8877_6655n) };
    expect(tx(m).readLinear(PAGE + 0xffcn, 8, "supervisor")).toBe(0x8877_6655_4433_2211n);
  });

  it("PF-01: a write across a page boundary splits between the frames", () => {
    const t = tx(twoPages(kernelWith(), ALL));
    expect(t.writeLinear(PAGE + 0xffen, 4, 0xaabb_ccddn, "supervisor")).toBeUndefined();
    expect(t.snapshot().memory.read(FRAME | 0xffen, 2)).toBe(0xccddn);
    expect(t.snapshot().memory.read(NEXT_FRAME, 2)).toBe(0xaabbn);
  });

  it("PF-01: a fault in the second page reports that page's first byte in CR2 and writes nothing", () => {
    const m = twoPages(kernelWith(), RW); // next page not present
    const t = tx(m);
    const f = expectFault(t.writeLinear(PAGE + 0xffcn, 8, 0x1111_1111_1111_1111n, "supervisor"), 14, 0x2, "PF-NP");
    expect(f.address).toBe(NEXT_PAGE);
    expect(t.snapshot().memory.read(FRAME | 0xffcn, 4)).toBe(0n);
  });

  it("PF-01: a fault in the first page reports the access's own address", () => {
    const m = twoPages(kernelWith({ PTE: RW }), ALL);
    expect(expectFault(tx(m).readLinear(PAGE + 0xffdn, 8, "supervisor"), 14, 0).address).toBe(PAGE + 0xffdn);
  });

  it("PF-04-US: a user read whose second page is supervisor faults 0x5 at the second page", () => {
    const m = twoPages(userWith(), P | RW);
    expect(expectFault(tx(m).readLinear(PAGE + 0xff8n, 16, "user"), 14, 0x5, "PF-04-US").address).toBe(NEXT_PAGE);
  });
});

describe("accessed/dirty bits across a step (docs/model-choices.md)", () => {
  it("PF-DIRTY: a successful write sets A|D in the working memory and in what survives a fault", () => {
    const start = kernelWith();
    const t = tx(start);
    t.writeLinear(LINEAR, 1, 0x5an, "supervisor");
    expect(entryAt(t.snapshot().memory, ENTRY.PTE) & (A | D)).toBe(A | D);
    const after = t.machineAfterFault(start);
    expect(entryAt(after.memory, ENTRY.PTE) & (A | D)).toBe(A | D);
    expect(entryAt(after.memory, ENTRY.PML4E) & (A | D)).toBe(A);
    // The data write itself does not survive.
    expect(after.memory.read(FRAME | 0x123n, 1)).toBe(0n);
  });

  it("PF-ACCESSED: a page-crossing write that faults in page 2 keeps page 1's A/D (its walk succeeded) and sets nothing in page 2", () => {
    const start = twoPages(kernelWith(), P | US); // next page read-only, WP = 1
    const t = tx(start);
    expectFault(t.writeLinear(PAGE + 0xffcn, 8, 0n, "supervisor"), 14, 0x3, "PF-04-WP");
    const after = t.machineAfterFault(start);
    expect(entryAt(after.memory, ENTRY.PTE) & (A | D)).toBe(A | D);
    expect(entryAt(after.memory, NEXT_PTE) & (A | D)).toBe(0n);
  });

  it("PF-ACCESSED: a faulting access alone leaves memory exactly as it started", () => {
    const start = kernelWith({ PTE: US | RW });
    const t = tx(start);
    expectFault(t.readLinear(LINEAR, 8, "supervisor"), 14, 0);
    expect(t.snapshot().memory).toBe(start.memory);
    expect(t.machineAfterFault(start).memory).toBe(start.memory);
  });

  it("PF-ACCESSED: with every A/D bit already set, accesses leave the memory object unchanged", () => {
    const flags = ALL | A | D;
    const start = kernelWith({ PML4E: flags, PDPTE: flags, PDE: flags, PTE: flags });
    const t = tx(start);
    t.readLinear(LINEAR, 8, "supervisor");
    expect(t.snapshot().memory).toBe(start.memory);
  });

  it("PF-02: the coverage set records the fault's rule with PF-01 and PF-02; a success records PF-ACCESSED/PF-DIRTY", () => {
    const coverage = new Set<string>();
    tx(kernelWith({ PTE: P | US }), coverage).writeLinear(LINEAR, 8, 0n, "supervisor");
    expect([...coverage].sort()).toEqual(["PF-01", "PF-02", "PF-04-WP"]);
    const ok = new Set<string>();
    tx(kernelWith(), ok).writeLinear(LINEAR, 8, 0n, "supervisor");
    expect([...ok].sort()).toEqual(["PF-ACCESSED", "PF-DIRTY"]);
  });
});

describe("the transaction's walk epoch (spec/paging/walk-memo.ts walkEpoch)", () => {
  it("an update of CR3 or RFLAGS.AC within a step is seen by the step's next access", () => {
    const m = kernelWith();
    const t = tx({ ...m, memory: m.memory.write(FRAME | 0x123n, 8, 0x55n) });
    // Twice: the second read is answered by the walk memo, under the transaction's epoch.
    expect(t.readLinear(LINEAR, 8, "supervisor")).toBe(0x55n);
    expect(t.readLinear(LINEAR, 8, "supervisor")).toBe(0x55n);
    // CR3 now names a page of zeros (nothing present): the same access faults.
    t.update("MOVCR-04", { cr3: m.cr3 + 0x10_0000n });
    expectFault(t.readLinear(LINEAR, 8, "supervisor"), 14, 0);
    // Back to the tables: the read succeeds again.
    t.update("MOVCR-04", { cr3: m.cr3 });
    expect(t.readLinear(LINEAR, 8, "supervisor")).toBe(0x55n);
  });
});
