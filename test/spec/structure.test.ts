// The structures the step loop uses for speed must be invisible: the memory draft (a page copied
// at most once per step), the working registers of a Transaction, the once-per-page instruction
// fetch, the walk memo (spec/paging/walk-memo.ts) and the decode memo (spec/decode/memo.ts).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import "../../spec/index.ts";
import type { Machine } from "../../spec/machine/machine.ts";
import { PhysicalMemory } from "../../spec/machine/physical-memory.ts";
import { CR4, RAX, RBX, RCX, RFLAGS, RSP } from "../../spec/machine/registers.ts";
import { INTEL } from "../../contract/profile.ts";
import { step } from "../../spec/step/step.ts";
import { Transaction } from "../../spec/transaction/transaction.ts";
import { kernelMachine, withBytes, withCode, withRegs } from "../helpers/fixture.ts";

const run = (m: Machine, n: number): Machine => {
  let s = m;
  for (let i = 0; i < n; i++) {
    const r = step(s, { profile: INTEL });
    expect(r.event.kind, `step ${i}`).not.toBe("unsupported");
    s = r.state;
  }
  return s;
};

describe("MemoryDraft", () => {
  it("copies a written page once until a snapshot; later writes go into that copy", () => {
    const base = PhysicalMemory.empty().write(0x5000n, 8, 0x1122_3344_5566_7788n);
    const draft = base.draft();
    draft.write(0x5000n, 1, 0xaan);
    const copy = draft.page(5);
    draft.write(0x5008n, 8, 0xffn);
    expect(draft.page(5)).toBe(copy);
    expect(copy).not.toBe(base.page(5));
    expect(draft.read(0x5000n, 8)).toBe(0x1122_3344_5566_77aan);
    expect(base.read(0x5000n, 8)).toBe(0x1122_3344_5566_7788n);
  });
  it("a snapshot never changes: the next write copies the page again", () => {
    const draft = PhysicalMemory.empty().draft();
    draft.write(0x7000n, 4, 0xdead_beefn);
    const first = draft.snapshot();
    draft.write(0x7000n, 4, 0x1234_5678n);
    const second = draft.snapshot();
    expect(first.read(0x7000n, 4)).toBe(0xdead_beefn);
    expect(second.read(0x7000n, 4)).toBe(0x1234_5678n);
    expect(first.page(7)).not.toBe(second.page(7));
    expect(draft.snapshot()).toBe(second);
  });
  it("pages not written keep their identity (what the engine's touched() relies on)", () => {
    const base = PhysicalMemory.empty().write(0x1000n, 1, 1n).write(0x2000n, 1, 2n);
    const after = base.write(0x2000n, 1, 3n);
    expect(after.page(1)).toBe(base.page(1));
    expect(after.page(2)).not.toBe(base.page(2));
  });
  it("changedPages: the pages written since, or backed only in the newer memory, in order (what the engine's touched() answers)", () => {
    // Pages 1, 2 and 100 (another chunk of 64 pages) backed, then 2 and 100 rewritten and 70 and 3 added.
    const base = PhysicalMemory.empty().write(0x1000n, 1, 1n).write(0x2000n, 1, 2n).write(0x64000n, 1, 4n);
    const after = base.write(0x64000n, 1, 5n).write(0x2000n, 1, 3n).write(0x46000n, 1, 6n).write(0x3000n, 1, 7n);
    expect(after.changedPages(base)).toEqual([2, 3, 70, 100]);
    expect(base.changedPages(base)).toEqual([]);
    expect(base.changedPages(PhysicalMemory.empty())).toEqual([1, 2, 100]);
    // Pages backed only in the older memory are not this memory's changes.
    expect(PhysicalMemory.empty().changedPages(base)).toEqual([]);
    // A page written with the bytes it held is still a new page object: written.
    expect(base.write(0x1000n, 1, 1n).changedPages(base)).toEqual([1]);
  });
  it("write/read round trips at every size and offset, across pages too, as byte-wise little-endian", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x0ff0, max: 0x1010 }), fc.integer({ min: 1, max: 8 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (offset, size, value) => {
        const address = 0x40_0000n + BigInt(offset);
        const draft = PhysicalMemory.empty().draft();
        draft.write(address, size, value);
        const mask = (1n << BigInt(8 * size)) - 1n;
        expect(draft.read(address, size)).toBe(value & mask);
        const memory = draft.snapshot();
        for (let i = 0; i < size; i++) expect(memory.readByte(address + BigInt(i))).toBe(Number((value >> BigInt(8 * i)) & 0xffn));
        expect(memory.readByte(address + BigInt(size))).toBe(0);
      }),
      { seed: 20261122, numRuns: 300 },
    );
  });
});

describe("Transaction working copies", () => {
  it("a machine handed out by `m` or `snapshot` never changes when the step goes on writing registers and memory", () => {
    const t = new Transaction(kernelMachine(), INTEL, null);
    t.setGpr(RAX, 1n);
    t.writePhysical(0x30000n, 8, 0x1111n);
    const early = t.m;
    const earlySnapshot = t.snapshot();
    t.setGpr(RAX, 2n);
    t.writePhysical(0x30000n, 8, 0x2222n);
    t.update("RF-01", { rip: 0x10005n });
    expect(early.gpr[RAX]).toBe(1n);
    expect(early.rip).toBe(kernelMachine().rip);
    expect(earlySnapshot.gpr[RAX]).toBe(1n);
    expect(earlySnapshot.memory.read(0x30000n, 8)).toBe(0x1111n);
    expect(t.m.gpr[RAX]).toBe(2n);
    expect(t.snapshot().memory.read(0x30000n, 8)).toBe(0x2222n);
    expect(t.m.rip).toBe(0x10005n);
    expect(kernelMachine().gpr[RAX]).toBe(0n);
  });
});

describe("Transaction: what a fault keeps", () => {
  it("IRETQ-00: an update kept on a fault survives into the machine the fault is delivered on; the others do not", () => {
    const start = { ...kernelMachine(), cpu: { ...kernelMachine().cpu, nmiBlocked: true, shadow: "movss" as const } };
    const t = new Transaction(start, INTEL, null);
    t.update("SHADOW-02", { cpu: { ...t.m.cpu, shadow: "none" } });
    t.updateKeptOnFault("IRETQ-00", (m) => ({ cpu: { ...m.cpu, nmiBlocked: false } }));
    t.setGpr(RAX, 7n);
    expect(t.m.cpu).toMatchObject({ nmiBlocked: false, shadow: "none" });
    const kept = t.machineAfterFault(start);
    // The kept update is applied to the machine at the instruction: its shadow is the one it had.
    expect(kept.cpu).toEqual({ ...start.cpu, nmiBlocked: false });
    expect(kept.gpr[RAX]).toBe(start.gpr[RAX]);
  });
  it("without kept updates the machine after a fault is the start with its A/D bits", () => {
    const start = kernelMachine();
    const t = new Transaction(start, INTEL, null);
    t.update("RF-01", { rip: start.rip + 2n });
    const after = t.machineAfterFault(start);
    expect({ ...after, memory: null }).toEqual({ ...start, memory: null });
  });
});

describe("instruction fetch, one walk per page", () => {
  it("an instruction crossing into a not-present page faults at that page's first byte (CR2), not before", () => {
    // 48 B8 imm64 (10 bytes) at 0x5ffffa: the imm64 runs into 0x600000, which is not mapped.
    const m = withRegs({ ...kernelMachine(), rip: 0x5f_fffan }, { rsp: 0x20000n });
    const r = step(withCode(m, [0x48, 0xb8, 1, 2, 3, 4]), { profile: INTEL });
    expect(r.event).toMatchObject({ kind: "delivered", vector: 14, errorCode: 0x10 });
    expect(r.state.cr2).toBe(0x60_0000n);
  });
  it("the same instruction with the next page mapped runs", () => {
    const m = withRegs({ ...kernelMachine(), rip: 0x5f_fffan }, { rsp: 0x20000n });
    const mapped = { ...m, memory: m.memory.write(0x3018n, 8, 0x60_0083n) };
    const r = step(withBytes(withCode(mapped, [0x48, 0xb8, 1, 2, 3, 4]), 0x60_0000n, [5, 6, 7, 8]), { profile: INTEL });
    expect(r.event.kind).toBe("retired");
    expect(r.state.gpr[RAX]).toBe(0x0807_0605_0403_0201n);
  });
});

describe("walk memo: every access sees the page tables as they are now (no TLB)", () => {
  it("a rewritten PDE takes effect for the next access to the same page", () => {
    // mov rax, [0x600000] (twice: the first walk sets the A bits, the second is remembered);
    // mov [0x3018], rbx; mov rcx, [0x600000] — PDE 3 maps 0x400000, then 0x200000.
    const read = [0x48, 0x8b, 0x04, 0x25, 0, 0, 0x60, 0];
    const code = [...read, ...read, 0x48, 0x89, 0x1c, 0x25, 0x18, 0x30, 0, 0, 0x48, 0x8b, 0x0c, 0x25, 0, 0, 0x60, 0];
    let m = withRegs(withCode(kernelMachine(), code), { rbx: 0x20_0083n });
    m = { ...m, memory: m.memory.write(0x3018n, 8, 0x40_0083n).write(0x40_0000n, 8, 0x4444n).write(0x20_0000n, 8, 0x5555n) };
    const s = run(m, 4);
    expect([s.gpr[RAX], s.gpr[RCX]]).toEqual([0x4444n, 0x5555n]);
  });
  it("SMAP: after CLAC the same supervisor read of a user page faults (RFLAGS.AC is part of the walk)", () => {
    // stac; mov rax, [0x220000] (twice); clac; mov rax, [0x220000]
    const read = [0x48, 0x8b, 0x04, 0x25, 0, 0, 0x22, 0];
    const code = [0x0f, 0x01, 0xcb, ...read, ...read, 0x0f, 0x01, 0xca, ...read];
    const m = withCode({ ...kernelMachine(), cr4: kernelMachine().cr4 | CR4.SMAP }, code);
    const s = run(m, 4);
    expect(s.rflags & RFLAGS.AC).toBe(0n);
    const r = step(s, { profile: INTEL });
    expect(r.event).toMatchObject({ kind: "delivered", vector: 14, errorCode: 1 });
  });
  it("a write after reads of the same page still sets D in the leaf entry", () => {
    // mov rax, [0x400000]; mov rax, [0x400008]; mov [0x400010], rax — PDE 2 (0x3010) maps 0x400000.
    const code = [0x48, 0x8b, 0x04, 0x25, 0, 0, 0x40, 0, 0x48, 0x8b, 0x04, 0x25, 8, 0, 0x40, 0, 0x48, 0x89, 0x04, 0x25, 0x10, 0, 0x40, 0];
    let m = withCode(kernelMachine(), code);
    m = { ...m, memory: m.memory.write(0x3010n, 8, 0x40_0083n) };
    const afterReads = run(m, 2);
    expect(afterReads.memory.read(0x3010n, 8) & 0x60n).toBe(0x20n);
    expect(run(afterReads, 1).memory.read(0x3010n, 8) & 0x60n).toBe(0x60n);
  });
});

describe("decode memo: the bytes as they are now", () => {
  it("self-modifying code: an instruction rewritten after it ran once runs as rewritten", () => {
    // 0x10000 inc rbx; 0x10003 mov byte [0x10002], 0xc1 (inc rbx → inc rcx); 0x1000b jmp 0x10000
    const code = [0x48, 0xff, 0xc3, 0xc6, 0x04, 0x25, 0x02, 0x00, 0x01, 0x00, 0xc1, 0xeb, 0xf3];
    const s = run(withCode(kernelMachine(), code), 4);
    expect([s.gpr[RBX], s.gpr[RCX], s.rip]).toEqual([1n, 1n, 0x10003n]);
  });
  it("the same bytes decode alike in 64-bit and compatibility mode only when they mean the same (40 is REX / INC EAX)", () => {
    // 40 90 at the same place: 64-bit mode REX + NOP (2 bytes), compatibility mode INC EAX (1 byte).
    const m64 = withCode(kernelMachine(), [0x40, 0x90]);
    expect(step(m64, { profile: INTEL }).state.rip).toBe(0x10002n);
    const compat = { ...m64, cs: { ...m64.cs, l: 0, db: 1 } };
    const r = step(compat, { profile: INTEL });
    expect([r.state.rip, r.state.gpr[RAX]]).toEqual([0x10001n, 1n]);
    expect(step(m64, { profile: INTEL }).state.rip).toBe(0x10002n);
    expect(r.state.gpr[RSP]).toBe(kernelMachine().gpr[RSP]);
  });
});
