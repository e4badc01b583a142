// The guest layout (guest/layout.ts) and the state builder (guest/build.ts): the default is the
// vectors' shared layout; the tables in memory decode to what the layout says; the page tables map
// what the mappings say; the state loads through contract's loader; and the machines it builds run
// the same on spec/ and impl/.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseDocument } from "../../contract/load.ts";
import { stateToJson, type ArchState } from "../../contract/state.ts";
import type { Engine } from "../../contract/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import {
  Assembler, Code, DEFAULT_LAYOUT, DEFAULT_MAPPINGS, GuestMemory, HALT_LOOP, PTE, Register as R, TSS_OFFSETS, abs, buildGuest, cr3Of, decodeDescriptor, decodeGate,
  defineLayout, encodeDescriptor, encodeGate, identity, layoutMemory, percpuOffset, selector, starFor, translate, type GuestLayout,
} from "../../guest/index.ts";
import { vectorPath } from "../helpers/fixture.ts";

const read64 = (m: GuestMemory) => (a: bigint) => m.read64(a);

/** Runs `state` on spec/ and impl/ for up to `steps` steps; both must stop alike in the same state. */
function runBoth(state: ArchState, steps: number): { state: ArchState; reason: string } {
  const engines: Engine[] = [new SpecEngine(), new ImplEngine()];
  const results = engines.map((e) => {
    e.load(state, "intel");
    const stop = e.run(steps);
    return { stop, state: e.state() };
  });
  const [spec, impl] = results as [(typeof results)[0], (typeof results)[0]];
  expect(impl.stop).toEqual(spec.stop);
  expect(JSON.stringify(stateToJson(impl.state))).toBe(JSON.stringify(stateToJson(spec.state)));
  return { state: spec.state, reason: spec.stop.reason };
}

describe("the default layout is the vectors' shared layout", () => {
  // A recorded vector's initial state holds the layout its README describes.
  const vector = parseDocument(readFileSync(vectorPath("syscall-from-ring0"), "utf8")).state;
  const guest = buildGuest(DEFAULT_LAYOUT, { start: { ring: 0 } });
  const bytes = (s: ArchState, from: bigint, length: number) => {
    const m = GuestMemory.from(s.memory);
    return [...m.read(from, length)];
  };

  it("GDT, IDT, TSS, handler stubs and page tables hold the same bytes as the vector's", () => {
    const l = DEFAULT_LAYOUT;
    expect(bytes(guest.state, l.gdt.base, l.gdt.limit + 1)).toEqual(bytes(vector, vector.gdtr.base, vector.gdtr.limit + 1));
    expect(bytes(guest.state, l.idt.base, l.idt.limit + 1)).toEqual(bytes(vector, vector.idtr.base, vector.idtr.limit + 1));
    expect(bytes(guest.state, l.tss.base, l.tss.limit + 1)).toEqual(bytes(vector, vector.tr.base, vector.tr.limit + 1));
    for (let v = 0; v < 256; v++) expect(bytes(guest.state, 0xb000n + 16n * BigInt(v), 16)).toEqual(bytes(vector, 0xb000n + 16n * BigInt(v), 16));
    expect(bytes(guest.state, 0x1000n, 8)).toEqual(bytes(vector, 0x1000n, 8));
    expect(bytes(guest.state, 0x2000n, 8)).toEqual(bytes(vector, 0x2000n, 8));
    // 0–6 MiB as the vector maps it; the layout adds an (empty) 4 KiB table for 6–8 MiB.
    expect(bytes(guest.state, 0x3000n, 24)).toEqual(bytes(vector, 0x3000n, 24));
  });

  it("registers: segments, descriptor tables, control registers and MSRs as the vector starts", () => {
    const pick = (s: ArchState) => ({
      cs: s.cs, ss: s.ss, ds: s.ds, es: s.es, fs: s.fs, tr: s.tr, ldtr: s.ldtr, gdtr: s.gdtr, idtr: s.idtr,
      cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer, star: s.star, lstar: s.lstar, cstar: s.cstar, rip: s.rip, rsp: s.gpr[4],
    });
    expect(pick(guest.state)).toEqual(pick(vector));
  });

  it("the state is one contract's loader accepts, unchanged by the round trip", () => {
    for (const ring of [0, 3] as const) {
      const state = buildGuest(DEFAULT_LAYOUT, { start: { ring } }).state;
      const text = JSON.stringify({ format: "ringspec-state/1", profile: "intel", ...stateToJson(state) });
      const loaded = parseDocument(text);
      expect(loaded.kind).toBe("state");
      expect(stateToJson(loaded.state)).toEqual(stateToJson(state));
    }
  });

  it("starts in the kernel with GS on the per-CPU area and in user mode with it in KERNEL_GS_BASE", () => {
    const k = buildGuest(DEFAULT_LAYOUT).state;
    const u = buildGuest(DEFAULT_LAYOUT, { start: { ring: 3 } }).state;
    expect({ cpl: k.cs.selector & 3, gs: k.gs.base, kgs: k.kernelGsBase, rflags: k.rflags }).toEqual({ cpl: 0, gs: 0x30000n, kgs: 0n, rflags: 2n });
    expect({ cs: u.cs.selector, ss: u.ss.selector, gs: u.gs.base, kgs: u.kernelGsBase, rip: u.rip, rsp: u.gpr[4], rflags: u.rflags })
      .toEqual({ cs: 0x2b, ss: 0x23, gs: 0n, kgs: 0x30000n, rip: 0x200000n, rsp: 0x210000n, rflags: 0x202n });
    expect(GuestMemory.from(k.memory).read64(0x30000n + percpuOffset(DEFAULT_LAYOUT, "kernelStack"))).toBe(0x20000n);
  });
});

/** Every table of `layout` read back from memory matches the layout's data. */
function expectTablesMatch(layout: GuestLayout): void {
  expectTablesMatchThrough(layout);
}

/** The same, reading the layout's linear addresses through its page tables (a test-local reader). */
function expectTablesMatchThrough(layout: GuestLayout): void {
  const physical = layoutMemory(layout);
  const cr3 = cr3Of(layout.paging);
  const memory = {
    read64: (linear: bigint) => physical.read64(translate(read64(physical), cr3, linear).physical ?? -1n),
    read: (linear: bigint, n: number) => Uint8Array.from({ length: n }, (_, i) => physical.read(translate(read64(physical), cr3, linear + BigInt(i)).physical ?? -1n, 1)[0]!),
  };
  for (const e of layout.gdt.entries) expect(decodeDescriptor(memory.read64(layout.gdt.base + BigInt(e.selector & ~7)))).toEqual(e.descriptor);
  const tss = layout.gdt.base + BigInt(layout.gdt.tssSelector & ~7);
  const low = decodeDescriptor(memory.read64(tss));
  expect({ type: low.type, s: low.s, p: low.p, limit: low.limit }).toEqual({ type: 11, s: 0, p: 1, limit: layout.tss.limit });
  expect(BigInt(low.base) | (memory.read64(tss + 8n) << 32n)).toBe(layout.tss.base);
  layout.idt.gates.forEach((g, v) => {
    const at = layout.idt.base + 16n * BigInt(v);
    expect(decodeGate(memory.read64(at), memory.read64(at + 8n))).toEqual(g);
  });
  expect(layout.idt.limit).toBe(16 * layout.idt.gates.length - 1);
  layout.tss.rsp.forEach((rsp, n) => expect(memory.read64(layout.tss.base + BigInt(TSS_OFFSETS.rsp(n)))).toBe(rsp));
  layout.tss.ist.forEach((top, i) => expect(memory.read64(layout.tss.base + BigInt(TSS_OFFSETS.ist(i + 1)))).toBe(top));
  if (layout.idt.stubs !== null) {
    const stubs = layout.idt.stubs;
    layout.idt.gates.forEach((_, v) => expect([...memory.read(stubs.base + BigInt(stubs.stride * v), HALT_LOOP.length)]).toEqual([...HALT_LOOP]));
  }
}

describe("descriptors in memory decode to what the layout says", () => {
  it("the default layout", () => expectTablesMatch(DEFAULT_LAYOUT));

  it("a layout with user gates, IST assignments, a trap gate and everything moved", () => {
    const l = defineLayout({
      gdt: { base: 0x70000n }, idt: { base: 0x71000n, userVectors: [3, 0x80], ist: { 2: 1, 8: 2 }, gates: { 0x80: { type: 15 } }, stubs: { base: 0x72000n, stride: 32, fill: 0x90 } },
      tss: { base: 0x73000n, ioMapBase: 0xffff }, stacks: { kernel: 0x80000n, ist: [0x81000n, 0x82000n] },
    });
    expectTablesMatch(l);
    expect(l.idt.gates.filter((g) => g.dpl === 3).length).toBe(2);
    expect([l.idt.gates[2]!.ist, l.idt.gates[8]!.ist, l.idt.gates[0x80]!.type, l.idt.gates[0x81]!.type]).toEqual([1, 2, 15, 14]);
    expect(l.tss.rsp[0]).toBe(0x80000n);
    expect(l.idt.gates[5]!.offset).toBe(0x72000n + 32n * 5n);
  });

  it("segment descriptors and gates survive encode → decode for any field values", () => {
    const descriptor = fc.record({
      type: fc.nat(15), s: fc.nat(1), dpl: fc.nat(3), p: fc.nat(1), avl: fc.nat(1), l: fc.nat(1), db: fc.nat(1), g: fc.nat(1),
      limit: fc.nat(0xfffff), base: fc.nat(0xffffffff),
    });
    fc.assert(fc.property(descriptor, (d) => { expect(decodeDescriptor(encodeDescriptor(d))).toEqual(d); }), { seed: 3 });
    const gate = fc.record({
      offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), selector: fc.nat(0xffff), ist: fc.nat(0xff), type: fc.nat(15), s: fc.nat(1),
      dpl: fc.nat(3), p: fc.nat(1), reserved: fc.nat(0xffffffff),
    });
    fc.assert(fc.property(gate, (g) => {
      const [low, high] = encodeGate(g);
      expect(decodeGate(low, high)).toEqual(g);
    }), { seed: 4 });
  });

  it("STAR follows the GDT's SYSCALL/SYSRET order, and a GDT out of that order is refused", () => {
    expect(DEFAULT_LAYOUT.msrs.star).toBe(0x0018_0008_0000_0000n);
    const swapped = DEFAULT_LAYOUT.gdt.entries.map((e) => (e.name === "userCode" ? { ...e, selector: 0x18 } : e.name === "userCode32" ? { ...e, selector: 0x28 } : e));
    expect(() => starFor(swapped)).toThrow(/SYSCALL\/SYSRET order: userCode must follow userData; userCode32 must precede userData/);
    expect(() => defineLayout({ gdt: { entries: swapped } })).toThrow(/or give msrs\.star/);
    expect(defineLayout({ gdt: { entries: swapped }, msrs: { star: 1n } }).msrs.star).toBe(1n);
    expect(selector(DEFAULT_LAYOUT, "userCode", 3)).toBe(0x2b);
  });
});

describe("page tables translate as the mappings say", () => {
  const MiB = 0x10_0000n;

  it("the default mappings: kernel 0–2 MiB and 4–6 MiB, user 2–4 MiB, 6–8 MiB not present, nothing above", () => {
    const memory = layoutMemory(DEFAULT_LAYOUT);
    const t = (linear: bigint) => translate(read64(memory), cr3Of(DEFAULT_LAYOUT.paging), linear);
    for (const linear of [0n, 0x10000n, 0x1f_ffffn, 4n * MiB, 6n * MiB - 1n]) expect([t(linear).physical, t(linear).user, t(linear).writable]).toEqual([linear, false, true]);
    for (const linear of [2n * MiB, 0x210000n - 8n, 0x220000n]) expect([t(linear).physical, t(linear).user]).toEqual([linear, true]);
    for (const linear of [6n * MiB, 8n * MiB - 1n, 8n * MiB, 1n << 39n, 0xffff_8000_0000_0000n]) expect(t(linear).physical).toBeNull();
    expect(t(6n * MiB).entries.map((e) => e.level)).toEqual(["PML4E", "PDPTE", "PDE", "PTE"]);
  });

  it("any mappings: 4 KiB, 2 MiB and 1 GiB pages, anywhere, with their rights, in extra address spaces too", () => {
    const mapping = fc.record({
      slot: fc.nat(63),
      page: fc.constantFrom("4K" as const, "2M" as const, "1G" as const),
      count: fc.integer({ min: 1, max: 3 }),
      frame: fc.nat(0xfff),
      user: fc.boolean(), writable: fc.boolean(), executable: fc.boolean(), high: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.uniqueArray(mapping, { selector: (m) => m.slot, minLength: 1, maxLength: 6 }), (list) => {
        // Slot n: its own 512 GiB region (a PML4 entry of its own), low or high half.
        const mappings = list.map((m) => {
          const size = { "4K": 0x1000n, "2M": 0x20_0000n, "1G": 0x4000_0000n }[m.page];
          const region = BigInt(m.slot + 1) << 39n;
          const linear = m.high ? 0xffff_8000_0000_0000n + region : region;
          return { ...identity(linear, size * BigInt(m.count), m.page, m.user, { writable: m.writable, executable: m.executable }), physical: BigInt(m.frame) * size };
        });
        const tables = Array.from({ length: 40 }, (_, i) => 0x100000n + 0x1000n * BigInt(i));
        const layout = defineLayout({ addressSpaces: [{ tables, mappings }] });
        const guest = buildGuest(layout);
        const memory = guest.memory;
        for (const m of mappings) {
          for (const off of [0n, m.size / 2n + 0x123n, m.size - 1n]) {
            const t = translate(read64(memory), guest.addressSpaces[0]!, m.linear + off);
            expect({ physical: t.physical, user: t.user, writable: t.writable, executable: t.executable })
              .toEqual({ physical: m.physical + off, user: m.user, writable: m.writable, executable: m.executable });
          }
          expect(translate(read64(memory), guest.addressSpaces[0]!, m.linear + m.size).physical === m.physical + m.size).toBe(false);
        }
        // The initial address space is untouched by the extra one.
        expect(translate(read64(memory), guest.state.cr3, mappings[0]!.linear).physical).toBeNull();
      }),
      { numRuns: 60, seed: 5 },
    );
  });

  it("a layout write into a page-table frame remaps what later writes go through (no remembered walk outlives it)", () => {
    // 6–8 MiB through the 4 KiB table at 0x4000, present. The per-CPU fields (base 0, written in
    // order) write at 6 MiB, then replace the PTE of 6 MiB (at 0x4000, identity-mapped) to point
    // at 0x50000, then write at 6 MiB + 8: a fresh walk sends that last write to 0x50008.
    const remapped = 0x50000n | PTE.P | PTE.RW;
    const layout = defineLayout({
      paging: { mappings: [...DEFAULT_MAPPINGS.slice(0, 3), identity(6n * MiB, 2n * MiB, "4K", false)] },
      percpu: {
        base: 0n,
        fields: [
          { name: "before", offset: 0x60_0000, value: 0x1111n },
          { name: "pte", offset: 0x4000, value: remapped },
          { name: "after", offset: 0x60_0008, value: 0x2222n },
        ],
      },
    });
    const memory = layoutMemory(layout);
    const cr3 = cr3Of(layout.paging);
    expect(memory.read64(0x4000n)).toBe(remapped);
    expect(translate(read64(memory), cr3, 6n * MiB + 8n).physical).toBe(0x50008n);
    expect([memory.read64(6n * MiB), memory.read64(0x50008n), memory.read64(6n * MiB + 8n)]).toEqual([0x1111n, 0x2222n, 0n]);
  });

  it("refuses overlapping or misaligned mappings and an exhausted table pool", () => {
    expect(() => layoutMemory(defineLayout({ extraMappings: [identity(0x1000n, 0x1000n, "4K", false)] }))).toThrow(/already a large page/);
    expect(() => layoutMemory(defineLayout({ extraMappings: [identity(0x2000_0000n, 0x1000n, "2M", false)] }))).toThrow(/not aligned/);
    expect(() => layoutMemory(defineLayout({ paging: { tables: [0x1000n, 0x2000n] } }))).toThrow(/out of table frames/);
    expect(() => layoutMemory(defineLayout({ extraMappings: [identity(0x40_0000n, 0x20_0000n, "2M", false)] }))).toThrow(/mapped twice/);
  });
});

describe("guests built from the layout run alike on spec/ and impl/", () => {
  it("a SYSCALL round trip through the per-CPU area behind GS, with the symbol map", () => {
    const layout = defineLayout({ msrs: { fmask: 0x47700n } });
    const asm = new Assembler();
    asm.section(layout.code.user, { name: "user" })
      .label("user_loop").emit(Code.Mov_r32_imm32, R.EAX, 39).emit(Code.Syscall).emit(Code.Inc_rm64, R.R12).emit(Code.Cmp_rm64_imm8, R.R12, 3).emit(Code.Jne_rel8_64, "user_loop")
      .emit(Code.Hlt); // #GP at CPL 3: ends in the #GP stub
    asm.section(0x40000n, { name: "kernel" })
      .label("syscall_entry")
      .emit(Code.Swapgs)
      .emit(Code.Mov_rm64_r64, abs(percpuOffset(layout, "userRsp"), R.GS), R.RSP)
      .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(layout, "kernelStack"), R.GS))
      .emit(Code.Push_r64, R.RCX)
      .emit(Code.Mov_r32_imm32, R.EAX, 1234) // the "result"
      .emit(Code.Pop_r64, R.RCX)
      .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(layout, "userRsp"), R.GS))
      .emit(Code.Swapgs)
      .emit(Code.Sysretq);
    const image = asm.assemble();
    const guest = buildGuest(defineLayout({ msrs: { fmask: 0x47700n, lstar: image.symbol("syscall_entry") } }), { code: image, start: { ring: 3 } });
    expect(guest.symbols.get("syscall_entry")).toBe(0x40000n);
    const { state, reason } = runBoth(guest.state, 200);
    expect(reason).toBe("hlt");
    expect({ r12: state.gpr[12], rax: state.gpr[0], rsp: state.gpr[4], gs: state.gs.base, kgs: state.kernelGsBase, cpl: state.cs.selector & 3 })
      .toEqual({ r12: 3n, rax: 1234n, rsp: layout.stacks.kernel - 48n, gs: 0n, kgs: 0x30000n, cpl: 0 }); // #GP frame with error code
    expect(state.rip).toBe(DEFAULT_LAYOUT.idt.gates[13]!.offset + 1n); // halted in the #GP stub
  });

  it("INT 0x80 through a DPL 3 gate, an NMI-style vector on its IST stack, and a user #PF on a kernel page", () => {
    const layout = defineLayout({ idt: { userVectors: [0x80], ist: { 0x80: 3 } } });
    const asm = new Assembler();
    asm.section(layout.code.user).emit(Code.Int_imm8, 0x80);
    const int80 = runBoth(buildGuest(layout, { code: asm.assemble(), start: { ring: 3 } }).state, 10).state;
    expect({ rip: int80.rip, rsp: int80.gpr[4] }).toEqual({ rip: 0xb000n + 16n * 0x80n + 1n, rsp: layout.tss.ist[2]! - 40n });
    const fault = new Assembler();
    fault.section(layout.code.user).emit(Code.Mov_r64_rm64, R.RAX, abs(0x30000n));
    const pf = runBoth(buildGuest(layout, { code: fault.assemble(), start: { ring: 3 } }).state, 10).state;
    const frame = GuestMemory.from(pf.memory);
    expect({ rip: pf.rip, cr2: pf.cr2, errorCode: frame.read64(pf.gpr[4]!), rsp: pf.gpr[4] })
      .toEqual({ rip: 0xb000n + 16n * 14n + 1n, cr2: 0x30000n, errorCode: BigInt(PTE.P | PTE.US), rsp: layout.stacks.kernel - 48n });
  });

  it("a kernel in the upper half: the layout's linear addresses are written through its page tables", () => {
    const MiB = 0x10_0000n;
    const kernelBase = 0xffff_ffff_8000_0000n;
    const layout = defineLayout({
      paging: {
        tables: Array.from({ length: 16 }, (_, i) => 0x10_0000n + 0x1000n * BigInt(i)),
        mappings: [
          { ...identity(kernelBase, 2n * MiB, "4K", false), physical: 0n },
          identity(0x40_0000n, 2n * MiB, "2M", true),
        ],
      },
      gdt: { base: kernelBase + 0x8000n },
      idt: { base: kernelBase + 0x9000n, stubs: null, handler: () => kernelBase + 0x11000n, userVectors: [3] },
      tss: { base: kernelBase + 0xa000n }, stacks: { kernel: kernelBase + 0x20000n, user: 0x50_0000n }, percpu: { base: kernelBase + 0x30000n },
      code: { user: 0x40_0000n, kernel: kernelBase + 0x10000n }, msrs: { lstar: kernelBase + 0x12000n }, haltPads: [kernelBase + 0x11000n],
    });
    expectTablesMatchThrough(layout);
    const asm = new Assembler();
    asm.section(0x40_0000n, { name: "user" }).emit(Code.Syscall).emit(Code.Int3);
    asm.section(kernelBase + 0x12000n, { name: "entry" }).emit(Code.Swapgs).emit(Code.Mov_r64_rm64, R.RBX, abs(8n, R.GS)).emit(Code.Swapgs).emit(Code.Sysretq);
    const guest = buildGuest(layout, { code: asm.assemble(), start: { ring: 3 } });
    // Nothing of the kernel at its linear addresses in physical memory: all of it is at 0–2 MiB.
    expect([...guest.memory.pages.keys()].every((n) => n < 0x200 || (n >= 0x400 && n < 0x600))).toBe(true);
    const out = runBoth(guest.state, 20).state;
    expect({ rip: out.rip, cpl: out.cs.selector & 3, rsp: out.gpr[4], rbx: out.gpr[3] })
      .toEqual({ rip: kernelBase + 0x11001n, cpl: 0, rsp: kernelBase + 0x20000n - 40n, rbx: kernelBase + 0x20000n });
  });

  it("says which part of the layout lands on an unmapped address", () => {
    expect(() => layoutMemory(defineLayout({ percpu: { base: 0x900000n } }))).toThrow(/per-CPU field kernelStack at 0x900008: the linear address is not mapped/);
    const asm = new Assembler();
    asm.section(0x600000n, { name: "nowhere" }).emit(Code.Hlt);
    expect(() => buildGuest(DEFAULT_LAYOUT, { code: asm.assemble() })).toThrow(/section nowhere at 0x600000: the linear address is not mapped/);
  });
});
