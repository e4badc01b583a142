// Test helper: builds decoded Instructions by hand and runs one instruction's semantics (from the
// table, spec/semantics-table.ts) on a Transaction the way the step loop does (RIP already at the
// next instruction, RF cleared).
import type { Instruction, Mnemonic, Operand, OperandSize, SregName } from "../../../spec/decode/instruction.ts";
import { isFault, type Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import type { RuleId } from "../../../spec/rules/rule.ts";
import { SEMANTICS } from "../../../spec/semantics-table.ts";
import type { Outcome } from "../../../spec/transaction/semantics.ts";
import { Transaction } from "../../../spec/transaction/transaction.ts";

export function reg(r: number, size: OperandSize = 8, high8 = false): Operand {
  return { kind: "reg", reg: r, size, high8 };
}

export function imm(value: bigint, size: OperandSize): Operand {
  return { kind: "imm", value, size };
}

export function rel(disp: bigint): Operand {
  return { kind: "rel", disp };
}

export function port(p: number | "dx"): Operand {
  return { kind: "port", port: p };
}

export interface MemSpec {
  readonly size: number;
  readonly base?: number;
  readonly index?: number;
  readonly scale?: 1 | 2 | 4 | 8;
  readonly disp?: bigint;
  readonly segment?: SregName;
  readonly ripRelative?: boolean;
  readonly addressSize?: 4 | 8;
}

export function mem(spec: MemSpec): Operand {
  const base = spec.base ?? null;
  return {
    kind: "mem",
    size: spec.size,
    segment: spec.segment ?? (base === 4 || base === 5 ? "ss" : "ds"),
    stackSegment: base === 4 || base === 5,
    base,
    index: spec.index ?? null,
    scale: spec.scale ?? 1,
    disp: spec.disp ?? 0n,
    ripRelative: spec.ripRelative ?? false,
    addressSize: spec.addressSize ?? 8,
  };
}

export interface InsnOptions {
  readonly operandSize?: OperandSize;
  readonly length?: number;
  readonly condition?: number;
  readonly lock?: boolean;
}

export function insn(mnemonic: Mnemonic, operands: readonly Operand[], opts: InsnOptions = {}): Instruction {
  const length = opts.length ?? 3;
  const first = operands[0];
  const operandSize = opts.operandSize ?? (first !== undefined && (first.kind === "reg" || first.kind === "imm") ? first.size : 8);
  return {
    kind: "instruction",
    mnemonic,
    length,
    bytes: new Uint8Array(length),
    operandSize,
    addressSize: 8,
    operands,
    lock: opts.lock ?? false,
    rep: null,
    rexW: operandSize === 8,
    condition: opts.condition ?? 0,
  };
}

export interface Executed {
  /** The machine after the instruction, or as left by the fault (start state plus A/D bits). */
  readonly m: Machine;
  readonly fault: Fault | undefined;
  readonly outcome: Exclude<Outcome, Fault>;
  readonly coverage: Set<RuleId>;
}

export function exec(m: Machine, i: Instruction, portIn?: (port: number, size: 1 | 2 | 4) => bigint): Executed {
  const coverage = new Set<RuleId>();
  const t = new Transaction(m, INTEL, coverage);
  t.update("RF-01", { rip: m.rip + BigInt(i.length), rflags: m.rflags & ~RFLAGS.RF });
  const outcome = SEMANTICS[i.mnemonic](t, i, { portIn: portIn ?? ((_p, size) => (1n << BigInt(8 * size)) - 1n) });
  if (isFault(outcome)) return { m: t.machineAfterFault(m), fault: outcome, outcome: undefined, coverage };
  return { m: t.snapshot(), fault: undefined, outcome, coverage };
}

/** Expects the instruction to complete and returns the new machine. */
export function run(m: Machine, i: Instruction): Machine {
  const r = exec(m, i);
  if (r.fault !== undefined) throw new Error(`unexpected fault ${r.fault.rule} (vector ${r.fault.vector})`);
  return r.m;
}

/** RFLAGS from named flags (bit 1 always set). */
export function flagsOf(...names: (keyof typeof RFLAGS)[]): bigint {
  return names.reduce((acc, n) => acc | RFLAGS[n], RFLAGS.FIXED1);
}

export const STATUS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;
