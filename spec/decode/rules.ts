// Rules the decoder checks: faults raised before any instruction semantics run (digest §10,
// priority 9 "faults while decoding"). Opcode-specific #UDs cite the SDM opcode maps (Vol. 2D App. A).
import { defineRules } from "../rules/rule.ts";

export const DECODE_RULES = defineRules([
  { id: "DECODE-LENGTH", description: "An instruction longer than 15 bytes (prefixes included) raises #GP(0); the 16th byte is not fetched", source: "SDM Vol. 2A §2.3.11" },
  { id: "DECODE-INVALID-64", description: "Opcodes invalid in 64-bit mode (06 07 0E 16 17 1E 1F 27 2F 37 3F 60 61 82 9A CE D4 D5 D6 EA) raise #UD", source: "SDM Vol. 2D Table A-2 (i64); digest SWINT-05 for INTO" },
  { id: "DECODE-RESERVED", description: "A reserved opcode or ModRM.reg extension (FE /2–/7, FF /7, C6/C7 /1–/7, 0F BA /0–/3, 0F 00 /6–/7, 0F 01 D2/D3 — the LGDT/LIDT register forms that are no other instruction) raises #UD", source: "SDM Vol. 2D Table A-6; digest DT-01" },
  { id: "DECODE-MEMORY-ONLY", description: "The register form of a memory-only instruction (LEA, JMP far m16:xx, CALL far m16:xx, CMPXCHG8B/16B) raises #UD", source: "SDM Vol. 2A LEA, JMP, CALL, CMPXCHG8B" },
  { id: "DECODE-LOCK", description: "LOCK on an instruction that is not lockable (lockable: ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B/16B DEC INC NEG NOT OR SBB SUB XADD XOR XCHG), or on a lockable one whose destination is not memory, raises #UD (LOCK MOV CR0, AMD's CR8 alias, a LOCK string instruction included)", source: "SDM Vol. 2A §2.1.1, LOCK" },
  { id: "DECODE-CR", description: "MOV to/from CR1, CR5–CR7 or CR9–CR15 raises #UD", source: "SDM Vol. 2B MOV—Move to/from Control Registers; digest MOVCR-02" },
  { id: "DECODE-SREG", description: "MOV with Sreg encoding 6 or 7, or MOV to CS, raises #UD", source: "SDM Vol. 2B MOV—Move" },
  { id: "DECODE-MODE", description: "SWAPGS outside 64-bit mode raises #UD", source: "SDM Vol. 2B SWAPGS; digest SWAPGS-01" },
]);
