// The software TLB (impl/memory/tlb.ts) is invisible: page-table edits (with and without INVLPG),
// A/D bits the guest clears, a PTE made read-only after a read, CR3 switches and CR4.SMAP/SMEP
// toggles all take effect on the next access, as on a machine that walks every time.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Reg, icedAbs as abs } from "../../../guest/index.ts";
import { HLT, RAX, RBX, RCX, asm, kernel, read64, type Memory } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("TLB: page-table edits, A/D bits, CR3, INVLPG", () => {
  const PTE = 0x4000n; // page table for 0x600000–0x7fffff
  const frames = (m: Memory) => {
    m.write64(0x700000n, 0x11n);
    m.write64(0x701000n, 0x22n);
    m.write64(0x702000n, 0x33n);
  };

  for (const invlpg of [false, true]) {
    it(`remapping a page is seen at once ${invlpg ? "with" : "without"} INVLPG`, () => {
      const code = asm(0x10000n, (p) => {
        const loop = p.here();
        // PTE[0] ← 0x700000 + 0x1000·(rcx % 3) | P|RW
        p.add(I.createRegReg(Code.Mov_r64_rm64, Reg.RAX, Reg.RCX));
        p.add(I.createRegI32(Code.And_rm64_imm8, Reg.RAX, 1));
        p.add(I.createRegI32(Code.Shl_rm64_imm8, Reg.RAX, 12));
        p.add(I.createRegI32(Code.Add_rm64_imm32, Reg.RAX, 0x700003));
        p.add(I.createMemReg(Code.Mov_rm64_r64, abs(PTE), Reg.RAX));
        if (invlpg) p.add(I.createMem(Code.Invlpg_m, abs(0x600000n)));
        p.add(I.createRegMem(Code.Add_r64_rm64, Reg.RBX, abs(0x600000n)));
        p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
        p.add(I.createBranch(Code.Jne_rel8_64, loop));
        HLT(p);
      });
      const out = runAll(kernel(code, frames, { [RCX]: 10n }), 1000);
      expect(out.stop.reason).toBe("hlt");
      // rcx 10..1: odd → 0x22, even → 0x11
      expect(out.state.gpr[RBX]).toBe(5n * 0x22n + 5n * 0x11n);
    });
  }

  it("A and D are set again after the guest clears them (no TLB hit may skip the update)", () => {
    const code = asm(0x10000n, (p) => {
      const loop = p.here();
      p.add(I.createMemI32(Code.Mov_rm64_imm32, abs(PTE), 0x700003)); // A and D clear
      p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, abs(0x600000n))); // read: sets A
      p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RDX, abs(PTE)));
      p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RBX, Reg.RDX)); // accumulate the PTE as read back
      p.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x600008n), Reg.RAX)); // write: sets D
      p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RDX, abs(PTE)));
      p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RBX, Reg.RDX));
      p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
      p.add(I.createBranch(Code.Jne_rel8_64, loop));
      HLT(p);
    });
    const out = runAll(kernel(code, frames, { [RCX]: 6n }), 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(6n * (0x700023n + 0x700063n));
    expect(read64(out.state, PTE)).toBe(0x700063n);
    // the PD entry (0x3018) and upper levels got A too
    expect(read64(out.state, 0x3018n) & 0x20n).toBe(0x20n);
  });

  it("a write to a read-only page after a read through the TLB faults (#PF P|W)", () => {
    const code = asm(0x10000n, (p) => {
      p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, abs(0x600000n)));
      p.add(I.createMemI32(Code.Mov_rm64_imm32, abs(PTE), 0x700001)); // now read-only
      p.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x600000n), Reg.RAX));
      HLT(p);
    });
    const out = runAll(kernel(code, (m) => {
      frames(m);
      m.write64(PTE, 0x700003n);
    }), 100);
    expect(out.state.gpr[RAX]).toBe(0x11n);
    expect(out.state.rip).toBe(0xb0e1n); // #PF handler
    expect(out.state.cr2).toBe(0x600000n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(3n); // error code P|W (CR0.WP = 1)
  });

  it("switching CR3 between two address spaces is seen by the next access", () => {
    // Second space: PML4 0x5000 → PDPT 0x6000 → PD 0x7000 (low 6 MiB as in the first), 6 MiB
    // through a page table at 0xc000 mapping 0x600000 → frame 0x702.
    const setup = (m: Memory) => {
      frames(m);
      m.write64(PTE, 0x700003n);
      m.write64(0x5000n, 0x6000n | 7n);
      m.write64(0x6000n, 0x7000n | 7n);
      m.write64(0x7000n, 0x83n);
      m.write64(0x7008n, 0x200087n);
      m.write64(0x7010n, 0x400083n);
      m.write64(0x7018n, 0xc000n | 7n);
      m.write64(0xc000n, 0x702003n);
    };
    const code = asm(0x10000n, (p) => {
      const loop = p.here();
      p.add(I.createRegMem(Code.Add_r64_rm64, Reg.RBX, abs(0x600000n)));
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, 0x5000));
      p.add(I.createRegReg(Code.Mov_cr_r64, Reg.CR3, Reg.RAX));
      p.add(I.createRegMem(Code.Add_r64_rm64, Reg.RBX, abs(0x600000n)));
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, 0x1000));
      p.add(I.createRegReg(Code.Mov_cr_r64, Reg.CR3, Reg.RAX));
      p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
      p.add(I.createBranch(Code.Jne_rel8_64, loop));
      HLT(p);
    });
    const out = runAll(kernel(code, setup, { [RCX]: 8n }), 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(8n * (0x11n + 0x33n));
  });

  it("CR4.SMAP and SMEP toggles take effect on the next access", () => {
    const code = asm(0x10000n, (p) => {
      p.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RBX, abs(0x200100n))); // user page, SMAP off: fine
      p.add(I.create(Code.Stac));
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, 0x200620));
      p.add(I.createRegReg(Code.Mov_cr_r64, Reg.CR4, Reg.RAX));
      p.add(I.createRegMem(Code.Add_r64_rm64, Reg.RBX, abs(0x200100n))); // SMAP on, AC = 1: fine
      p.add(I.create(Code.Clac));
      p.add(I.createRegMem(Code.Add_r64_rm64, Reg.RBX, abs(0x200100n))); // SMAP on, AC = 0: #PF(P)
      HLT(p);
    });
    const s = kernel(code, (m) => m.write64(0x200100n, 0x5n));
    const out = runAll(s, 100);
    expect(out.state.gpr[RBX]).toBe(0xan);
    expect(out.state.rip).toBe(0xb0e1n);
    expect(out.state.cr2).toBe(0x200100n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(1n);

    const smep = asm(0x10000n, (p) => {
      p.add(I.createBranch(Code.Call_rel32_64, 0x200000n)); // user page, SMEP off: runs
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, 0x100620));
      p.add(I.createRegReg(Code.Mov_cr_r64, Reg.CR4, Reg.RAX));
      p.add(I.createBranch(Code.Call_rel32_64, 0x200000n)); // SMEP on: #PF(P|I)
      HLT(p);
    });
    const s2 = kernel(smep, (m) => m.write(0x200000n, [0x48, 0xff, 0xc3, 0xc3])); // inc rbx; ret
    const out2 = runAll(s2, 100);
    expect(out2.state.gpr[RBX]).toBe(1n);
    expect(out2.state.cr2).toBe(0x200000n);
    // The CALL pushed its return address; the fault frame sits below the 16-aligned 0x1fff0.
    expect(read64(out2.state, 0x1fff0n - 48n)).toBe(0x11n);
  });
});
