// zod schemas for the JSON forms: test vectors (`ringspec-vector/1`, ../../conformance/vectors/README.md)
// and saved states (`ringspec-state/1`, same `initial` shape). Every external file goes through these.
import { z } from "zod";
import { MASK64 } from "./hex.ts";

/** 64-bit value: "0x" + 1..16 hex digits. Upper-case digits and leading zeros are accepted on input. */
export const Hex64 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{1,16}$/, { message: 'expected "0x" followed by 1 to 16 hex digits' })
  .transform((s) => BigInt(s))
  .refine((v) => v <= MASK64);

const hexWithin = (bits: number) =>
  Hex64.refine((v) => v < 1n << BigInt(bits), { message: `value does not fit in ${bits} bits` });

const Bit = z.number().int().min(0).max(1);

export const SegmentJson = z.strictObject({
  selector: hexWithin(16),
  base: Hex64,
  limit: hexWithin(32),
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

export const TableRegisterJson = z.strictObject({ base: Hex64, limit: hexWithin(16) });

export const GPR_NAMES = [
  "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
] as const;
export type GprName = (typeof GPR_NAMES)[number];

export const RegsJson = z.strictObject({
  rax: Hex64, rbx: Hex64, rcx: Hex64, rdx: Hex64, rsi: Hex64, rdi: Hex64, rsp: Hex64, rbp: Hex64,
  r8: Hex64, r9: Hex64, r10: Hex64, r11: Hex64, r12: Hex64, r13: Hex64, r14: Hex64, r15: Hex64,
  rip: Hex64,
  rflags: Hex64,
});

export const SregsJson = z.strictObject({
  cs: SegmentJson, ds: SegmentJson, es: SegmentJson, fs: SegmentJson, gs: SegmentJson, ss: SegmentJson,
  tr: SegmentJson, ldt: SegmentJson,
  gdt: TableRegisterJson, idt: TableRegisterJson,
  cr0: Hex64, cr2: Hex64, cr3: Hex64, cr4: Hex64, cr8: Hex64, efer: Hex64,
});

export const MsrsJson = z.strictObject({
  STAR: Hex64, LSTAR: Hex64, CSTAR: Hex64, SFMASK: Hex64, KERNEL_GS_BASE: Hex64,
  FS_BASE: Hex64, GS_BASE: Hex64,
});

export const MemoryRegionJson = z.strictObject({
  gpa: Hex64,
  bytes: z.string().regex(/^([0-9a-fA-F]{2})*$/, { message: "expected an even number of hex digits" }),
});

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
  memory: z.array(MemoryRegionJson),
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
  sregs: SregsJson.extend({
    cs: ExpectedSegmentJson, ds: ExpectedSegmentJson, es: ExpectedSegmentJson,
    fs: ExpectedSegmentJson, gs: ExpectedSegmentJson, ss: ExpectedSegmentJson,
    tr: ExpectedSegmentJson, ldt: ExpectedSegmentJson,
    gdt: TableRegisterJson.partial(), idt: TableRegisterJson.partial(),
  })
    .partial()
    .optional(),
  msrs: MsrsJson.partial().optional(),
  memory: z.array(MemoryRegionJson).optional(),
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
