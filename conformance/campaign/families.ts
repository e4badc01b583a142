// The families of generated cases a campaign draws from (`--families LIST`): random programs of
// the modelled instruction subset, the six transition-scenario families, model-based sequences on
// a valid long-mode environment (generate/model.ts), and random bytes from random privilege
// states (fuzz). A family says how to generate a case (a fast-check arbitrary over plain data, so
// fast-check can shrink it), how to build the machine state from it, how to shrink it further by
// the domain's own moves (drop an instruction, zero a register, round a value), and how big it is.
import fc from "fast-check";
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState, Segment } from "../../contract/state.ts";
import type { RaiseRequest } from "../../contract/engine.ts";
import { DEFAULT_LAYOUT, buildGuest, HALT_LOOP } from "../../guest/index.ts";
import { encodeProgram, type InstructionSpec } from "../generate/program.ts";
import { FAMILIES as SCENARIOS, buildScenario, type Scenario } from "../generate/scenarios.ts";
import { MODEL_FAMILY } from "../generate/model.ts";

/** A raise at an instruction boundary: before the first step that starts at `rip`. */
export interface ScheduledRaise {
  readonly rip: bigint;
  readonly event: RaiseRequest;
}

export interface BuiltCase {
  readonly state: ArchState;
  readonly profile: ProfileName;
  readonly maxSteps: number;
  readonly raises: readonly ScheduledRaise[];
}

export interface Family<T = unknown> {
  readonly name: string;
  /** One line for help texts and reports. */
  readonly description: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /** The machine for `value`; `profile` overrides the case's own vendor. */
  build(value: T, profile?: ProfileName): BuiltCase;
  /** Domain shrinking: smaller variants of `value`, most aggressive first. */
  shrink(value: T): T[];
  /** How big the case is, for reports: instructions (or bytes, for fuzz). */
  size(value: T): number;
  readonly unit: "instructions" | "bytes";
}

// ------------------------------------------------------------------------------------------------
// Helpers for domain shrinking

/** `list` without element i, for each i (the last first: trailing instructions rarely matter). */
export function dropEach<T>(list: readonly T[], keep = 0): T[][] {
  const out: T[][] = [];
  if (list.length <= keep) return out;
  // Halves first when the list is long (whole blocks of pokes or instructions).
  if (list.length > 8) out.push(list.slice(0, list.length >> 1), list.slice(list.length >> 1));
  for (let i = list.length - 1; i >= 0; i--) out.push([...list.slice(0, i), ...list.slice(i + 1)]);
  return out.filter((l) => l.length >= keep);
}

/** Rounder values to try for `v`: 0, then `v` with its low bits cleared. */
export function roundings(v: bigint): bigint[] {
  if (v === 0n) return [];
  const out = [0n];
  for (const bits of [32n, 16n, 12n, 8n, 4n]) {
    const r = (v >> bits) << bits;
    if (r !== v && !out.includes(r)) out.push(r);
  }
  return out;
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const profileArb = fc.constantFrom<ProfileName>("intel", "amd");

// ------------------------------------------------------------------------------------------------
// Random programs (the instruction subset, kernel and user mode)

export interface ProgramCase {
  readonly kernel: boolean;
  readonly profile: ProfileName;
  readonly specs: readonly InstructionSpec[];
  readonly regs: readonly bigint[];
  readonly rflags: bigint;
  /** DS, ES, SS, FS, GS bases and KERNEL_GS_BASE: 64-bit mode ignores most, engines must carry them. */
  readonly bases: readonly bigint[];
}

const programArb: fc.Arbitrary<ProgramCase> = fc.record({
  kernel: fc.boolean(),
  profile: profileArb,
  specs: fc.array(fc.record({ template: fc.nat(), a: fc.nat(15), b: fc.nat(63), imm: fc.integer() }), { minLength: 1, maxLength: 24 }),
  regs: fc.array(u64, { minLength: 16, maxLength: 16 }),
  rflags: fc.constantFrom(0x2n, 0x202n, 0x246n, 0x3202n, 0x40a93n),
  bases: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }), fc.bigInt({ min: 0xffff_8000_0000_0000n, max: (1n << 64n) - 1n })), { minLength: 6, maxLength: 6 }),
});

const withBase = (s: Segment, base: bigint): Segment => ({ ...s, base });

/** What a caller may vary beyond the case (the lockstep test does; campaigns use neither, so a
 *  seed keeps its cases): IN/OUT aimed at the device ports (generate/program.ts ProgramLayout),
 *  and the templates instructions are drawn from (default: every template of the program's kind). */
export interface ProgramOptions {
  readonly devices?: boolean;
  readonly templates?: readonly number[];
}

export function buildProgram(c: ProgramCase, profile?: ProfileName, options: ProgramOptions = {}): BuiltCase {
  const guest = buildGuest(DEFAULT_LAYOUT, { start: { ring: c.kernel ? 0 : 3 } });
  const base = guest.state;
  const data = c.kernel ? DEFAULT_LAYOUT.data.kernel : DEFAULT_LAYOUT.data.user;
  guest.memory.write(base.rip, encodeProgram(c.specs, { rip: base.rip, data, kernel: c.kernel, devices: options.devices === true }, options.templates));
  // A recognisable data page for the memory operands.
  guest.memory.write(data, Array.from({ length: 256 }, (_, i) => (i * 37 + 11) & 0xff));
  const [ds, es, ss, fs, gs, kernelGs] = c.bases as [bigint, bigint, bigint, bigint, bigint, bigint];
  const state: ArchState = {
    ...base,
    gpr: c.regs.map((v, i) => (i === 4 ? base.gpr[4]! : v)),
    rflags: c.kernel ? c.rflags : c.rflags & ~0x3000n,
    ds: withBase(base.ds, ds), es: withBase(base.es, es), ss: withBase(base.ss, ss), fs: withBase(base.fs, fs), gs: withBase(base.gs, gs),
    kernelGsBase: kernelGs,
  };
  return { state, profile: profile ?? c.profile, maxSteps: 200, raises: [] };
}

function shrinkProgram(c: ProgramCase): ProgramCase[] {
  const out: ProgramCase[] = dropEach(c.specs, 1).map((specs) => ({ ...c, specs }));
  for (let i = 0; i < c.specs.length; i++) {
    const s = c.specs[i]!;
    if (s.imm !== 0) out.push({ ...c, specs: c.specs.map((x, j) => (j === i ? { ...x, imm: 0 } : x)) });
  }
  if (c.regs.some((r) => r !== 0n)) out.push({ ...c, regs: c.regs.map(() => 0n) });
  c.regs.forEach((r, i) => {
    for (const v of roundings(r)) out.push({ ...c, regs: c.regs.map((x, j) => (j === i ? v : x)) });
  });
  if (c.bases.some((b) => b !== 0n)) out.push({ ...c, bases: c.bases.map(() => 0n) });
  if (c.rflags !== 0x2n) out.push({ ...c, rflags: 0x2n });
  return out;
}

export const PROGRAM_FAMILY: Family<ProgramCase> = {
  name: "program",
  description: "random programs of the modelled instruction subset (kernel and user mode, random registers, flags and segment bases)",
  arbitrary: programArb,
  build: buildProgram,
  shrink: shrinkProgram,
  size: (c) => c.specs.length,
  unit: "instructions",
};

// ------------------------------------------------------------------------------------------------
// The transition scenarios (generate/scenarios.ts)

function shrinkScenario(s: Scenario): Scenario[] {
  const out: Scenario[] = dropEach(s.code, 1).map((code) => ({ ...s, code }));
  out.push(...dropEach(s.pokes).map((pokes) => ({ ...s, pokes })));
  out.push(...dropEach(s.segments).map((segments) => ({ ...s, segments })));
  if (s.regs.length > 0) out.push({ ...s, regs: [] });
  s.regs.forEach(([n, v], i) => {
    for (const r of roundings(v)) out.push({ ...s, regs: s.regs.map((x, j) => (j === i ? ([n, r] as const) : x)) });
  });
  for (const key of Object.keys(s.set) as (keyof Scenario["set"])[]) {
    const { [key]: _, ...rest } = s.set;
    out.push({ ...s, set: rest });
  }
  for (const key of Object.keys(s.cpu) as (keyof Scenario["cpu"])[]) {
    const { [key]: _, ...rest } = s.cpu;
    out.push({ ...s, cpu: rest });
  }
  s.pokes.forEach((p, i) => {
    for (const v of roundings(p.value)) out.push({ ...s, pokes: s.pokes.map((x, j) => (j === i ? { ...x, value: v } : x)) });
  });
  if (s.rflags !== 0x2n && s.rflags !== 0x202n) out.push({ ...s, rflags: s.ring === 3 ? 0x202n : 0x2n });
  return out;
}

function scenarioFamily(name: string, arbitrary: fc.Arbitrary<Scenario>, description: string): Family<Scenario> {
  return {
    name,
    description,
    arbitrary,
    build: (s, profile) => ({ state: buildScenario(profile === undefined ? s : { ...s, profile }), profile: profile ?? s.profile, maxSteps: 40, raises: [] }),
    shrink: shrinkScenario,
    size: (s) => s.code.length,
    unit: "instructions",
  };
}

const SCENARIO_DESCRIPTIONS: Readonly<Record<string, string>> = {
  iret: "IRET frames with random selectors, RPLs, RFLAGS images and stacks",
  delivery: "event delivery through perturbed IDT gates, TSS stacks and limits (incl. #DF and triple faults)",
  syscall: "SYSCALL/SYSRET with random STAR/LSTAR/CSTAR/FMASK/RCX/R11 and SWAPGS",
  segment: "segment loads (MOV/POP Sreg), far returns and far JMP through memory with random selectors and descriptors, and frames the CPU accepts",
  paging: "loads, stores, pushes, calls and jumps through page-table entries with random flags under WP/SMEP/SMAP/AC/NXE",
  msrcr: "RDMSR/WRMSR and MOV to/from CR with random indices and values",
  privileged: "every privileged and system instruction at CPL 3 and CPL 0 with random CR4, EFER, DR6/DR7, SYSENTER_CS and TSS/LDT descriptors",
  sysenter: "SYSENTER/SYSEXIT (both forms) with random SYSENTER MSRs, modes and profiles",
  compat: "compatibility-mode segmentation: limits, types, expand-down, SS.B, unusable segments, CS limits",
  pcid: "CR4.PCIDE, CR3 with PCIDs and the no-flush bit, INVPCID, FSGSBASE",
  farxfer: "IRET, far RET and far JMP into 32-bit code segments with random limits, EIPs and popped RSPs, and outer returns' data segments",
};

// ------------------------------------------------------------------------------------------------
// Fuzz: random bytes from random privilege states

export interface FuzzCase {
  readonly profile: ProfileName;
  readonly ring: 0 | 3;
  readonly compat: boolean;
  readonly rflags: bigint;
  readonly bytes: readonly number[];
  readonly regs: readonly bigint[];
}

const fuzzArb: fc.Arbitrary<FuzzCase> = fc.record({
  profile: profileArb,
  ring: fc.constantFrom<0 | 3>(0, 3),
  compat: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  rflags: fc.constantFrom(0x2n, 0x202n, 0x246n, 0x3202n, 0x40202n, 0x302n, 0x4202n, 0x10202n),
  bytes: fc.oneof(
    fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }),
    // Prefixes and escapes first: most random bytes decode as one-byte opcodes otherwise.
    fc.tuple(fc.array(fc.constantFrom(0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x48, 0x41, 0x4f), { maxLength: 3 }), fc.constantFrom([0x0f], [0x0f, 0x01], [0x0f, 0x00], [0xff], [0xfe], [0xc7], [0x8e], [0xcf], [0xca], [0xcb], []), fc.array(fc.nat(255), { minLength: 0, maxLength: 10 }))
      .map(([p, e, rest]) => [...p, ...e, ...rest].slice(0, 15))
      .filter((b) => b.length > 0),
  ),
  regs: fc.array(fc.oneof(fc.constantFrom(0n, 0x8000n, 0x200000n, 0x220000n, 0x30000n, 0x10n, 0x1ff00n), u64), { minLength: 4, maxLength: 4 }),
});

export function buildFuzz(c: FuzzCase, profile?: ProfileName): BuiltCase {
  const guest = buildGuest(DEFAULT_LAYOUT, { start: { ring: c.ring, compat: c.compat, rflags: c.ring === 3 ? c.rflags & ~0x3000n : c.rflags } });
  const rip = guest.state.rip;
  guest.memory.write(rip, [...c.bytes, ...HALT_LOOP]);
  guest.memory.write(DEFAULT_LAYOUT.data.user, Array.from({ length: 64 }, (_, i) => (i * 29 + 3) & 0xff));
  // RAX, RCX, RDX, RBX: addresses, selectors and random values for the operands the bytes name.
  const gpr = guest.state.gpr.map((v, i) => (i < 4 ? c.regs[i]! : v));
  return { state: { ...guest.state, gpr }, profile: profile ?? c.profile, maxSteps: 12, raises: [] };
}

function shrinkFuzz(c: FuzzCase): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (let n = 1; n < c.bytes.length; n++) out.push({ ...c, bytes: c.bytes.slice(0, n) });
  c.bytes.forEach((b, i) => {
    if (b !== 0) out.push({ ...c, bytes: c.bytes.map((x, j) => (j === i ? 0 : x)) });
  });
  c.regs.forEach((r, i) => {
    for (const v of roundings(r)) out.push({ ...c, regs: c.regs.map((x, j) => (j === i ? v : x)) });
  });
  if (c.rflags !== 0x2n && c.rflags !== 0x202n) out.push({ ...c, rflags: c.ring === 3 ? 0x202n : 0x2n });
  if (c.compat) out.push({ ...c, compat: false });
  return out;
}

export const FUZZ_FAMILY: Family<FuzzCase> = {
  name: "fuzz",
  description: "random byte strings from random privilege states (CPL 0/3, 64-bit or compatibility mode, odd flags): neither engine may throw or hang, and both must agree",
  arbitrary: fuzzArb,
  build: buildFuzz,
  shrink: shrinkFuzz,
  size: (c) => c.bytes.length,
  unit: "bytes",
};

// ------------------------------------------------------------------------------------------------
// The registry

export const CAMPAIGN_FAMILIES: readonly Family[] = [
  PROGRAM_FAMILY as Family,
  ...Object.entries(SCENARIOS).map(([name, arb]) => scenarioFamily(name, arb, SCENARIO_DESCRIPTIONS[name] ?? name) as Family),
  MODEL_FAMILY as Family,
  FUZZ_FAMILY as Family,
];

export const FAMILY_NAMES: readonly string[] = CAMPAIGN_FAMILIES.map((f) => f.name);

export function familyByName(name: string): Family | undefined {
  return CAMPAIGN_FAMILIES.find((f) => f.name === name);
}
