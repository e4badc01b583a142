// The assembler (guest/asm.ts): what it writes decodes, with iced-x86's decoder, to the
// instructions written; labels, data, alignment and sections land where the symbol map says.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  Assembler, Code, Instruction, Program, Register as R, abs, ahead, assemble, encodeOne, iced, icedMem, mem, rip, sym,
  type AssembledImage, type Bitness, type CodeValue,
} from "../../guest/index.ts";

interface Decoded {
  readonly ip: bigint;
  readonly length: number;
  readonly code: CodeValue;
  readonly text: string;
  readonly target: bigint;
  readonly memoryAddress: bigint;
}

/** Decodes `bytes` at `ip` into instructions (text in Intel syntax; "" for instructions
 *  `formatted` leaves out: formatting costs more than decoding, and the property tests below
 *  decode thousands of filler bytes whose text they never read). */
function decode(bytes: Uint8Array, ip: bigint, bitness: Bitness = 64, formatted: (i: InstanceType<typeof iced.Instruction>) => boolean = () => true): Decoded[] {
  const decoder = new iced.Decoder(bitness, bytes, iced.DecoderOptions.None);
  const formatter = new iced.Formatter(iced.FormatterSyntax.Intel);
  decoder.ip = ip;
  const out: Decoded[] = [];
  try {
    while (decoder.canDecode) {
      const i = decoder.decode();
      out.push({
        ip: i.ip, length: i.length, code: i.code, text: formatted(i) ? formatter.format(i) : "", target: i.nearBranchTarget,
        memoryAddress: i.isIpRelMemoryOperand ? i.ipRelMemoryAddress : 0n,
      });
      i.free();
    }
  } finally {
    decoder.free();
    formatter.free();
  }
  return out;
}

/** A one-section image decoded (without text), once: the property tests look up every branch. */
const decodedImages = new WeakMap<AssembledImage, Decoded[]>();

/** The decoded instruction at `address` in a one-section image (without its text). */
function at(image: AssembledImage, address: bigint): Omit<Decoded, "text"> {
  const s = image.sections[0]!;
  let decoded = decodedImages.get(image);
  if (decoded === undefined) decodedImages.set(image, (decoded = decode(s.bytes, s.origin, 64, () => false)));
  const d = decoded.find((x) => x.ip === address);
  if (d === undefined) throw new Error(`no instruction starts at 0x${address.toString(16)}`);
  return d;
}

describe("assembler: encoding", () => {
  it("emit() builds each operand form, and the bytes decode to the same instructions", () => {
    const image = assemble(0x10000n, (s) =>
      s
        .emit(Code.Nopd)
        .emit(Code.Push_r64, R.RBX)
        .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
        .emit(Code.Mov_r64_rm64, R.RSP, abs(0x8n, R.GS))
        .emit(Code.Mov_rm64_r64, mem(R.RSP, 16n), R.RAX)
        .emit(Code.Mov_r64_imm64, R.RCX, 0x1122_3344_5566_7788n)
        .emit(Code.Sub_rm64_imm8, R.RSP, -8)
        .emit(Code.Mov_rm64_imm32, mem(R.RBX, 0n, R.None, R.RCX, 8), 0x7fff_ffff)
        .emit(Code.Int_imm8, 0x80)
        .emit(Code.Out_imm8_AL, 0xe9, R.AL)
        .emit(Code.Imul_r32_rm32_imm32, R.EAX, R.EBX, -5)
        .emit(Code.Mov_cr_r64, R.CR3, R.RAX)
        .emit(Code.Mov_Sreg_r32m16, R.SS, R.EAX)
        .emit(Code.Swapgs)
        .emit(Code.Sysretq),
    );
    const texts = decode(image.sections[0]!.bytes, 0x10000n).map((d) => d.text);
    expect(texts).toEqual([
      "nop", "push rbx", "add rax,rbx", "mov rsp,gs:[8]", "mov [rsp+10h],rax", "mov rcx,1122334455667788h",
      "sub rsp,0FFFFFFFFFFFFFFF8h", "mov qword ptr [rbx+rcx*8],7FFFFFFFh", "int 80h", "out 0E9h,al",
      "imul eax,ebx,0FFFFFFFBh", "mov cr3,rax", "mov ss,ax", "swapgs", "sysretq",
    ]);
  });

  it("a random sequence of emitted instructions decodes back to the same instruction forms", () => {
    const forms: readonly ((n: number) => [CodeValue, ...(number | bigint)[]])[] = [
      (n) => [Code.Add_rm64_r64, R.RAX + (n % 16), R.RAX + ((n >> 4) % 16)],
      (n) => [Code.Mov_r32_imm32, R.EAX + (n % 16), n],
      (n) => [Code.Push_r64, R.RAX + (n % 16)],
      (n) => [Code.Xor_rm8_r8, R.AL + (n % 4), R.CL],
      (n) => [Code.Int_imm8, n & 0xff],
      () => [Code.Hlt],
      (n) => [Code.Mov_r64_imm64, R.RAX + (n % 16), BigInt(n) << 33n],
    ];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(forms.length - 1), fc.nat(0xffff)), { minLength: 1, maxLength: 40 }), (picks) => {
        const built = picks.map(([f, n]) => forms[f]!(n));
        const image = assemble(0x400000n, (s) => {
          for (const [code, ...ops] of built) s.emit(code, ...ops);
        });
        expect(decode(image.sections[0]!.bytes, 0x400000n).map((d) => d.code)).toEqual(built.map((b) => b[0]));
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it("says which instruction form and operand is wrong", () => {
    expect(() => assemble(0n, (s) => s.emit(Code.Add_rm64_r64, R.RAX))).toThrow(/Add_rm64_r64: takes 2 operand\(s\), got 1/);
    expect(() => assemble(0n, (s) => s.emit(Code.Push_r64, 5n))).toThrow(/Push_r64: operand 0 is a register/);
    expect(() => assemble(0n, (s) => s.emit(Code.Int_imm8, mem(R.RAX)))).toThrow(/Int_imm8: operand 0 cannot be memory/);
    expect(() => assemble(0n, (s) => s.emit(Code.Mov_rm64_imm32, R.RAX, 1n << 40n))).toThrow(/Mov_rm64_imm32: .*immediate/i);
    expect(() => assemble(0n, (s) => s.emit(Code.Iretq), 32)).toThrow();
  });

  it("encodeOne encodes a single instruction at an address", () => {
    const i = Instruction.createBranch(Code.Call_rel32_64, 0x1000n);
    try {
      expect([...encodeOne(i, 0x2000n)]).toEqual([0xe8, 0xfb, 0xef, 0xff, 0xff]);
    } finally {
      i.free();
    }
  });
});

describe("assembler: labels and the symbol map", () => {
  it("resolves backward and forward branches, short and near, through the BlockEncoder", () => {
    const image = assemble(0x10000n, (s) => {
      s.label("top").emit(Code.Jmp_rel32_64, "bottom");
      s.label("loop").emit(Code.Dec_rm64, R.RSI).emit(Code.Jne_rel8_64, "loop");
      s.space(300, 0x90); // forces the branches around it to the near form
      s.emit(Code.Je_rel8_64, "top");
      s.label("bottom").emit(Code.Call_rel32_64, "loop").emit(Code.Hlt);
    });
    const top = image.symbol("top"), loop = image.symbol("loop"), bottom = image.symbol("bottom");
    expect(top).toBe(0x10000n);
    expect(at(image, top).target).toBe(bottom);
    expect(at(image, top).length).toBe(5); // rel32: bottom is > 127 bytes away
    expect(loop).toBe(0x10005n);
    const jne = decode(image.sections[0]!.bytes, 0x10000n).find((d) => d.text.startsWith("jne"))!;
    expect({ target: jne.target, length: jne.length }).toEqual({ target: loop, length: 2 });
    const je = decode(image.sections[0]!.bytes, 0x10000n).find((d) => d.text.startsWith("je"))!;
    expect({ target: je.target, length: je.length }).toEqual({ target: top, length: 6 });
    expect(at(image, bottom).target).toBe(loop);
  });

  it("gives label addresses as immediates and data (sym), RIP-relative operands (rip) and aligned data", () => {
    const image = assemble(0x20000n, (s) =>
      s
        .emit(Code.Mov_r64_imm64, R.RAX, sym("table"))
        .emit(Code.Lea_r64_m, R.RDX, rip("message"))
        .emit(Code.Mov_r32_imm32, R.ECX, sym("message", 2n))
        .emit(Code.Retnq)
        .align(16, 0xcc)
        .label("table").dq(sym("message"), 7n, sym("end"))
        .label("message").asciz("hi!")
        .align(8)
        .label("end"),
    );
    const table = image.symbol("table"), message = image.symbol("message"), end = image.symbol("end");
    expect(table % 16n).toBe(0n);
    expect(message).toBe(table + 24n);
    expect(end % 8n).toBe(0n);
    const bytes = image.sections[0]!.bytes;
    const read = (a: bigint, n: number) => bytes.slice(Number(a - 0x20000n), Number(a - 0x20000n) + n);
    const q = (a: bigint) => new DataView(read(a, 8).buffer).getBigUint64(0, true);
    expect([q(table), q(table + 8n), q(table + 16n)]).toEqual([message, 7n, end]);
    expect(new TextDecoder().decode(read(message, 3))).toBe("hi!");
    const d = decode(bytes, 0x20000n).slice(0, 4);
    expect(d[0]!.text).toBe(`mov rax,${table.toString(16).toUpperCase()}h`);
    expect(d[1]!.memoryAddress).toBe(message);
    expect(d[2]!.text).toBe(`mov ecx,${(message + 2n).toString(16).toUpperCase()}h`);
    expect(d[3]!.text).toBe("ret");
    expect([...read(0x20000n + BigInt(d.reduce((n, x) => n + x.length, 0)), 1)]).toEqual([0xcc]);
  });

  it("links sections of different bitness at their own origins, with one namespace of labels", () => {
    const a = new Assembler();
    a.section(0x7c00n, { name: "real", bitness: 16 }).label("reset").emit(Code.Jmp_rel16, "protected");
    a.section(0x8000n, { name: "protected", bitness: 32 }).label("protected").emit(Code.Mov_r32_imm32, R.EAX, sym("long")).emit(Code.Jmp_rel32_32, "long");
    a.section(0x100000n, { name: "long" }).label("long").emit(Code.Call_rel32_64, "protected").emit(Code.Jmp_rel32_64, "long");
    const image = a.assemble();
    expect(Object.fromEntries(image.symbols)).toEqual({ reset: 0x7c00n, protected: 0x8000n, long: 0x100000n });
    const real = decode(image.section("real").bytes, 0x7c00n, 16);
    expect(real[0]!.target).toBe(0x8000n);
    const prot = decode(image.section("protected").bytes, 0x8000n, 32);
    expect(prot.map((d) => d.text)).toEqual(["mov eax,100000h", "jmp 00100000h"]);
    const long = decode(image.section("long").bytes, 0x100000n);
    expect(long.map((d) => d.target)).toEqual([0x8000n, 0x100000n]);
    expect(long[1]!.length).toBe(2); // a jump to itself is short
  });

  it("ahead(n) branches n bytes past the branch; here() marks targets of caller-built branches", () => {
    const image = assemble(0x1000n, (s) => s.emit(Code.Je_rel8_64, ahead(3)).emit(Code.Mov_r32_imm32, R.EAX, 1).emit(Code.Hlt));
    expect(at(image, 0x1000n).target).toBe(0x1005n);
    const p = new Program(0x3000n);
    const loop = p.here();
    p.add(Instruction.createReg(Code.Inc_rm64, R.RBX));
    const jump = p.add(Instruction.createBranch(Code.Jne_rel8_64, 0n));
    p.add(Instruction.createReg(Code.Inc_rm64, R.RCX));
    jump.nearBranch64 = p.here(); // a forward target, set after the fact
    p.add(Instruction.createBranch(Code.Jmp_rel8_64, loop));
    p.add(Instruction.createMemReg(Code.Mov_rm64_r64, icedMem(R.RSP, 8n), R.RAX));
    const bytes = p.encode();
    expect(decode(bytes, 0x3000n).map((d) => d.text)).toEqual(["inc rbx", "jne short 0000000000003008h", "inc rcx", "jmp short 0000000000003000h", "mov [rsp+8],rax"]);
  });

  it("a random program of labels and branches: every branch lands on its label", () => {
    // Items: a label, a branch to label k (short or near form), or filler of n bytes.
    const item = fc.oneof(
      fc.record({ kind: fc.constant("label" as const) }),
      fc.record({ kind: fc.constant("branch" as const), to: fc.nat(9), near: fc.boolean(), cond: fc.boolean() }),
      fc.record({ kind: fc.constant("filler" as const), bytes: fc.integer({ min: 1, max: 90 }) }),
    );
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 30 }), (items) => {
        const labels = items.filter((x) => x.kind === "label").length;
        const branches: { name: string; at: number }[] = [];
        const p = new Program(0x40_0000n);
        let n = 0;
        items.forEach((x, i) => {
          if (x.kind === "label") p.label(`L${n++}`);
          else if (x.kind === "filler") p.space(x.bytes, 0x90);
          else if (labels > 0) {
            const name = `L${x.to % labels}`;
            p.label(`B${i}`);
            branches.push({ name, at: i });
            p.emit(x.cond ? (x.near ? Code.Jne_rel32_64 : Code.Jne_rel8_64) : x.near ? Code.Jmp_rel32_64 : Code.Jmp_rel8_64, name);
          }
        });
        const image = p.assemble();
        // expect only on a mismatch (thousands of branches): the same assertion.
        for (const b of branches) {
          const target = at(image, image.symbol(`B${b.at}`)).target;
          if (target !== image.symbol(b.name)) expect(target, `B${b.at}`).toBe(image.symbol(b.name));
        }
      }),
      { numRuns: 150, seed: 11 },
    );
  });

  it("rejects undefined and duplicate labels and bad alignment", () => {
    expect(() => assemble(0n, (s) => s.emit(Code.Jmp_rel8_64, "nowhere"))).toThrow(/undefined label "nowhere"/);
    expect(() => assemble(0n, (s) => s.label("x").emit(Code.Nopd).label("x"))).toThrow(/label "x" defined twice/);
    expect(() => assemble(0n, (s) => s.align(3))).toThrow(/not a power of two/);
    const a = new Assembler();
    a.section(0n, { name: "one" });
    expect(() => a.section(0x1000n, { name: "one" })).toThrow(/defined twice/);
    a.assemble();
    expect(() => a.assemble()).toThrow(/assembles once/);
  });
});

describe("assembler convergence", () => {
  // Found by the kernel: many align() items between branches whose sizes depend on the padding
  // made the passes oscillate ("addresses still changing") and the image could not be built.
  it("many alignments between short/long branches converge, and every label lands aligned and on its branch", () => {
    const item = fc.oneof(
      fc.record({ kind: fc.constant("align" as const), alignment: fc.constantFrom(2, 4, 8, 16, 32, 64) }),
      fc.record({ kind: fc.constant("jump" as const), to: fc.nat() }),
      fc.record({ kind: fc.constant("data" as const), size: fc.integer({ min: 1, max: 140 }) }),
    );
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 60 }), (items) => {
        const labels = items.length;
        const image = assemble(0x40_0000n, (s) => {
          items.forEach((it, n) => {
            if (it.kind === "align") s.align(it.alignment, 0x90);
            s.label(`l${n}`);
            if (it.kind === "jump") s.emit(Code.Jmp_rel32_64, `l${it.to % labels}`);
            else if (it.kind === "data") s.space(it.size, 0xcc);
            else s.emit(Code.Nopd);
          });
        });
        items.forEach((it, n) => {
          const at = image.symbol(`l${n}`);
          if (it.kind === "align" && at % BigInt(it.alignment) !== 0n) expect(at % BigInt(it.alignment), `l${n}`).toBe(0n);
        });
        const section = image.sections[0]!;
        // Only JMP's (and JMPE's) text can start with "jmp": the others are decoded without one.
        const decoded = decode(section.bytes, section.origin, 64, (i) => iced.Mnemonic[i.mnemonic].startsWith("Jmp"));
        const jumps = decoded.filter((d) => d.text.startsWith("jmp"));
        const wanted = items.flatMap((it) => (it.kind === "jump" ? [image.symbol(`l${it.to % labels}`)] : []));
        // Filler bytes (0x90/0xcc) decode as nop/int3, never as jmp, so the jumps are exactly ours.
        expect(jumps.map((d) => d.target)).toEqual(wanted);
      }),
      { seed: 20261206, numRuns: 300 },
    );
  });
});

describe("memory operand displacements", () => {
  // Found by the kernel: mem(base, disp) with a displacement beyond disp8 was handed to iced-x86
  // with the 32-bit address size's displacement size, which its 64-bit encoder refuses.
  it("mem() encodes disp8 and disp32 with 64-bit and 32-bit base registers", () => {
    const cases = [
      [R.RBX, 0x10n, "mov rax,[rbx+10h]"],
      [R.RBX, 0x1000n, "mov rax,[rbx+1000h]"],
      [R.RBX, -0x1000n, "mov rax,[rbx-1000h]"],
      [R.R12, 0x7fff_ffffn, "mov rax,[r12+7FFFFFFFh]"],
      [R.EBX, 0x1000n, "mov rax,[ebx+1000h]"],
    ] as const;
    for (const [base, disp, text] of cases) {
      const image = assemble(0x1000n, (s) => s.emit(Code.Mov_r64_rm64, R.RAX, mem(base, disp)));
      expect(decode(image.sections[0]!.bytes, 0x1000n).map((d) => d.text)).toEqual([text]);
    }
  });
});
