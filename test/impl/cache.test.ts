// Directed cache-invisibility tests: each scenario asserts the architectural outcome (what an
// uncached machine does) and that every engine configuration produces exactly the same state.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { Code, Instruction as I, Program, Reg, icedAbs as abs, icedMem as mem } from "../../guest/index.ts";
import { gate } from "../../guest/index.ts";
import { RAX, RBX, RCX, baseMemory, layoutState, runAll, read64 } from "./helpers.ts";
import type { Memory } from "./helpers.ts";

function asm(rip: bigint, build: (p: Program) => void): Uint8Array {
  const p = new Program(rip);
  build(p);
  return p.encode();
}



function kernel(code: Uint8Array, setup?: (m: Memory) => void, regs: Record<number, bigint> = {}): ArchState {
  const m = baseMemory();
  m.write(0x10000n, code);
  setup?.(m);
  const s = layoutState(m);
  const gpr = [...s.gpr];
  for (const [k, v] of Object.entries(regs)) gpr[Number(k)] = v;
  return { ...s, gpr };
}

const HLT = (p: Program) => p.add(I.create(Code.Hlt));

describe("decoded-block cache and compiled blocks: self-modifying code", () => {
  it("a store into the same block changes the instruction executed next (every iteration)", () => {
    // loop: mov [rip+imm8 of the add], cl; add rax, imm8; dec ecx; jnz loop; hlt
    // The add's immediate is the byte after 48 83 C0; it is patched with CL before each add.
    const code = [
      0x88, 0x0d, 0x03, 0x00, 0x00, 0x00, // mov [rip+3], cl  → the imm8 of the add below
      0x48, 0x83, 0xc0, 0x00, //             add rax, imm8 (imm8 patched)
      0xff, 0xc9, //                          dec ecx
      0x75, 0xf2, //                          jnz loop
      0xf4,
    ];
    const out = runAll(kernel(Uint8Array.from(code), undefined, { [RCX]: 10n }), 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RAX]).toBe(55n); // 10 + 9 + ... + 1
  });

  it("a store into another code page changes the routine called next", () => {
    // 0x11000: mov eax, imm32; ret. The caller patches imm32 with ECX, calls, accumulates.
    const code = asm(0x10000n, (p) => {
      const loop = p.here();
      p.add(I.createMemReg(Code.Mov_rm32_r32, abs(0x11001n), Reg.ECX));
      p.add(I.createBranch(Code.Call_rel32_64, 0x11000n));
      p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RBX, Reg.RAX));
      p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
      p.add(I.createBranch(Code.Jne_rel8_64, loop));
      HLT(p);
    });
    const s = kernel(code, (m) => m.write(0x11000n, [0xb8, 0, 0, 0, 0, 0xc3]), { [RCX]: 20n });
    const out = runAll(s, 2000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(210n);
  });

  it("code written through a second mapping of the same frame is seen", () => {
    // The frame of page 0x10000 is also mapped at 0x610000 (PT at 0x4000, entry 0x10, R/W);
    // the loop stores through the alias into its own add immediate.
    const code = [
      0x88, 0x0c, 0x25, 0x0d, 0x00, 0x61, 0x00, // mov [0x61000d], cl  (alias of 0x1000d)
      0x90, 0x90, 0x90,
      0x48, 0x83, 0xc0, 0x00, //                  0x1000a: add rax, imm8 (imm at 0x1000d)
      0xff, 0xc9,
      0x75, 0xee,
      0xf4,
    ];
    const s = kernel(Uint8Array.from(code), (m) => m.write64(0x4000n + 8n * 0x10n, 0x10000n | 3n), { [RCX]: 12n });
    const out = runAll(s, 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RAX]).toBe(78n);
  });
});

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

describe("system-table cache: IDT, GDT and TSS rewrites between deliveries", () => {
  // Handler at 0x13000: inc rbx; iretq. Handler at 0x13100: add rbx, 0x10; iretq.
  const handlers = (m: Memory) => {
    m.write(0x13000n, [0x48, 0xff, 0xc3, 0x48, 0xcf]);
    m.write(0x13100n, [0x48, 0x83, 0xc3, 0x10, 0x48, 0xcf]);
    const [lo, hi] = gate(0x13000n);
    m.write64(0x9400n, lo); // vector 0x40
    m.write64(0x9408n, hi);
  };

  it("a rewritten gate target is used by the next INT", () => {
    const [lo] = gate(0x13100n);
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, Number(lo & 0xffffffffn)));
      p.add(I.createMemReg(Code.Mov_rm32_r32, abs(0x9400n), Reg.EAX));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, handlers), 200);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(2n + 0x20n);
  });

  it("a gate made not present between deliveries raises #NP", () => {
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMemI32(Code.Mov_rm8_imm8, abs(0x9405n), 0x0e)); // P = 0
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, handlers), 200);
    expect(out.state.gpr[RBX]).toBe(2n);
    expect(out.state.rip).toBe(0xb0b1n); // #NP handler
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x202n); // 0x40·8 + 2, EXT = 0
  });

  it("a code descriptor made not present between deliveries raises #NP(selector)", () => {
    // The gate uses selector 0x40 (a copy of the kernel CS at GDT index 8).
    const setup = (m: Memory) => {
      handlers(m);
      const [lo, hi] = gate(0x13000n, { selector: 0x40 });
      m.write64(0x9400n, lo);
      m.write64(0x9408n, hi);
      m.write64(0x8040n, 0x00af9b000000ffffn);
    };
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMemI32(Code.Mov_rm8_imm8, abs(0x8045n), 0x1b)); // type 0xb, S, P = 0
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const s = kernel(code, setup);
    const out = runAll({ ...s, gdtr: { base: 0x8000n, limit: 0x4f } }, 200);
    expect(out.state.gpr[RBX]).toBe(1n);
    expect(out.state.rip).toBe(0xb0b1n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x40n);
  });

  it("a new RSP0 in the TSS is used by the next ring-3 → ring-0 delivery", () => {
    // User code: int 0x40 (DPL 3 gate) twice; kernel handler writes RSP0 ← 0x1e000 then IRETs.
    const setup = (m: Memory) => {
      const [lo, hi] = gate(0x13200n, { dpl: 3 });
      m.write64(0x9400n, lo);
      m.write64(0x9408n, hi);
      m.write(0x13200n, [
        0x48, 0x89, 0xe0, //                               mov rax, rsp
        0x48, 0x89, 0x04, 0xdd, 0x00, 0x01, 0x03, 0x00, // mov [0x30100 + rbx·8], rax
        0x48, 0xff, 0xc3, //                               inc rbx
        0x48, 0xc7, 0x04, 0x25, 0x04, 0xa0, 0x00, 0x00, 0x00, 0xe0, 0x01, 0x00, // mov qword [0xa004], 0x1e000
        0x48, 0xcf,
      ]);
      m.write(0x200000n, [0xcd, 0x40, 0xcd, 0x40, 0xeb, 0xfe]);
    };
    const m = baseMemory();
    setup(m);
    const out = runAll(layoutState(m, { user: true }), 60);
    expect(out.state.gpr[RBX]).toBe(2n);
    expect(read64(out.state, 0x30100n)).toBe(0x20000n - 40n);
    expect(read64(out.state, 0x30108n)).toBe(0x1e000n - 40n);
  });

  it("LIDT to a second table is used by the next delivery", () => {
    // Second IDT at 0x3a000 with vector 0x40 → 0x13100.
    const setup = (m: Memory) => {
      handlers(m);
      const [lo, hi] = gate(0x13100n);
      m.write64(0x3a400n, lo);
      m.write64(0x3a408n, hi);
      m.write(0x3b000n, [0xff, 0x0f, ...[0x00, 0xa0, 0x03, 0, 0, 0, 0, 0]]);
    };
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMem(Code.Lidt_m1664, abs(0x3b000n)));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, setup), 100);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(0x11n);
    expect(out.state.idtr.base).toBe(0x3a000n);
  });
});

export { mem };
