// The instruction fetch: the bytes at RIP, fetched for the decoder one at a time, with the fetch
// faults (CANON-FETCH, #PF) of exactly the bytes the instruction needs.
import { decode } from "../decode/decode.ts";
import type { Instruction, Unsupported } from "../decode/instruction.ts";
import { rememberedInstruction, rememberInstruction } from "../decode/memo.ts";
import { GP, isFault, type Fault } from "../fault.ts";
import type { MachineRegisters } from "../machine/machine.ts";
import { canonical, cpl, in64BitMode, MASK64 } from "../machine/registers.ts";
import type { AccessMode } from "../paging/access.ts";
import type { Transaction } from "../transaction/transaction.ts";

/** Linear address of the instruction pointer: CS.base applies outside 64-bit mode. */
function fetchAddress(m: MachineRegisters, offset: number): bigint {
  return in64BitMode(m) ? (m.rip + BigInt(offset)) & MASK64 : (m.cs.base + ((m.rip + BigInt(offset)) & 0xffff_ffffn)) & 0xffff_ffffn;
}

/**
 * The bytes of the instruction at RIP, fetched for the decoder one at a time. Each page they come
 * from is checked and translated once, when its first byte is needed: the bytes after it up to the
 * end of the page are at consecutive linear addresses, canonical exactly when it is (the canonical
 * boundary is a page boundary), and walk the same entries (nothing is written between the fetches
 * of one instruction, and the first walk already set their A bits).
 */
class InstructionBytes {
  private readonly mode: AccessMode;
  /** SEG-CHECK-FETCH: in compatibility mode, bytes 0..limitEnd−1 lie within the CS limit (EIP + i
   *  ≤ CS.limit); in 64-bit mode there is no limit. */
  readonly limitEnd: number;
  /** Bytes first..end−1 are in physical page `page`, byte i at offset `i + shift`. */
  private first = 0;
  private end = 0;
  page = 0;
  shift = 0;

  constructor(private readonly t: Transaction, private readonly m: MachineRegisters) {
    this.mode = cpl(m) === 3 ? "user" : "supervisor";
    this.limitEnd = in64BitMode(m) ? Infinity : m.cs.limit - Number(m.rip & 0xffff_ffffn) + 1;
  }

  byte(i: number): number | Fault {
    if (i >= this.limitEnd) return this.t.fault("SEG-CHECK-FETCH", GP, 0);
    if (i < this.first || i >= this.end) {
      const address = fetchAddress(this.m, i);
      if (!canonical(address)) return this.t.fault("CANON-FETCH", GP, 0);
      const physical = this.t.translateFetch(address, this.mode);
      if (isFault(physical)) return physical;
      const offset = Number(address & 0xfffn);
      this.first = i;
      this.end = i + 4096 - offset;
      this.page = Number(physical >> 12n);
      this.shift = offset - i;
    }
    return this.t.physicalByte(this.page, i + this.shift);
  }
}

/** Decodes at RIP; fetch faults (#PF, #GP for non-canonical RIP) come back as faults. */
export function fetchAndDecode(t: Transaction): Instruction | Unsupported | Fault {
  const m = t.m;
  const mode64 = in64BitMode(m);
  const bytes = new InstructionBytes(t, m);
  // The first byte's fetch (its checks and walk) always happens; the bytes from there may have
  // been decoded before (spec/decode/memo.ts).
  const byte0 = bytes.byte(0);
  if (isFault(byte0)) return byte0;
  const fixed = t.fixedPage(bytes.page);
  const known = rememberedInstruction(fixed, bytes.shift, mode64);
  // A remembered instruction lies in byte 0's page, so only the CS limit can stop its later bytes.
  if (known !== undefined) return known.length <= bytes.limitEnd ? known : t.fault("SEG-CHECK-FETCH", GP, 0);
  const decoded = decode((i) => bytes.byte(i), mode64);
  if (decoded.kind === "instruction") rememberInstruction(fixed, bytes.shift, mode64, decoded);
  return decoded;
}
