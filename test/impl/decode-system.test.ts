// impl/'s decoding of the system opcodes (impl/decode-system.ts) against iced-x86, exhaustively
// over the ModRM byte: 0F 00 and 0F 01 (every form, with no prefix, 66, F2, F3, REX.W, REX.B),
// MOV DR (0F 21/23, with REX.R), F3 0F AE register forms, 0F 38 80–82, 0F C7 memory forms, in
// 64-bit and compatibility mode. No encoding of 0F 00 / 0F 01 is `unsupported` (docs/model-choices.md
// "Decoding: 0F 00, 0F 01"); where impl decodes an instruction iced decodes the same one with the
// same length; where impl raises #UD, iced calls the bytes invalid or names an instruction of a
// feature the modelled CPU lacks (row "CPU features").
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import type * as Iced from "iced-x86";
import { decode } from "../../impl/decode.ts";
import * as I from "../../impl/insn.ts";

const iced = createRequire(import.meta.url)("iced-x86") as typeof Iced;

/** iced mnemonics of the features the modelled CPU lacks (docs/model-choices.md "CPU features"). */
const ABSENT = new Set([
  "Vmcall", "Vmlaunch", "Vmresume", "Vmxoff", "Vmfunc", "Vmread", "Vmwrite", "Vmptrld", "Vmptrst", "Vmclear", "Vmxon",
  "Invept", "Invvpid", "Vmrun", "Vmmcall", "Vmload", "Vmsave", "Stgi", "Clgi", "Skinit", "Invlpga", "Vmgexit", "Getsec",
  "Encls", "Enclu", "Enclv", "Monitor", "Mwait", "Monitorx", "Mwaitx", "Xend", "Xtest", "Rdpkru", "Wrpkru", "Setssbsy",
  "Saveprevssp", "Rstorssp", "Incssp", "Uiret", "Testui", "Clui", "Stui", "Eretu", "Erets", "Lkgs", "Serialize",
  "Xsusldtrk", "Xresldtrk", "Pconfig", "Wrmsrns", "Rdmsrlist", "Wrmsrlist", "Tdcall", "Seamcall", "Seamret", "Seamops",
  "Pbndkb", "Xsaves", "Xrstors", "Ptwrite", "Umonitor", "Clzero", "Rdpru", "Invlpgb", "Tlbsync", "Mcommit", "Psmash",
  "Pvalidate", "Rmpadjust", "Rmpupdate", "Rmpquery", "Xsaves64", "Xrstors64", "Incsspd", "Incsspq", "Getsecq",
]);

/** iced mnemonic(s) of each decoded op. */
function expectedMnemonics(i: I.Insn): string[] {
  switch (i.op) {
    case I.OP_SLDT_STR: return [i.sub === 0 ? "Sldt" : "Str"];
    case I.OP_LLDT: return ["Lldt"];
    case I.OP_LTR: return ["Ltr"];
    case I.OP_VERR_VERW: return [i.sub === 0 ? "Verr" : "Verw"];
    case I.OP_SGDT: return ["Sgdt"];
    case I.OP_SIDT: return ["Sidt"];
    case I.OP_LGDT: return ["Lgdt"];
    case I.OP_LIDT: return ["Lidt"];
    case I.OP_SMSW: return ["Smsw"];
    case I.OP_LMSW: return ["Lmsw"];
    case I.OP_INVLPG: return ["Invlpg"];
    case I.OP_SWAPGS: return ["Swapgs"];
    case I.OP_RDTSCP: return ["Rdtscp"];
    case I.OP_CLAC: return ["Clac"];
    case I.OP_STAC: return ["Stac"];
    case I.OP_XGETBV: return ["Xgetbv"];
    case I.OP_XSETBV: return ["Xsetbv"];
    case I.OP_MOV_FROM_DR: case I.OP_MOV_TO_DR: return ["Mov"];
    case I.OP_RDFSGSBASE: return ["Rdfsbase", "Rdgsbase"];
    case I.OP_WRFSGSBASE: return ["Wrfsbase", "Wrgsbase"];
    case I.OP_INVPCID: return ["Invpcid"];
    case I.OP_WBINVD: return ["Wbinvd", "Wbnoinvd"];
    case I.OP_RDPMC: return ["Rdpmc"];
    case I.OP_SYSENTER: return ["Sysenter"];
    case I.OP_SYSEXIT: return [i.rexW ? "Sysexitq" : "Sysexit"];
    case I.OP_CMPXCHG_WIDE: return [i.rexW ? "Cmpxchg16b" : "Cmpxchg8b"];
    default: return [`op ${i.op}`];
  }
}

const PREFIXES: readonly (readonly number[])[] = [[], [0x66], [0xf2], [0xf3], [0x48], [0x41], [0x66, 0xf3], [0xf0]];
/** SIB and displacement bytes after the ModRM byte: enough for any form. */
const TAIL = [0x24, 0x10, 0x20, 0x30, 0x40, 0x50];

interface Tally { decoded: number; ud: number; absent: number; errors: string[] }

function check(bytes: number[], mode64: boolean, tally: Tally, noUnsupported: boolean): void {
  const buf = Uint8Array.from(bytes);
  const mine = decode(buf, 0, buf.length, mode64 ? I.MODE_64 : I.MODE_32, 0x1000, 0);
  const label = `${mode64 ? 64 : 32}-bit ${bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}`;
  const fail = (why: string): void => { tally.errors.push(`${label}: ${why}`); };
  if (mine === null) return fail("decoder asked for more bytes");
  const i = mine;
  const decoder = new iced.Decoder(mode64 ? 64 : 32, buf, iced.DecoderOptions.None);
  const ins = decoder.decode();
  try {
    const name = iced.Mnemonic[ins.mnemonic];
    if (i.op === I.OP_UNSUP) {
      if (noUnsupported) fail(`unsupported (${i.reason}); iced ${ins.toString()}`);
      return;
    }
    if (i.op === I.OP_UD) {
      if (ins.isInvalid) tally.ud++;
      else if (ABSENT.has(name)) tally.absent++;
      else fail(`impl #UD, iced decodes ${ins.toString()}`);
      return;
    }
    if (ins.isInvalid) return fail(`impl op ${i.op}, iced says invalid`);
    if (!expectedMnemonics(i).includes(name)) return fail(`impl ${expectedMnemonics(i).join("/")}, iced ${ins.toString()}`);
    if (i.len !== ins.length) return fail(`impl length ${i.len}, iced ${ins.length} (${ins.toString()})`);
    if (i.lock !== ins.hasLockPrefix) return fail(`lock ${i.lock} vs iced ${ins.hasLockPrefix}`);
    tally.decoded++;
  } finally {
    ins.free();
    decoder.free();
  }
}

describe("impl decoding of the system opcodes, against iced-x86", () => {
  for (const mode64 of [true, false]) {
    it(`${mode64 ? "64-bit" : "compatibility"} mode: 0F 00, 0F 01 (never unsupported), MOV DR, FSGSBASE, INVPCID, absent features`, () => {
      const tally: Tally = { decoded: 0, ud: 0, absent: 0, errors: [] };
      for (const prefix of PREFIXES) {
        if (!mode64 && (prefix.includes(0x48) || prefix.includes(0x41))) continue;
        for (let modrm = 0; modrm < 256; modrm++) {
          check([...prefix, 0x0f, 0x00, modrm, ...TAIL], mode64, tally, true);
          check([...prefix, 0x0f, 0x01, modrm, ...TAIL], mode64, tally, true);
          check([...prefix, 0x0f, 0x21, modrm], mode64, tally, true);
          check([...prefix, 0x0f, 0x23, modrm], mode64, tally, true);
          if (modrm >= 0xc0 && prefix.includes(0xf3)) check([...prefix, 0x0f, 0xae, modrm], mode64, tally, true);
          if (modrm < 0xc0) check([...prefix, 0x0f, 0xc7, modrm, ...TAIL], mode64, tally, ((modrm >> 3) & 7) !== 1 && [3, 5, 6, 7].includes((modrm >> 3) & 7));
          for (const b3 of [0x80, 0x81, 0x82]) check([...prefix, 0x0f, 0x38, b3, modrm, ...TAIL], mode64, tally, true);
        }
        for (const op of [0x09, 0x33, 0x34, 0x35, 0x37]) check([...prefix, 0x0f, op], mode64, tally, true);
        if (!prefix.includes(0x66) && !prefix.includes(0xf2) && !prefix.includes(0xf3)) {
          check([...prefix, 0x0f, 0x78, 0xc0], mode64, tally, true);
          check([...prefix, 0x0f, 0x79, 0xc0], mode64, tally, true);
        }
        // MOV DR with REX.R: #UD.
        if (mode64) check([...prefix, 0x44, 0x0f, 0x21, 0xc0], mode64, tally, true);
      }
      expect(tally.errors.slice(0, 40), `${tally.errors.length} disagreements`).toEqual([]);
      expect(tally.decoded).toBeGreaterThan(1000);
      expect(tally.ud).toBeGreaterThan(100);
      expect(tally.absent).toBeGreaterThan(20);
    });
  }
});
