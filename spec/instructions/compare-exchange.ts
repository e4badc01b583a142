// CMPXCHG, XADD, CMPXCHG8B/CMPXCHG16B — SDM Vol. 2A "CMPXCHG", "CMPXCHG8B/CMPXCHG16B", Vol. 2B
// "XADD". With LOCK (decode.ts accepts it on a memory destination) they are atomic; the model has
// one CPU, so the lock changes nothing, but the destination is read as a write from the start (a
// #PF reports W = 1) and a memory destination is always written — with its own value when the
// comparison fails — as the SDM says: "the processor never produces a locked read without also
// producing a locked write".
import { GP, isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { RAX, RBX, RCX, RDX, RFLAGS } from "../machine/registers.ts";
import { addWithCarry, subWithBorrow } from "./flags.ts";
import { operand, readDestination, setStatus, sizeOf } from "./operands.ts";

/**
 * CMPXCHG r/m, r: TEMP ← DEST; the flags of accumulator − TEMP (CMPXCHG-03); equal → DEST ← SRC
 * and the accumulator is not written (CMPXCHG-01); not equal → accumulator ← TEMP, and a memory
 * DEST is written back with TEMP, a register DEST is left alone (CMPXCHG-02).
 */
export const cmpxchg: Semantics = (t, insn) => {
  const next = t.rip;
  const dst = operand(insn, 0);
  const size = sizeOf(dst, insn);
  const temp = readDestination(t, dst, next);
  if (isFault(temp)) return temp;
  const src = t.read(operand(insn, 1), next);
  if (isFault(src)) return src;
  const accumulator = t.readReg(RAX, size);
  const { flags } = subWithBorrow(accumulator, temp, false, size);
  if (accumulator === temp) {
    const f = t.write(dst, src, next, "CMPXCHG-01");
    if (isFault(f)) return f;
  } else {
    if (dst.kind === "mem") {
      const f = t.write(dst, temp, next);
      if (isFault(f)) return f;
    }
    t.writeReg(RAX, size, temp);
    t.hit("CMPXCHG-02");
  }
  setStatus(t, "CMPXCHG-03", flags);
  return undefined;
};

/** XADD r/m, r: TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP (last, so `xadd %eax, %eax` leaves the
 *  sum); the flags of the addition. */
export const xadd: Semantics = (t, insn) => {
  const next = t.rip;
  const dst = operand(insn, 0);
  const src = operand(insn, 1);
  const size = sizeOf(dst, insn);
  const old = readDestination(t, dst, next);
  if (isFault(old)) return old;
  const addend = t.read(src, next);
  if (isFault(addend)) return addend;
  const { result, flags } = addWithCarry(old, addend, false, size);
  // Memory first: if it faults, no register has changed (and nothing survives anyway).
  if (dst.kind === "mem") {
    const f = t.write(dst, result, next);
    if (isFault(f)) return f;
    t.write(src, old, next, "XADD-01");
  } else {
    t.write(src, old, next);
    t.write(dst, result, next, "XADD-01");
  }
  setStatus(t, "XADD-01", flags);
  return undefined;
};

/**
 * CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W): compare EDX:EAX (RDX:RAX) with the memory operand;
 * equal → ZF = 1 and m ← ECX:EBX (RCX:RBX), RAX and RDX not written (CMPXCHG8B-01); not equal →
 * ZF = 0, EDX:EAX ← m (32-bit writes: bits 63:32 cleared) and m written back (CMPXCHG8B-02). CF,
 * PF, AF, SF and OF are unaffected. CMPXCHG16B needs a 16-byte aligned operand (CMPXCHG16B-01).
 */
function compareExchangeDouble(half: 4 | 8): Semantics {
  return (t, insn) => {
    const next = t.rip;
    const m = operand(insn, 0);
    if (m.kind !== "mem") throw new Error(`${insn.mnemonic}: expected a memory operand`);
    const linear = t.linearAddress(m, next);
    if (half === 8 && (linear & 0xfn) !== 0n) return t.fault("CMPXCHG16B-01", GP, 0);
    const bits = BigInt(8 * half);
    const temp = t.readLinear(linear, 2 * half, t.dataMode(), { kind: "write", stack: m.stackSegment, alignment: 2 * half });
    if (isFault(temp)) return temp;
    const expected = (t.readReg(RDX, half) << bits) | t.readReg(RAX, half);
    const equal = temp === expected;
    const store = equal ? (t.readReg(RCX, half) << bits) | t.readReg(RBX, half) : temp;
    const f = t.writeLinear(linear, 2 * half, store, t.dataMode(), { stack: m.stackSegment, alignment: 2 * half });
    if (isFault(f)) return f;
    if (equal) t.hit("CMPXCHG8B-01");
    else {
      t.writeReg(RAX, half, temp & ((1n << bits) - 1n));
      t.writeReg(RDX, half, temp >> bits);
      t.hit("CMPXCHG8B-02");
    }
    t.update("CMPXCHG8B-01", { rflags: equal ? t.rflags | RFLAGS.ZF : t.rflags & ~RFLAGS.ZF });
    return undefined;
  };
}

export const cmpxchg8b = compareExchangeDouble(4);
export const cmpxchg16b = compareExchangeDouble(8);
