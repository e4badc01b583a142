// The block page caches of compiled code (impl/compile/memory-operands.ts: one for the stack, one
// for other data) are invisible: stores to a page-table page inside a hot compiled loop — plain or
// a push — remap the page the same loop reads.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Program, Reg, icedAbs as abs, icedMem as mem } from "../../../guest/index.ts";
import { RBX, RCX, baseMemory, layoutState } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

/**
 * Runs, with spec checking each step, a ten-iteration loop whose first instructions (`storePte`)
 * write RCX as the PTE of linear 0x800000 into frame 0x5000, then:
 *   mov rax, [rbx]; add rdx, rax; xor rcx, rdi; mov rbx, r9; mov r9, r10; ... mov r12, r13;
 *   dec rsi; jnz loop; hlt
 * PD entry 4 (8–10 MiB) → page table at frame 0x5000 (identity-mapped at linear 0x5000). RBX
 * reaches 0x800000 (from R13) in the sixth iteration: that walk makes frame 0x5000 a page table,
 * so every later store to it must take the guarded path (TLB flush; the block page caches
 * emptied) and the next load see the frame the new PTE names (RCX alternates 0x50003, 0x51003).
 */
function runRemappingLoop(storePte: (p: Program) => void) {
  const m = baseMemory();
  m.write64(0x3020n, 0x5003n);
  m.write64(0x5ff8n, 0n); // frame 0x5000 allocated
  m.write64(0x50000n, 1n);
  m.write64(0x51000n, 100n);
  const p = new Program(0x10000n);
  const loop = p.here();
  storePte(p);
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
  return runAll({ ...s, gpr }, 500);
}

describe("compiled blocks: the one-entry page cache", () => {
  it("stores to a page-table page inside a hot loop remap the page the loop reads", () => {
    const out = runRemappingLoop((p) => p.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x5000n), Reg.RCX)));
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[2]).toBe(302n); // RDX: iterations 6–10 read 100, 1, 100, 1, 100
  });

  it("pushes to a page-table page inside a hot loop remap the page the loop reads (the stack's page cache)", () => {
    // The PTE written by `push rcx` with RSP reset to 0x5008 on every iteration: the sixth
    // iteration's walk (a data read) must empty the stack's page cache too, so that the next push
    // takes the guarded path.
    const out = runRemappingLoop((p) => {
      p.add(I.createRegI32(Code.Mov_rm64_imm32, Reg.RSP, 0x5008));
      p.add(I.createReg(Code.Push_r64, Reg.RCX));
    });
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[2]).toBe(302n);
  });
});
