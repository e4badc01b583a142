// IN, OUT (imm8 and DX forms) — SDM Vol. 2A "IN", Vol. 2B "OUT", Vol. 1 §19.5 (I/O privilege level
// and I/O permission bit map).
import { GP, isFault, type Fault } from "../fault.ts";
import type { Instruction, Operand } from "../decode/instruction.ts";
import type { Semantics } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { iopl, MASK64, RAX, RDX, sizeMask } from "../machine/registers.ts";
import { operand } from "./operands.ts";
import { deviceIn } from "../devices/devices.ts";

/** TSS offset of the 16-bit I/O map base (digest DT-03). */
export const IO_MAP_BASE_OFFSET = 0x66;

/**
 * IO-01..03: at CPL ≤ IOPL every port is allowed. Otherwise the bits for ports port..port+size−1 in
 * the TSS I/O permission bit map must all be 0. The processor always reads two bitmap bytes at
 * I/O map base + port/8 (a range may straddle a byte), and both must lie within TR.limit —
 * which is why the SDM asks for a trailing 0xFF byte; a byte beyond the limit denies (#GP(0)).
 * The TSS reads are implicit supervisor accesses through TR's cached base.
 */
export function ioPermitted(t: Transaction, port: number, size: 1 | 2 | 4): Fault | undefined {
  if (t.cpl() <= iopl(t.m)) {
    t.hit("IO-01");
    return undefined;
  }
  const tr = t.m.tr;
  if (tr.unusable === 1 || tr.limit < IO_MAP_BASE_OFFSET + 1) return t.fault("IO-03", GP, 0);
  const mapBase = t.readLinear((tr.base + BigInt(IO_MAP_BASE_OFFSET)) & MASK64, 2, "implicit");
  if (isFault(mapBase)) return mapBase;
  const offset = Number(mapBase) + (port >> 3);
  if (offset + 1 > tr.limit) return t.fault("IO-03", GP, 0);
  const word = t.readLinear((tr.base + BigInt(offset)) & MASK64, 2, "implicit");
  if (isFault(word)) return word;
  const wanted = ((1n << BigInt(size)) - 1n) << BigInt(port & 7);
  if ((word & wanted) !== 0n) return t.fault("IO-02", GP, 0);
  t.hit("IO-04");
  return undefined;
}

/** The port number: an imm8, or DX's low 16 bits. */
function portOf(t: Transaction, op: Operand): number {
  if (op.kind !== "port") throw new Error("in/out: expected a port operand");
  return op.port === "dx" ? Number(t.readReg(RDX, 2)) : op.port;
}

/** The data size: that of the AL/AX/EAX operand. */
function dataSize(insn: Instruction, op: Operand): 1 | 2 | 4 {
  if (op.kind !== "reg" || op.size === 8) throw new Error(`${insn.mnemonic}: expected AL, AX or EAX`);
  return op.size;
}

/** IN: AL/AX/EAX ← the device register at the port (devices.ts), or env.portIn(port, size) where
 *  there is none (EAX zero-extends into RAX). */
export const execIn: Semantics = (t, insn, env) => {
  const size = dataSize(insn, operand(insn, 0));
  const port = portOf(t, operand(insn, 1));
  const denied = ioPermitted(t, port, size);
  if (isFault(denied)) return denied;
  const value = (deviceIn(t, port, size) ?? env.portIn(port, size)) & sizeMask(size);
  t.writeReg(RAX, size, value);
  t.hit("IO-05");
  return { kind: "io", direction: "in", port, size, value };
};

/** OUT: the port receives AL/AX/EAX. A device register takes the value once the instruction has
 *  completed and been counted (step/step.ts, devices.ts deviceOut). */
export const execOut: Semantics = (t, insn) => {
  const port = portOf(t, operand(insn, 0));
  const size = dataSize(insn, operand(insn, 1));
  const denied = ioPermitted(t, port, size);
  if (isFault(denied)) return denied;
  t.hit("IO-05");
  return { kind: "io", direction: "out", port, size, value: t.readReg(RAX, size) };
};

