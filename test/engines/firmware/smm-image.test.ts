// The boot image that installs a state through SMM and RSM: decoded back with iced-x86, its code
// does what the engines rely on, and its save area carries exactly the state's fields.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../../contract/load.ts";
import type { ArchState } from "../../../contract/state.ts";
import { buildFirmware, IMAGE_SIZE, SAVE_AREA_OFFSET, SMBASE, type Firmware } from "../../../engines/firmware/smm-image.ts";
import { decodeSaveArea, SAVE_AREA_SIZE } from "../../../engines/firmware/save-area.ts";
import { iced } from "../../../engines/firmware/asm.ts";
import { vectorPath } from "../../helpers/fixture.ts";

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

interface Decoded {
  readonly ip: bigint;
  readonly text: string;
  readonly mnemonic: number;
  readonly immediate: bigint | undefined;
}

/** Decodes `length` bytes of the image's last 64 KiB at block `offset`, running at `origin`. */
function decodeBlock(fw: Firmware, offset: number, length: number, bitness: 16 | 32 | 64, origin: bigint): Decoded[] {
  const block = fw.image.subarray(fw.image.length - IMAGE_SIZE);
  const decoder = new iced.Decoder(bitness, block.subarray(offset, offset + length), iced.DecoderOptions.None);
  decoder.ip = origin;
  const formatter = new iced.Formatter(iced.FormatterSyntax.Intel);
  const out: Decoded[] = [];
  try {
    while (decoder.canDecode) {
      const insn = decoder.decode();
      let immediate: bigint | undefined;
      for (let k = 0; k < insn.opCount; k++) {
        const kind = insn.opKind(k);
        if (kind === iced.OpKind.Immediate32 || kind === iced.OpKind.Immediate64 || kind === iced.OpKind.Immediate8 || kind === iced.OpKind.Immediate16 || kind === iced.OpKind.Immediate32to64) immediate = insn.immediate(k);
      }
      out.push({ ip: insn.ip, text: formatter.format(insn), mnemonic: insn.mnemonic, immediate });
      insn.free();
    }
  } finally {
    decoder.free();
    formatter.free();
  }
  return out;
}

function blockOf(fw: Firmware, name: keyof Firmware["blocks"]): Decoded[] {
  const b = fw.blocks[name];
  return decodeBlock(fw, b.offset, b.block.bytes.length, b.bitness, b.block.origin);
}

/** The values written by each WRMSR: ECX, EDX:EAX from the MOVs before it. */
function wrmsrs(code: readonly Decoded[]): Map<number, bigint> {
  const out = new Map<number, bigint>();
  const regs = new Map<string, bigint>();
  for (const d of code) {
    const m = /^mov (eax|ecx|edx),/i.exec(d.text);
    if (m !== null && d.immediate !== undefined) regs.set(m[1]!.toLowerCase(), d.immediate);
    if (d.mnemonic === iced.Mnemonic.Wrmsr) out.set(Number(regs.get("ecx")), (regs.get("edx")! << 32n) | regs.get("eax")!);
  }
  return out;
}

describe("the SMM/RSM boot image", () => {
  const state = vectorState("syscall-basic");
  const fw = buildFirmware(state, { pendingIrq: null, pendingNmi: false, nmiBlocked: false, memory: "loaded" });

  it("is 64 KiB with the emulator loading memory, and starts with a near jump at the reset vector", () => {
    expect(fw.image.length).toBe(IMAGE_SIZE);
    expect(fw.imageBase).toBe(2n ** 32n - BigInt(IMAGE_SIZE));
    const reset = decodeBlock(fw, 0xfff0, 3, 16, 0xfff0n);
    expect(reset[0]!.mnemonic).toBe(iced.Mnemonic.Jmp);
    expect(reset[0]!.text).toMatch(/jmp 0*100h/i);
  });

  it("carries the state in a save area RSM reads (every register and hidden segment part)", () => {
    const block = fw.image.subarray(fw.image.length - IMAGE_SIZE);
    const area = decodeSaveArea(block.subarray(SAVE_AREA_OFFSET, SAVE_AREA_OFFSET + SAVE_AREA_SIZE));
    expect(area.revision).toBe(0x00020064);
    expect(area.smbase).toBe(SMBASE);
    expect(area.gpr).toEqual(state.gpr);
    expect(area.rip).toBe(state.rip);
    expect(area.rflags).toBe(state.rflags);
    for (const name of ["es", "cs", "ss", "ds", "fs", "gs", "tr", "ldtr"] as const) expect(area.segments[name]).toEqual(state[name]);
    expect(area.gdtr).toEqual(state.gdtr);
    expect(area.idtr).toEqual(state.idtr);
    expect([area.cr0, area.cr3, area.cr4, area.efer]).toEqual([state.cr0, state.cr3, state.cr4, state.efer]);
  });

  it("keeps the SMM entry at SMBASE + 0x8000 ending in RSM, and names its address", () => {
    const smm = blockOf(fw, "smm");
    expect(smm.map((d) => d.mnemonic)).toEqual([iced.Mnemonic.Rsm]);
    expect(fw.rsmAddress).toBe(BigInt(SMBASE) + 0x8000n);
    expect(fw.smmInstructions).toBe(1);
  });

  it("relocates SMBASE: the relocation handler stores 0xE8000 into the reset save area's SMBASE field", () => {
    const text = blockOf(fw, "relocation").map((d) => d.text);
    expect(text[0]).toMatch(/mov dword ptr \[3FF00h\],0E8000h/i);
    expect(text[text.length - 1]).toBe("rsm");
  });

  it("writes the SYSCALL and SYSENTER MSRs with the state's values, and CR8 into the APIC's TPR", () => {
    const code = blockOf(fw, "code32");
    expect(wrmsrs(code)).toEqual(
      new Map([
        [0xc0000081, state.star], [0xc0000082, state.lstar], [0xc0000083, state.cstar],
        [0xc0000084, state.fmask], [0xc0000102, state.kernelGsBase],
        [0x174, state.sysenterCs], [0x175, state.sysenterEsp], [0x176, state.sysenterEip], [0xc0000080, 0x100n],
      ]),
    );
    // Values that reach every byte of EDX:EAX.
    const sysenter = buildFirmware({ ...state, sysenterCs: 0x10n, sysenterEsp: 0xffff_8000_0002_0000n, sysenterEip: 0xffff_ffff_8100_0000n }, { pendingIrq: null, pendingNmi: false, nmiBlocked: false, memory: "loaded" });
    const written = wrmsrs(blockOf(sysenter, "code32"));
    expect([written.get(0x174), written.get(0x175), written.get(0x176)]).toEqual([0x10n, 0xffff_8000_0002_0000n, 0xffff_ffff_8100_0000n]);
    expect(code.some((d) => /mov dword ptr \[0FEE00080h\],0$/i.test(d.text))).toBe(true);
  });

  it("loads the full 64-bit CR2 in 64-bit code and ends in the SMI that enters the case", () => {
    const withCr2 = buildFirmware({ ...state, cr2: 0xffff_8000_1234_5678n }, { pendingIrq: null, pendingNmi: false, nmiBlocked: false, memory: "loaded" });
    const code = blockOf(withCr2, "code64");
    expect(code[0]!.immediate).toBe(0xffff_8000_1234_5678n);
    expect(code[1]!.text).toBe("mov cr2,rax");
    const last = code[code.length - 1]!;
    expect(last.text).toMatch(/^jmp /);
    expect(withCr2.smiWaitAddress).toBe(last.ip);
  });

  it("arms the APIC timer for a pending IRQ and waits for the vector in IRR", () => {
    const irq = buildFirmware(state, { pendingIrq: 0x41, pendingNmi: false, nmiBlocked: false, memory: "loaded" });
    const text = blockOf(irq, "code32").map((d) => d.text);
    expect(text).toContain("mov dword ptr [0FEE00320h],41h");
    // IRR word 2 (vectors 64–95), bit 1.
    expect(text.some((t) => /test dword ptr \[0FEE00220h\],2$/i.test(t))).toBe(true);
  });

  it("sends an NMI from inside SMM for a pending NMI (it stays pending until after RSM)", () => {
    const nmi = buildFirmware(state, { pendingIrq: null, pendingNmi: true, nmiBlocked: false, memory: "loaded" });
    const smm = blockOf(nmi, "smm");
    expect(smm.map((d) => d.text)).toEqual(["mov dword ptr [0FEE00300h],4400h", "rsm"]);
    expect(nmi.smmInstructions).toBe(2);
  });

  it("carries the case's pages in front of the block when asked, and copies each run", () => {
    const rom = buildFirmware(state, { pendingIrq: null, pendingNmi: false, nmiBlocked: false, memory: "rom" });
    expect(rom.image.length % IMAGE_SIZE).toBe(0);
    expect(rom.image.length).toBeGreaterThan(IMAGE_SIZE);
    expect(rom.imageBase).toBe(2n ** 32n - BigInt(rom.image.length));
    // Every non-zero page is somewhere in the payload, copied to its address by a REP MOVSD.
    const code = blockOf(rom, "code32");
    const copies: { from: bigint; to: bigint; count: bigint }[] = [];
    for (let i = 3; i < code.length; i++) {
      if (code[i]!.mnemonic === iced.Mnemonic.Movsd) copies.push({ from: code[i - 3]!.immediate!, to: code[i - 2]!.immediate!, count: code[i - 1]!.immediate! });
    }
    for (const [page, bytes] of state.memory) {
      if (!bytes.some((b) => b !== 0)) continue;
      const address = BigInt(page) * 4096n;
      const copy = copies.find((c) => address >= c.to && address < c.to + c.count * 4n);
      expect(copy, `page 0x${address.toString(16)}`).toBeDefined();
      const offset = Number(copy!.from - rom.imageBase + (address - copy!.to));
      expect(Buffer.from(rom.image.subarray(offset, offset + 4096)).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it("refuses a case whose memory does not fit in a ROM image", () => {
    const memory = new Map<number, Uint8Array>();
    for (let p = 0; p < 1100; p++) memory.set(0x1000 + p, new Uint8Array(4096).fill(1));
    expect(() => buildFirmware({ ...state, memory }, { pendingIrq: null, pendingNmi: false, nmiBlocked: false, memory: "rom" })).toThrow(/does not fit/);
  });
});
