// Rules the decoder checks: faults raised before any instruction semantics run (digest §10,
// priority 9 "faults while decoding"). Opcode-specific #UDs cite the SDM opcode maps (Vol. 2D App. A).
import { defineRules } from "../rules/rule.ts";

export const DECODE_RULES = defineRules([
  { id: "DECODE-LENGTH", description: "An instruction longer than 15 bytes (prefixes included) raises #GP(0); the 16th byte is not fetched", source: "SDM Vol. 2A §2.3.11" },
  { id: "DECODE-INVALID-64", description: "Opcodes invalid in 64-bit mode (06 07 0E 16 17 1E 1F 27 2F 37 3F 60 61 82 9A CE D4 D5 D6 EA) raise #UD", source: "SDM Vol. 2D Table A-2 (i64); digest SWINT-05 for INTO" },
  { id: "DECODE-RESERVED", description: "A reserved opcode or ModRM.reg extension (FE /2–/7, FF /7, C6/C7 /1–/7, 0F BA /0–/3, 0F 00 /6–/7, 0F 01 /5 memory, the 0F 01 register forms that are no instruction, prefixed NP forms such as 66 0F 01 CA) raises #UD", source: "SDM Vol. 2D Table A-6; SDM \"NP\" opcode notation; digest DT-01" },
  { id: "DECODE-MEMORY-ONLY", description: "The register form of a memory-only instruction (LEA, JMP far m16:xx, CALL far m16:xx, CMPXCHG8B/16B, INVPCID) raises #UD", source: "SDM Vol. 2A LEA, JMP, CALL, CMPXCHG8B, INVPCID" },
  { id: "DECODE-LOCK", description: "LOCK on an instruction that is not lockable (lockable: ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B/16B DEC INC NEG NOT OR SBB SUB XADD XOR XCHG), or on a lockable one whose destination is not memory, raises #UD (LOCK MOV CR0, AMD's CR8 alias, a LOCK string instruction included)", source: "SDM Vol. 2A §2.1.1, LOCK" },
  { id: "DECODE-CR", description: "MOV to/from CR1, CR5–CR7 or CR9–CR15 raises #UD", source: "SDM Vol. 2B MOV—Move to/from Control Registers; digest MOVCR-02" },
  { id: "DECODE-SREG", description: "MOV with Sreg encoding 6 or 7 raises #UD (MOV to CS: SEG-08)", source: "SDM Vol. 2B MOV—Move" },
  { id: "DECODE-MODE", description: "SWAPGS, RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE outside 64-bit mode raise #UD", source: "SDM Vol. 2B SWAPGS; Vol. 2B RDFSBASE/RDGSBASE, WRFSBASE/WRGSBASE; digest SWAPGS-01" },
  { id: "DECODE-FEATURE", description: "The encoding of an instruction whose feature the modelled CPU lacks (VMX, SVM, SMX, SGX, MONITOR/MWAIT, RTM, PKU, CET, UINTR, FRED, LKGS, SERIALIZE, XSAVES, ...: docs/model-choices.md \"CPU features\") raises #UD, at any CPL, once the instruction is fetched", source: "SDM: each instruction's \"#UD If CPUID.… = 0\"; AMD APM for SVM (EFER.SVME = 0)" },
  { id: "DECODE-DR", description: "MOV to/from a debug register with REX.R (DR8–DR15) raises #UD", source: "SDM Vol. 2B MOV—Move to/from Debug Registers (64-Bit Mode Exceptions)" },
]);
