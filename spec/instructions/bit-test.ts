// BT, BTS, BTR, BTC — SDM Vol. 2A "BT—Bit Test" and siblings. CF ← the selected bit; BTS/BTR/BTC
// then set/clear/complement it. ZF is unaffected; OF, SF, AF, PF are undefined and left unchanged.
import type { Instruction } from "../decode/instruction.ts";
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { operand, readDestination, setStatus, sizeOf } from "./operands.ts";

type BitOp = "bt" | "bts" | "btr" | "btc";

function semantics(op: BitOp): Semantics {
  return (t, insn: Instruction) => {
    const next = t.rip;
    const base = operand(insn, 0);
    const size = sizeOf(base, insn);
    const width = BigInt(8 * size);
    const offsetOp = operand(insn, 1);
    const rawOffset = t.read(offsetOp, next);
    if (isFault(rawOffset)) return rawOffset;
    // A register bit offset into memory is a signed bit-string index: the operand-sized unit it
    // falls in may lie before or after the addressed one. An immediate offset, or a register base,
    // takes the offset modulo the operand width.
    let target = base;
    let bit = rawOffset % width;
    if (base.kind === "mem" && offsetOp.kind === "reg") {
      const index = BigInt.asIntN(8 * size, rawOffset);
      const unit = index >= 0n ? index / width : -((-index + width - 1n) / width);
      bit = index - unit * width;
      target = { ...base, disp: base.disp + unit * BigInt(size) };
    }
    const value = op === "bt" ? t.read(target, next) : readDestination(t, target, next);
    if (isFault(value)) return value;
    const cf = ((value >> bit) & 1n) === 1n;
    if (op !== "bt") {
      const m = 1n << bit;
      const updated = op === "bts" ? value | m : op === "btr" ? value & ~m : value ^ m;
      const f = t.write(target, updated, next);
      if (isFault(f)) return f;
    }
    setStatus(t, "BT-01", { cf });
    return undefined;
  };
}

export const bt = semantics("bt");
export const bts = semantics("bts");
export const btr = semantics("btr");
export const btc = semantics("btc");
