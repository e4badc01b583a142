// The transition fast paths stay invisible when the tables they rely on change while a hot loop
// runs: INT n delivered from compiled blocks (deliver.ts deliverSoft), the single-page frame push,
// the IRET return cache (system.ts), the not-present cache (machine.ts). Each loop runs long
// enough for its blocks to be compiled and the caches filled before the guest edits the table;
// every engine configuration must end in the same state as the uncached reference.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { Code, Instruction as I, Program, Reg, gate, icedAbs as abs, icedMem as mem } from "../../guest/index.ts";
import type { Memory } from "./helpers.ts";
import { RBX, RCX, baseMemory, layoutState, runAll, read64 } from "./helpers.ts";



type Insn = ReturnType<typeof I.create>;

/** Kernel handler at `rip`: `pre`; inc rbx; cmp rbx, at; jne skip; `edit`; skip: `post`; iretq. */
function handler(m: Memory, rip: bigint, at: number, edit: Insn[], pre: Insn[] = [], post: Insn[] = []): void {
  const p = new Program(rip);
  for (const x of pre) p.add(x);
  p.add(I.createReg(Code.Inc_rm64, Reg.RBX));
  p.add(I.createRegI32(Code.Cmp_rm64_imm8, Reg.RBX, at));
  const jne = p.add(I.createBranch(Code.Jne_rel8_64, 0n));
  for (const x of edit) p.add(x);
  jne.nearBranch64 = p.here(); // skip
  for (const x of post) p.add(x);
  p.add(I.create(Code.Iretq));
  m.write(rip, p.encode());
}

/** User loop at 0x200000: int 0x40; inc r12; jmp loop (gate 0x40: DPL 3, handler 0x13200). */
function intLoop(m: Memory): void {
  const [lo, hi] = gate(0x13200n, { dpl: 3 });
  m.write64(0x9400n, lo);
  m.write64(0x9408n, hi);
  const u = new Program(0x200000n);
  const loop = u.here();
  u.add(I.createU32(Code.Int_imm8, 0x40));
  u.add(I.createReg(Code.Inc_rm64, Reg.R12));
  u.add(I.createBranch(Code.Jmp_rel8_64, loop));
  m.write(0x200000n, u.encode());
}

function gdtByte(offset: number): number {
  return baseMemory().page(8)[offset]!;
}

describe("INT n from compiled blocks and the frame push", () => {
  it("a new RSP0 is used by the next delivery, also when the frame then straddles a page", () => {
    const m = baseMemory();
    intLoop(m);
    // Records RSP at each delivery in 0x30100 + 8·n; the 6th rewrites RSP0 to 0x20018 (the frame
    // then runs from 0x20008 down across the page boundary at 0x20000).
    handler(m, 0x13200n, 6, [I.createMemI32(Code.Mov_rm64_imm32, abs(0xa004n), 0x20018)],
      [I.createMemReg(Code.Mov_rm64_r64, mem(Reg.None, 0x30100n, Reg.None, Reg.RBX, 8), Reg.RSP)]);
    const out = runAll(layoutState(m, { user: true }), 400);
    expect(out.state.gpr[RBX]! > 20n).toBe(true);
    expect(read64(out.state, 0x30100n + 8n * 5n)).toBe(0x20000n - 40n);
    expect(read64(out.state, 0x30100n + 8n * 6n)).toBe(0x20010n - 40n);
    expect(read64(out.state, 0x30100n + 8n * 12n)).toBe(0x20010n - 40n);
  });

  it("a gate target rewritten by the handler is used by the next delivery", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x9401n), 0x33)]); // → 0x13300
    const b = new Program(0x13300n);
    b.add(I.createReg(Code.Inc_rm64, Reg.RCX));
    b.add(I.create(Code.Iretq));
    m.write(0x13300n, b.encode());
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.gpr[RCX]! > 10n).toBe(true);
  });

  it("a gate made not present raises #NP(vector·8 + 2) at the next INT", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x9405n), 0x6e)]); // P = 0
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0b1n); // the #NP handler
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x202n);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x200000n); // at the INT
  });
});

describe("IRET return cache", () => {
  it("the user SS descriptor made not present between IRETs raises #SS(selector)", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x8025n), gdtByte(0x25) & 0x7f)]);
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0c1n); // the #SS handler
    expect(read64(out.state, ((0x20000n - 40n) & ~15n) - 48n)).toBe(0x20n); // error code
  });

  it("the user CS descriptor given DPL 0 between IRETs raises #GP(selector)", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x802dn), gdtByte(0x2d) & ~0x60)]);
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0d1n); // the #GP handler
    expect(read64(out.state, ((0x20000n - 40n) & ~15n) - 48n)).toBe(0x28n);
  });
});

describe("not-present cache", () => {
  it("a page made present by the #PF handler is read by the next access", () => {
    const m = baseMemory();
    m.write64(0x50000n, 0x1234n);
    const [lo, hi] = gate(0x14000n);
    m.write64(0x9000n + 16n * 14n, lo);
    m.write64(0x9008n + 16n * 14n, hi);
    const load = () => I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, abs(0x600000n));
    const one = new Program(0n);
    one.add(load());
    const len = one.encode().length;
    const u = new Program(0x200000n);
    const loop = u.here();
    u.add(load());
    u.add(I.createReg(Code.Inc_rm64, Reg.R12));
    u.add(I.createBranch(Code.Jmp_rel8_64, loop));
    m.write(0x200000n, u.encode());
    // The 8th #PF maps 0x600000 → frame 0x50 (user, writable, present); the handler skips the load.
    handler(m, 0x14000n, 8, [I.createMemI32(Code.Mov_rm64_imm32, abs(0x4000n), 0x50007)], [],
      [I.createMemI32(Code.Add_rm64_imm8, mem(Reg.RSP, 8n), len), I.createRegI32(Code.Add_rm64_imm8, Reg.RSP, 8)]);
    const out = runAll(layoutState(m, { user: true }), 400);
    expect(out.state.gpr[RBX]).toBe(8n);
    expect(out.state.gpr[0]).toBe(0x1234n);
    expect(out.state.gpr[12]! > 20n).toBe(true);
  });
});

describe("compiled blocks: the one-entry page cache", () => {
  it("stores to a page-table page inside a hot loop remap the page the loop reads", () => {
    // PD entry 4 (8–10 MiB) → page table at frame 0x5000 (identity-mapped at linear 0x5000).
    // loop: mov [0x5000], rcx (PTE of 0x800000); mov rax, [rbx]; add rdx, rax; xor rcx, rdi;
    //       mov rbx, r9; mov r9, r10; ... mov r12, r13; dec rsi; jnz loop; hlt
    // RBX reaches 0x800000 (from R13) in the sixth iteration: that walk makes frame 0x5000 a page
    // table, so every later store to it must take the guarded path (TLB flush; the block page
    // cache emptied) and the next load see the frame the new PTE names.
    const m = baseMemory();
    m.write64(0x3020n, 0x5003n);
    m.write64(0x5ff8n, 0n); // frame 0x5000 allocated
    m.write64(0x50000n, 1n);
    m.write64(0x51000n, 100n);
    const p = new Program(0x10000n);
    const loop = p.here();
    p.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x5000n), Reg.RCX));
    p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, mem(Reg.RBX)));
    p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RDX, Reg.RAX));
    p.add(I.createRegReg(Code.Xor_rm64_r64, Reg.RCX, Reg.RDI));
    p.add(I.createRegReg(Code.Mov_rm64_r64, Reg.RBX, Reg.R9));
    p.add(I.createRegReg(Code.Mov_rm64_r64, Reg.R9, Reg.R10));
    p.add(I.createRegReg(Code.Mov_rm64_r64, Reg.R10, Reg.R11));
    p.add(I.createRegReg(Code.Mov_rm64_r64, Reg.R11, Reg.R12));
    p.add(I.createRegReg(Code.Mov_rm64_r64, Reg.R12, Reg.R13));
    p.add(I.createReg(Code.Dec_rm64, Reg.RSI));
    p.add(I.createBranch(Code.Jne_rel8_64, loop));
    p.add(I.create(Code.Hlt));
    m.write(0x10000n, p.encode());
    const s = layoutState(m);
    const gpr = [...s.gpr];
    gpr[RBX] = 0x20000n;
    gpr[RCX] = 0x50003n;
    gpr[7] = 0x50003n ^ 0x51003n; // RDI
    gpr[6] = 10n; // RSI
    for (const r of [9, 10, 11, 12]) gpr[r] = 0x20000n;
    gpr[13] = 0x800000n;
    const out = runAll({ ...s, gpr }, 500);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[2]).toBe(302n); // RDX: iterations 6–10 read 100, 1, 100, 1, 100
  });
});
