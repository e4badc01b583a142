// zod schemas for the JSON forms: test vectors (`ringspec-vector/1`, ../../conformance/vectors/README.md)
// and saved states (`ringspec-state/1`, same `initial` shape). Every external file goes through these.
import { z } from "zod";
import { isHexBytes } from "./hex.ts";
import { MAX_MEMORY_ENTRIES } from "./limits.ts";
import { MAXPHYADDR } from "./scope.ts";

/** 64-bit value as the files write it: "0x" + 1..16 hex digits; upper-case digits and leading
 *  zeros are accepted on input. The state shapes below keep the checked text (one regular
 *  expression a field) and the loader converts it (contract/state.ts stateFromJson, compare.ts for
 *  `expected`): a transform a field cost more than all the rest of validating a vector. */
export const Hex64Text = z.string().regex(/^0x[0-9a-fA-F]{1,16}$/, { message: 'expected "0x" followed by 1 to 16 hex digits' });

/** The same, as a bigint (the loader description and other small documents). */
export const Hex64 = Hex64Text.transform((s) => BigInt(s));

/** Hex text whose value fits in `bits` bits (a multiple of 4): at most bits/4 digits after any
 *  leading zeros, checked after the general form so a malformed value is reported as such. (A
 *  refinement, not a second pattern: the JSON Schema states the width as one pattern of its own,
 *  contract/json-schema.ts.) */
const hexWithin = (bits: 16 | 32) => {
  const fits = new RegExp(`^0x0*[0-9a-fA-F]{1,${bits / 4}}$`);
  return Hex64Text.refine((s) => fits.test(s), { message: `value does not fit in ${bits} bits` });
};

const Bit = z.number().int().min(0).max(1);
/** 32-bit value (segment limits, IA32_SYSENTER_CS): one instance, so the JSON Schema names it once. */
const Hex32 = hexWithin(32);

export const SegmentJson = z.strictObject({
  selector: hexWithin(16),
  base: Hex64Text,
  limit: Hex32,
  type: z.number().int().min(0).max(15),
  present: Bit,
  dpl: z.number().int().min(0).max(3),
  db: Bit,
  s: Bit,
  l: Bit,
  g: Bit,
  avl: Bit,
  unusable: Bit.default(0),
});

export const TableRegisterJson = z.strictObject({ base: Hex64Text, limit: hexWithin(16) });

export const GPR_NAMES = [
  "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
] as const;
export type GprName = (typeof GPR_NAMES)[number];

export const RegsJson = z.strictObject({
  rax: Hex64Text, rbx: Hex64Text, rcx: Hex64Text, rdx: Hex64Text, rsi: Hex64Text, rdi: Hex64Text, rsp: Hex64Text, rbp: Hex64Text,
  r8: Hex64Text, r9: Hex64Text, r10: Hex64Text, r11: Hex64Text, r12: Hex64Text, r13: Hex64Text, r14: Hex64Text, r15: Hex64Text,
  rip: Hex64Text,
  rflags: Hex64Text,
});

/** The debug registers a state may carry (ringspec extension; DR4/DR5 are aliases of DR6/DR7,
 *  not registers of their own). Absent: their reset values (SDM Vol. 3A §10.1.1, Table 10-1). */
export const DEBUG_REGISTER_RESET = { dr0: 0n, dr1: 0n, dr2: 0n, dr3: 0n, dr6: 0xffff0ff0n, dr7: 0x400n } as const;

const SREGS_SHAPE = {
  cs: SegmentJson, ds: SegmentJson, es: SegmentJson, fs: SegmentJson, gs: SegmentJson, ss: SegmentJson,
  tr: SegmentJson, ldt: SegmentJson,
  gdt: TableRegisterJson, idt: TableRegisterJson,
  cr0: Hex64Text, cr2: Hex64Text, cr3: Hex64Text, cr4: Hex64Text, cr8: Hex64Text, efer: Hex64Text,
  dr0: Hex64Text, dr1: Hex64Text, dr2: Hex64Text, dr3: Hex64Text, dr6: Hex64Text, dr7: Hex64Text,
};

/** A hex field that may be left out: absent means `value` (what the loader then holds). */
const hexDefault = (schema: typeof Hex64Text, value: bigint) => schema.prefault(`0x${value.toString(16)}`);

export const SregsJson = z.strictObject({
  ...SREGS_SHAPE,
  dr0: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr0), dr1: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr1),
  dr2: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr2), dr3: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr3),
  dr6: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr6), dr7: hexDefault(Hex64Text, DEBUG_REGISTER_RESET.dr7),
});

/** Power-up values of the MSRs a state may leave out (vector README, "Running a vector" 1):
 *  IA32_SYSENTER_CS/ESP/EIP 0, IA32_APIC_BASE 0xFEE00900 (bootstrap processor, xAPIC enabled,
 *  base 0xFEE00000; SDM Vol. 3A "Local APIC Status and Location"). */
export const MSR_POWER_UP = { SYSENTER_CS: 0n, SYSENTER_ESP: 0n, SYSENTER_EIP: 0n, APIC_BASE: 0xfee00900n } as const;

const MSRS_SHAPE = {
  STAR: Hex64Text, LSTAR: Hex64Text, CSTAR: Hex64Text, SFMASK: Hex64Text, KERNEL_GS_BASE: Hex64Text,
  FS_BASE: Hex64Text, GS_BASE: Hex64Text,
  /** Bits 63:32 are not part of IA32_SYSENTER_CS (SDM Vol. 4 Table 2-2: bits 15:0 the selector,
   *  31:16 not used). */
  SYSENTER_CS: Hex32, SYSENTER_ESP: Hex64Text, SYSENTER_EIP: Hex64Text, APIC_BASE: Hex64Text,
};

export const MsrsJson = z.strictObject({
  ...MSRS_SHAPE,
  SYSENTER_CS: hexDefault(MSRS_SHAPE.SYSENTER_CS, MSR_POWER_UP.SYSENTER_CS),
  SYSENTER_ESP: hexDefault(Hex64Text, MSR_POWER_UP.SYSENTER_ESP),
  SYSENTER_EIP: hexDefault(Hex64Text, MSR_POWER_UP.SYSENTER_EIP),
  APIC_BASE: hexDefault(Hex64Text, MSR_POWER_UP.APIC_BASE),
});

/** Memory bytes as two hex digits a byte, checked in one linear pass (a regular expression with a
 *  repeated group overflows the stack on a few MiB of digits). */
export const HexBytes = z.string().refine(isHexBytes, { message: "expected an even number of hex digits" });
/** The same rule as a JSON Schema pattern, for the generated schemas (their users' validators). */
export const HEX_BYTES_PATTERN = "^([0-9a-fA-F]{2})*$";
z.globalRegistry.add(HexBytes, { pattern: HEX_BYTES_PATTERN });

const PHYSICAL_LIMIT = 2 ** MAXPHYADDR;

/** Bytes at a physical address; they must lie below 2^MAXPHYADDR (the machine has no memory
 *  above; this also keeps an entry from wrapping past 2^64). In Numbers, exactly: below 2^53
 *  `Number` reads the hex text exactly, and above it rounds to a value still above the limit
 *  (BigInt arithmetic here was ~3% of loading a vector: every memory entry comes through). */
export const MemoryRegionJson = z
  .strictObject({ gpa: Hex64Text, bytes: HexBytes })
  .refine((r) => Number(r.gpa) + (r.bytes.length >> 1) <= PHYSICAL_LIMIT, {
    path: ["gpa"],
    message: `the bytes run past the physical address width (MAXPHYADDR ${MAXPHYADDR}: addresses below 0x${(1n << BigInt(MAXPHYADDR)).toString(16)})`,
  });

/** "65,536". Not toLocaleString: its first call sets up ICU's number formatting, ~12 ms of CPU
 *  in every process that imports the schemas (most of building them). */
const withCommas = (n: number): string => String(n).replace(/\B(?=(\d{3})+$)/g, ",");

/** A `memory` array: at most MAX_MEMORY_ENTRIES entries (contract/limits.ts). */
const MemoryJson = z.array(MemoryRegionJson).max(MAX_MEMORY_ENTRIES, { message: `more than ${withCommas(MAX_MEMORY_ENTRIES)} entries (the cap on memory entries)` });

const Vector = z.number().int().min(0).max(255);

/** Run-time CPU state a mid-run snapshot needs (vector README, "Fields"); `shutdown` and
 *  `pending_debug_trap` are ringspec extensions so that every state a step can leave reloads exactly. */
export const CpuJson = z.strictObject({
  pending_irq: Vector.nullable().default(null),
  pending_nmi: z.boolean().default(false),
  nmi_blocked: z.boolean().default(false),
  shadow: z.enum(["none", "sti", "movss"]).default("none"),
  halted: z.boolean().default(false),
  shutdown: z.boolean().default(false),
  pending_debug_trap: z.boolean().default(false),
});

const Uint32 = z.number().int().min(0).max(0xffff_ffff);

/** The deterministic timer (docs/devices.md, "The timer"). */
export const TimerJson = z.strictObject({
  period: Uint32.default(0),
  vector: Vector.default(0x20),
  countdown: Uint32.default(0),
  waiting_eoi: z.boolean().default(false),
});

/** The devices of docs/devices.md (a ringspec extension): absent means the reset state. While the
 *  timer is counting (period ≠ 0, not waiting for its EOI) its countdown is 1..period. */
export const DevicesJson = z
  .strictObject({
    timer: TimerJson.default({ period: 0, vector: 0x20, countdown: 0, waiting_eoi: false }),
    exit_value: Uint32.nullable().default(null),
  })
  .superRefine((d, ctx) => {
    const t = d.timer;
    if (t.period !== 0 && !t.waiting_eoi && (t.countdown < 1 || t.countdown > t.period))
      ctx.addIssue({ code: "custom", path: ["timer", "countdown"], message: "must be 1..period while the timer is counting" });
  });

export const StateJson = z.strictObject({
  regs: RegsJson,
  sregs: SregsJson,
  msrs: MsrsJson,
  memory: MemoryJson,
  cpu: CpuJson.optional(),
  devices: DevicesJson.optional(),
});

export const ProfileNameSchema = z.enum(["intel", "amd"]);

export const InjectJson = z.strictObject({ irq: Vector.optional(), nmi: z.boolean().optional() });

export const ExitKind = z.enum(["hlt", "shutdown", "limit"]);

/** A segment in `expected`: every field optional, and no default (an absent `unusable` must stay
 *  absent, or it would be compared as 0). */
const ExpectedSegmentJson = SegmentJson.extend({ unusable: Bit }).partial();

/** `expected`: any subset of the initial shape; absent fields are not compared. */
export const ExpectedJson = z.strictObject({
  exit: ExitKind,
  regs: RegsJson.partial().optional(),
  sregs: z.strictObject(SREGS_SHAPE).extend({
    cs: ExpectedSegmentJson, ds: ExpectedSegmentJson, es: ExpectedSegmentJson,
    fs: ExpectedSegmentJson, gs: ExpectedSegmentJson, ss: ExpectedSegmentJson,
    tr: ExpectedSegmentJson, ldt: ExpectedSegmentJson,
    gdt: TableRegisterJson.partial(), idt: TableRegisterJson.partial(),
  })
    .partial()
    .optional(),
  // The shapes without defaults: a field absent from `expected` stays absent (not compared).
  msrs: z.strictObject(MSRS_SHAPE).partial().optional(),
  memory: MemoryJson.optional(),
  /** Any subset of the devices (no defaults: an absent field is not compared). */
  devices: z
    .strictObject({
      timer: z.strictObject({ period: Uint32, vector: Vector, countdown: Uint32, waiting_eoi: z.boolean() }).partial().optional(),
      exit_value: Uint32.nullable().optional(),
    })
    .optional(),
});

export const ProvenanceJson = z.object({
  recorded_with: z.array(z.string()),
  agrees_with_sdm: z.boolean(),
  notes: z.string(),
});

export const VectorJson = z.strictObject({
  format: z.literal("ringspec-vector/1"),
  name: z.string().min(1),
  description: z.string(),
  provenance: ProvenanceJson,
  profile: ProfileNameSchema.optional(),
  initial: StateJson,
  inject: InjectJson.optional(),
  limits: z.strictObject({ max_steps: z.number().int().min(0) }),
  expected: ExpectedJson,
});

/** A saved machine state: what `ringspec run` prints and reloads. */
export const StateFileJson = StateJson.extend({
  format: z.literal("ringspec-state/1"),
  profile: ProfileNameSchema.optional(),
});

export type SegmentJsonIn = z.input<typeof SegmentJson>;
export type StateJsonIn = z.input<typeof StateJson>;
export type VectorJsonIn = z.input<typeof VectorJson>;
export type ExpectedParsed = z.output<typeof ExpectedJson>;
export type VectorParsed = z.output<typeof VectorJson>;
export type StateParsed = z.output<typeof StateJson>;
