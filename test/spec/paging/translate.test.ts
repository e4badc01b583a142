// 4-level paging (SDM Vol. 3A §4.5–4.8): translate() called directly on machines whose tables map
// LINEAR (test/spec/paging/tables.ts).
import { describe, expect, it } from "vitest";
import "../../../spec/index.ts";
import type { Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { CR0, CR4, EFER, RFLAGS } from "../../../spec/machine/registers.ts";
import type { Access, AccessKind, AccessMode } from "../../../spec/paging/access.ts";
import { translate, type Translation } from "../../../spec/paging/translate.ts";
import { ruleById } from "../../../spec/rule-catalogue.ts";
import { vectorMachine } from "../../helpers/fixture.ts";
import {
  A, ALL, D, ENTRY, entryAt, FRAME, FRAME_1G, FRAME_2M, kernelWith, LEVEL_NAMES, LINEAR, P, PS, RW, US, userWith, writeEntry, XD,
} from "./tables.ts";

const access = (kind: AccessKind, mode: AccessMode): Access => ({ kind, mode });
const READ_S = access("read", "supervisor");
const WRITE_S = access("write", "supervisor");
const FETCH_S = access("execute", "supervisor");
const READ_U = access("read", "user");
const WRITE_U = access("write", "user");
const FETCH_U = access("execute", "user");

function run(m: Machine, a: Access, linear = LINEAR): Translation | Fault {
  return translate(m, m.memory, linear, a);
}

function ok(m: Machine, a: Access, linear = LINEAR): Translation {
  const t = run(m, a, linear);
  if ("kind" in t) throw new Error(`expected a translation, got #PF(0x${t.errorCode?.toString(16)}) [${t.rule}]`);
  return t;
}

function pf(m: Machine, a: Access, linear = LINEAR): Fault {
  const t = run(m, a, linear);
  if (!("kind" in t)) throw new Error(`expected #PF, got physical 0x${t.physical.toString(16)}`);
  expect(t.vector).toBe(14);
  return t;
}

const withCr0 = (m: Machine, set: bigint, clear = 0n): Machine => ({ ...m, cr0: (m.cr0 | set) & ~clear });
const withCr4 = (m: Machine, set: bigint, clear = 0n): Machine => ({ ...m, cr4: (m.cr4 | set) & ~clear });
const withEfer = (m: Machine, set: bigint, clear = 0n): Machine => ({ ...m, efer: (m.efer | set) & ~clear });
const withAc = (m: Machine, on: boolean): Machine => ({ ...m, rflags: on ? m.rflags | RFLAGS.AC : m.rflags & ~RFLAGS.AC });
const noNx = (m: Machine): Machine => withEfer(m, 0n, EFER.NXE);

describe("paging rules are registered", () => {
  it("every paging rule the walk and the access checks use is in the registry", () => {
    for (const id of ["PF-01", "PF-02", "PF-03", "PF-04", "PF-05", "SMEP-01", "SMAP-01", "SMAP-02", "SMAP-06", "CANON-01", "CANON-GP", "CANON-SS", "CANON-FETCH",
      "PF-NP", "PF-RSVD-PHYS", "PF-RSVD-XD", "PF-RSVD-PML4E-PS", "PF-RSVD-PS1G", "PF-RSVD-PS2M", "PF-04-US", "PF-04-RW", "PF-04-WP", "PF-04-NX", "PF-ACCESSED", "PF-DIRTY"])
      expect(ruleById(id), id).toBeDefined();
  });
});

describe("translation (SDM Vol. 3A §4.5)", () => {
  it("PF-04: a 4 KiB page maps LINEAR to its frame plus the page offset, using each level's index", () => {
    expect(ok(kernelWith(), READ_S).physical).toBe(FRAME | 0x123n);
  });

  it("PF-04: a 2 MiB page (PS = 1 in the PDE) keeps linear bits 20:0", () => {
    expect(ok(kernelWith({}, "2M"), READ_S).physical).toBe(FRAME_2M | (LINEAR & 0x1f_ffffn));
  });

  it("PF-04: a 1 GiB page (PS = 1 in the PDPTE) keeps linear bits 29:0", () => {
    expect(ok(kernelWith({}, "1G"), READ_S).physical).toBe(FRAME_1G | (LINEAR & 0x3fff_ffffn));
  });

  it("PF-04: the PAT bit (12) of a large page is not part of the frame address", () => {
    let m = kernelWith({}, "2M");
    m = { ...m, memory: writeEntry(m.memory, ENTRY.PDE, FRAME_2M | PS | ALL | 0x1000n) };
    expect(ok(m, READ_S).physical).toBe(FRAME_2M | (LINEAR & 0x1f_ffffn));
  });

  it("PF-04: the fixture's identity map translates (2–4 MiB user, 0–2 MiB supervisor)", () => {
    const m = userWith();
    const fixture = { ...m, cr3: 0x1000n };
    expect(ok(fixture, READ_U, 0x200010n).physical).toBe(0x200010n);
    expect(pf(fixture, READ_U, 0x30010n).errorCode).toBe(0x5);
  });

  it("PF-04: translate is pure: the input memory is unchanged and a repeat gives the same answer", () => {
    const m = kernelWith();
    const before = entryAt(m.memory, ENTRY.PTE);
    const first = ok(m, WRITE_S);
    expect(entryAt(m.memory, ENTRY.PTE)).toBe(before);
    const second = ok(m, WRITE_S);
    expect(second.physical).toBe(first.physical);
    expect(entryAt(second.memory, ENTRY.PTE)).toBe(entryAt(first.memory, ENTRY.PTE));
  });
});

describe("#PF error code (PF-02) and CR2 (PF-01)", () => {
  it.each(LEVEL_NAMES)("PF-NP: a not-present %s gives P = 0 and CR2 = the linear address", (level) => {
    const f = pf(kernelWith({ [level]: RW | US }), READ_S);
    expect(f.errorCode).toBe(0);
    expect(f.address).toBe(LINEAR);
    expect(f.rule).toBe("PF-NP");
  });

  it("PF-01: CR2 is the full 64-bit linear address for an upper-half address", () => {
    const upper = 0xffff_8000_0000_0000n | LINEAR;
    const f = pf(kernelWith(), READ_S, upper);
    // Index 256+3 at the PML4 is not mapped: not present.
    expect(f.address).toBe(upper);
    expect(f.errorCode).toBe(0);
  });

  it("PF-02: W/R = 1 for a write, 0 for a read (not-present page)", () => {
    expect(pf(kernelWith({ PTE: 0n }), WRITE_S).errorCode).toBe(0x2);
    expect(pf(kernelWith({ PTE: 0n }), READ_S).errorCode).toBe(0x0);
  });

  it("PF-02: U/S = 1 for a user-mode access (pf-user-read-notpresent: 0x4, pf-user-write-notpresent: 0x6)", () => {
    expect(pf(userWith({ PTE: 0n }), READ_U).errorCode).toBe(0x4);
    expect(pf(userWith({ PTE: 0n }), WRITE_U).errorCode).toBe(0x6);
  });

  it("PF-02: P = 1 for a protection violation (pf-user-read-supervisor: 0x5)", () => {
    expect(pf(userWith({ PTE: P | RW }), READ_U).errorCode).toBe(0x5);
  });

  it("PF-02: RSVD = 1 with P = 1 for a reserved bit (pf-reserved-bit: 0x9; QEMU's 0x8 is a recorded deviation)", () => {
    const f = pf(kernelWith({ PTE: ALL | (1n << 51n) }), READ_S);
    expect(f.errorCode).toBe(0x9);
    expect(f.rule).toBe("PF-RSVD-PHYS");
  });

  it("PF-02: I/D = 1 for a fetch when EFER.NXE = 1, also on a not-present page", () => {
    expect(pf(kernelWith({ PTE: 0n }), FETCH_S).errorCode).toBe(0x10);
    expect(pf(userWith({ PTE: 0n }), FETCH_U).errorCode).toBe(0x14);
  });

  it("PF-02: I/D = 0 for a fetch when EFER.NXE = 0 and CR4.SMEP = 0", () => {
    expect(pf(noNx(kernelWith({ PTE: 0n })), FETCH_S).errorCode).toBe(0x0);
    expect(pf(noNx(userWith({ PTE: P | RW })), FETCH_U).errorCode).toBe(0x5);
  });

  it("PF-02: I/D = 1 for a fetch when EFER.NXE = 0 but CR4.SMEP = 1", () => {
    expect(pf(withCr4(noNx(kernelWith({ PTE: 0n })), CR4.SMEP), FETCH_S).errorCode).toBe(0x10);
  });

  it("PF-02: I/D stays 0 for data accesses even with NXE = 1 and SMEP = 1", () => {
    expect(pf(withCr4(kernelWith({ PTE: 0n }), CR4.SMEP), READ_S).errorCode).toBe(0x0);
  });

  it("PF-03: an implicit supervisor access at CPL 3 reports U/S = 0", () => {
    const m = userWith({ PTE: 0n });
    expect(pf(m, access("read", "implicit")).errorCode).toBe(0x0);
    expect(pf(m, access("write", "implicit")).errorCode).toBe(0x2);
  });

  it("PF-03: a supervisor write at CPL 0 to a not-present page reports W/R = 1, U/S = 0 (frame pushes)", () => {
    expect(pf(kernelWith({ PDE: 0n }), WRITE_S).errorCode).toBe(0x2);
  });

  it("PF-NP: a not-present entry ends the walk before reserved bits in that entry are looked at", () => {
    const f = pf(kernelWith({ PDPTE: RW | (1n << 51n) | (1n << 7n) }), READ_S);
    expect(f.errorCode).toBe(0);
  });

  it("PF-NP: a not-present entry below a present one wins over the rights of the levels above", () => {
    expect(pf(userWith({ PML4E: P, PTE: 0n }), WRITE_U).errorCode).toBe(0x6);
  });
});

describe("access rights (PF-04, SDM Vol. 3A §4.6.1)", () => {
  it.each(LEVEL_NAMES)("PF-04-US: a user read with U/S = 0 in the %s faults P|U (0x5)", (level) => {
    const f = pf(userWith({ [level]: P | RW }), READ_U);
    expect(f.errorCode).toBe(0x5);
    expect(f.rule).toBe("PF-04-US");
  });

  it("PF-04-US: user fetch and write to a supervisor page fault too (0x15, 0x7)", () => {
    expect(pf(userWith({ PDE: P | RW }), FETCH_U).errorCode).toBe(0x15);
    expect(pf(userWith({ PDE: P | RW }), WRITE_U).errorCode).toBe(0x7);
  });

  it.each(LEVEL_NAMES)("PF-04-RW: a user write with R/W = 0 in the %s faults P|W|U (0x7) with CR0.WP = 1 and 0", (level) => {
    const m = userWith({ [level]: P | US });
    expect(pf(m, WRITE_U).errorCode).toBe(0x7);
    expect(pf(m, WRITE_U).rule).toBe("PF-04-RW");
    expect(pf(withCr0(m, 0n, CR0.WP), WRITE_U).errorCode).toBe(0x7);
    expect(ok(m, READ_U).physical).toBe(FRAME | 0x123n);
  });

  it.each(LEVEL_NAMES)("PF-04-WP: a supervisor write with R/W = 0 in the %s faults P|W (0x3) only with CR0.WP = 1", (level) => {
    const m = kernelWith({ [level]: P | US });
    const f = pf(m, WRITE_S);
    expect(f.errorCode).toBe(0x3);
    expect(f.rule).toBe("PF-04-WP");
    expect(ok(withCr0(m, 0n, CR0.WP), WRITE_S).physical).toBe(FRAME | 0x123n);
  });

  it("PF-04-WP: pf-kernel-write-ro-wp1: CPL 0 write to a supervisor read-only page → 0x3, CR2 = 0x402000", () => {
    const m = vectorMachine("pf-kernel-write-ro-wp1");
    const f = pf(m, WRITE_S, 0x402000n);
    expect(f.errorCode).toBe(0x3);
    expect(f.address).toBe(0x402000n);
  });

  it("PF-04-WP: implicit supervisor writes obey CR0.WP too, at CPL 0 and CPL 3", () => {
    expect(pf(kernelWith({ PTE: P }), access("write", "implicit")).errorCode).toBe(0x3);
    expect(pf(userWith({ PTE: P | US }), access("write", "implicit")).errorCode).toBe(0x3);
    expect("kind" in run(withCr0(userWith({ PTE: P | US }), 0n, CR0.WP), access("write", "implicit"))).toBe(false);
  });

  it("PF-04: a supervisor read of a supervisor read-only page is allowed", () => {
    expect(ok(kernelWith({ PTE: P }), READ_S).physical).toBe(FRAME | 0x123n);
  });

  it.each(LEVEL_NAMES)("PF-04-NX: with EFER.NXE = 1, XD in the %s forbids fetches (0x11 CPL 0, 0x15 CPL 3) but not reads", (level) => {
    const k = kernelWith({ [level]: ALL | XD });
    const fk = pf(k, FETCH_S);
    expect(fk.errorCode).toBe(0x11);
    expect(fk.rule).toBe("PF-04-NX");
    expect(pf(userWith({ [level]: ALL | XD }), FETCH_U).errorCode).toBe(0x15);
    expect(ok(k, READ_S).physical).toBe(FRAME | 0x123n);
    expect(ok(k, WRITE_S).physical).toBe(FRAME | 0x123n);
  });

  it("PF-04-NX: pf-user-fetch-nx: CPL 3 jump to a user NX page → 0x15 at the target", () => {
    const m = vectorMachine("pf-user-fetch-nx");
    const f = pf(m, FETCH_U, 0x222000n);
    expect(f.errorCode).toBe(0x15);
    expect(f.address).toBe(0x222000n);
  });
});

describe("reserved bits (SDM Vol. 3A §4.5.4)", () => {
  it.each(LEVEL_NAMES)("PF-RSVD-XD: with EFER.NXE = 0, bit 63 in the %s is reserved: 0x9 for a read, 0xd at CPL 3", (level) => {
    const k = noNx(kernelWith({ [level]: ALL | XD }));
    const f = pf(k, READ_S);
    expect(f.errorCode).toBe(0x9);
    expect(f.rule).toBe("PF-RSVD-XD");
    expect(pf(noNx(userWith({ [level]: ALL | XD })), READ_U).errorCode).toBe(0xd);
    // A fetch: RSVD, and I/D only if SMEP is on (NXE is off).
    expect(pf(k, FETCH_S).errorCode).toBe(0x9);
    expect(pf(withCr4(k, CR4.SMEP), FETCH_S).errorCode).toBe(0x19);
  });

  const physicalBits = [46n, 47n, 48n, 49n, 50n, 51n];
  for (const level of LEVEL_NAMES)
    it(`PF-RSVD-PHYS: each of bits 51:46 (MAXPHYADDR = 46) in the ${level} is reserved; bit 45 is an address bit`, () => {
      for (const bit of physicalBits) {
        const f = pf(kernelWith({ [level]: ALL | (1n << bit) }), WRITE_S);
        expect(f.errorCode, `bit ${bit}`).toBe(0xb);
        expect(f.rule).toBe("PF-RSVD-PHYS");
      }
      // Bits 62:52 are ignored (no protection keys).
      expect("kind" in run(kernelWith({ [level]: ALL | (0x7ffn << 52n) }), READ_S)).toBe(false);
    });

  it("PF-RSVD-PHYS: bit 45 of a leaf is an address bit, not reserved", () => {
    expect(ok(kernelWith({ PTE: ALL | (1n << 45n) }), READ_S).physical).toBe((1n << 45n) | FRAME | 0x123n);
  });

  it("PF-RSVD-PML4E-PS: PS = 1 in a present PML4E is reserved (0x9)", () => {
    const f = pf(kernelWith({ PML4E: ALL | PS }), READ_S);
    expect(f.errorCode).toBe(0x9);
    expect(f.rule).toBe("PF-RSVD-PML4E-PS");
  });

  it("PF-RSVD-PS1G: each of bits 29:13 of a 1 GiB PDPTE is reserved; bit 12 (PAT) is not", () => {
    for (let bit = 13n; bit <= 29n; bit++) {
      const f = pf(kernelWith({ PDPTE: ALL | (1n << bit) }, "1G"), READ_S);
      expect(f.errorCode, `bit ${bit}`).toBe(0x9);
      expect(f.rule).toBe("PF-RSVD-PS1G");
    }
    expect(ok(kernelWith({ PDPTE: ALL | (1n << 12n) }, "1G"), READ_S).physical).toBe(FRAME_1G | (LINEAR & 0x3fff_ffffn));
  });

  it("PF-RSVD-PS2M: each of bits 20:13 of a 2 MiB PDE is reserved; bit 12 (PAT) is not", () => {
    for (let bit = 13n; bit <= 20n; bit++) {
      const f = pf(kernelWith({ PDE: ALL | (1n << bit) }, "2M"), READ_S);
      expect(f.errorCode, `bit ${bit}`).toBe(0x9);
      expect(f.rule).toBe("PF-RSVD-PS2M");
    }
    expect("kind" in run(kernelWith({ PDE: ALL | (1n << 12n) }, "2M"), READ_S)).toBe(false);
  });

  it("PF-RSVD-PS2M: bits 20:13 of a PDE that points to a page table are address bits (no fault)", () => {
    // PT at 0x53000 has bits 13:12 set already; bits 20:13 of a non-leaf PDE are part of the table address.
    expect(ok(kernelWith(), READ_S).physical).toBe(FRAME | 0x123n);
  });

  it("PF-RSVD-PHYS: the reserved-bit fault wins over a protection violation at another level (0xd)", () => {
    expect(pf(userWith({ PML4E: P, PTE: ALL | (1n << 50n) }), READ_U).errorCode).toBe(0xd);
  });

  it("PF-RSVD-PHYS: pf-reserved-bit: CPL 0 read of a PTE with bit 51 set → 0x9 at 0x404000", () => {
    const m = vectorMachine("pf-reserved-bit");
    const f = pf(m, READ_S, 0x404000n);
    expect(f.errorCode).toBe(0x9);
    expect(f.address).toBe(0x404000n);
  });
});

describe("SMEP and SMAP (SDM Vol. 3A §4.6.1)", () => {
  const smep = (m: Machine): Machine => withCr4(m, CR4.SMEP);
  const smap = (m: Machine): Machine => withCr4(m, CR4.SMAP);

  it("SMEP-01: a supervisor fetch from a user page faults P|I/D (0x11), U/S = 0, whatever AC", () => {
    const f = pf(smep(kernelWith()), FETCH_S);
    expect(f.errorCode).toBe(0x11);
    expect(f.rule).toBe("SMEP-01");
    expect(pf(withAc(smep(kernelWith()), true), FETCH_S).errorCode).toBe(0x11);
    expect(pf(noNx(smep(kernelWith())), FETCH_S).errorCode).toBe(0x11);
  });

  it.each(LEVEL_NAMES)("SMEP-01: U/S = 0 in the %s makes it a supervisor page: the fetch is allowed", (level) => {
    expect(ok(smep(kernelWith({ [level]: P | RW })), FETCH_S).physical).toBe(FRAME | 0x123n);
  });

  it("SMEP-01: no effect on user fetches, on supervisor data accesses, or with CR4.SMEP = 0", () => {
    expect("kind" in run(smep(userWith()), FETCH_U)).toBe(false);
    expect("kind" in run(smep(kernelWith()), READ_S)).toBe(false);
    expect("kind" in run(kernelWith(), FETCH_S)).toBe(false);
  });

  it("SMAP-01: pf-smap: CPL 0 read of a user page with AC = 0 → 0x1", () => {
    const m = vectorMachine("pf-smap");
    const f = pf(m, READ_S, 0x220000n);
    expect(f.errorCode).toBe(0x1);
    expect(f.rule).toBe("SMAP-01");
  });

  it("SMAP-01: explicit supervisor read/write of a user page faults with AC = 0 (0x1/0x3) and is allowed with AC = 1", () => {
    const m = smap(kernelWith());
    expect(pf(m, READ_S).errorCode).toBe(0x1);
    expect(pf(m, WRITE_S).errorCode).toBe(0x3);
    expect(ok(withAc(m, true), READ_S).physical).toBe(FRAME | 0x123n);
    expect(ok(withAc(m, true), WRITE_S).physical).toBe(FRAME | 0x123n);
  });

  it("SMAP-01: AC = 1 does not lift R/W: a supervisor write to a read-only user page with WP = 1 still faults", () => {
    expect(pf(withAc(smap(kernelWith({ PTE: P | US })), true), WRITE_S).errorCode).toBe(0x3);
  });

  it("SMAP-01: no effect on supervisor pages, on fetches, on user accesses, or with CR4.SMAP = 0", () => {
    expect("kind" in run(smap(kernelWith({ PDE: P | RW })), READ_S)).toBe(false);
    expect("kind" in run(smap(kernelWith()), FETCH_S)).toBe(false);
    expect("kind" in run(smap(userWith()), WRITE_U)).toBe(false);
    expect("kind" in run(kernelWith(), WRITE_S)).toBe(false);
  });

  it("SMAP-02: an implicit access to a user page faults even with AC = 1, at CPL 0 and at CPL 3", () => {
    for (const m of [smap(kernelWith()), smap(userWith())])
      for (const ac of [false, true]) {
        const f = pf(withAc(m, ac), access("read", "implicit"));
        expect(f.errorCode).toBe(0x1);
        expect(f.rule).toBe("SMAP-02");
        expect(pf(withAc(m, ac), access("write", "implicit")).errorCode).toBe(0x3);
      }
  });
});

describe("accessed and dirty bits (SDM Vol. 3A §4.8, docs/model-choices.md)", () => {
  it("PF-ACCESSED: a successful read sets A in all four entries and D nowhere", () => {
    const t = ok(kernelWith(), READ_S);
    for (const level of LEVEL_NAMES) expect(entryAt(t.memory, ENTRY[level]) & (A | D), level).toBe(A);
  });

  it("PF-DIRTY: a successful write sets D in the PTE only (A everywhere)", () => {
    const t = ok(kernelWith(), WRITE_S);
    for (const level of LEVEL_NAMES) expect(entryAt(t.memory, ENTRY[level]) & (A | D), level).toBe(level === "PTE" ? A | D : A);
  });

  it("PF-DIRTY: for a 2 MiB page D goes in the PDE; for a 1 GiB page in the PDPTE", () => {
    const t2 = ok(kernelWith({}, "2M"), WRITE_S);
    expect(entryAt(t2.memory, ENTRY.PDE) & (A | D)).toBe(A | D);
    expect(entryAt(t2.memory, ENTRY.PDPTE) & (A | D)).toBe(A);
    const t1 = ok(kernelWith({}, "1G"), WRITE_S);
    expect(entryAt(t1.memory, ENTRY.PDPTE) & (A | D)).toBe(A | D);
    expect(entryAt(t1.memory, ENTRY.PML4E) & (A | D)).toBe(A);
  });

  it("PF-ACCESSED: only A/D change: every other bit of each entry is kept", () => {
    const m = kernelWith({ PTE: ALL | XD | (0x7ffn << 52n) | 0x100n });
    const t = ok(m, WRITE_S);
    expect(entryAt(t.memory, ENTRY.PTE)).toBe(entryAt(m.memory, ENTRY.PTE) | A | D);
  });

  it("PF-ACCESSED: a walk that changes nothing returns the same memory object", () => {
    const first = ok(kernelWith(), WRITE_S);
    const m = { ...kernelWith(), memory: first.memory };
    expect(ok(m, WRITE_S).memory).toBe(first.memory);
    expect(ok(m, READ_S).memory).toBe(first.memory);
  });

  it("PF-DIRTY: a read after a write-free history leaves D clear; a later write adds only D", () => {
    const read = ok(kernelWith(), READ_S);
    const m = { ...kernelWith(), memory: read.memory };
    const write = ok(m, WRITE_S);
    expect(write.memory).not.toBe(read.memory);
    expect(entryAt(write.memory, ENTRY.PTE)).toBe(entryAt(read.memory, ENTRY.PTE) | D);
    expect(entryAt(write.memory, ENTRY.PDE)).toBe(entryAt(read.memory, ENTRY.PDE));
  });

  it.each<[string, Machine, Access]>([
    ["not-present", kernelWith({ PTE: RW }), WRITE_S],
    ["reserved bit", kernelWith({ PTE: ALL | (1n << 51n) }), WRITE_S],
    ["protection", userWith({ PTE: P | US }), WRITE_U],
    ["SMAP", withCr4(kernelWith(), CR4.SMAP), READ_S],
  ])("PF-ACCESSED: a walk that faults (%s) sets no A or D bit anywhere", (_name, m, a) => {
    pf(m, a);
    // translate returns no memory on a fault; the caller keeps its own (checked via Transaction in
    // transaction/linear-access.test.ts). Here: the input memory is untouched.
    for (const level of LEVEL_NAMES) expect(entryAt(m.memory, ENTRY[level]) & (A | D)).toBe(0n);
  });

  it("PF-ACCESSED: a self-referencing PML4 entry (used at two levels) gets A once and stays consistent", () => {
    // PML4[3] points back at the PML4; LINEAR's PDPT index 5 then reads PML4[5].
    let m = kernelWith();
    m = { ...m, memory: writeEntry(m.memory, ENTRY.PML4E, 0x50000n | ALL) };
    m = { ...m, memory: writeEntry(m.memory, 0x50000n + 5n * 8n, 0x52000n | ALL) };
    const t = ok(m, WRITE_S);
    expect(entryAt(t.memory, ENTRY.PML4E) & A).toBe(A);
    expect(t.physical).toBe(FRAME | 0x123n);
  });
});
