// Model-based sequences (fast-check `fc.commands`) on a valid long-mode environment: a small
// kernel built with the guest kit (GDT, an IDT with all 256 gates and a handler behind each, a TSS
// with RSP0 and IST stacks for NMI, #DF and one IRQ vector, kernel and user page tables, per-CPU
// data behind GS, STAR/LSTAR/FMASK with a SYSCALL entry) and a user program made of commands:
//
//   execute K instructions   K random instructions of the modelled subset, in user mode
//   raise an IRQ / an NMI    made pending at the boundary where the next command starts
//   syscall round trip       SYSCALL → entry (SWAPGS, stack switch) → SYSRETQ
//   interrupt round trip     INT 0x80 through a DPL-3 gate → handler → IRETQ
//   rewrite a page-table entry   a system call that stores a PTE of the scratch region (6–8 MiB)
//   INVLPG                   a system call that invalidates a scratch page
//   access a scratch page    a user load or store there (it may fault)
//   sleep until woken        a system call that halts in the kernel until an NMI (IF = 0) or an
//                            IRQ (`sti; hlt`, raised in the STI shadow or once halted) wakes it
//
// Every command starts by storing the address of the next one in a user "resume" slot; the
// exception handlers resume a faulting user command there, so a sequence always makes progress
// and ends with a system call that halts. fast-check shrinks the command list; the family's own
// shrinking drops commands and instructions.
import fc from "fast-check";
import type { ProfileName } from "../../contract/profile.ts";
import type { RaiseRequest } from "../../contract/engine.ts";
import {
  Assembler, AssembledImage, Code, DEFAULT_MAPPINGS, Register, abs, buildGuest, defineLayout, mem, percpuOffset, sym, type GuestLayout, type Section,
} from "../../guest/index.ts";
import { emitInstructions, type InstructionSpec } from "./program.ts";
import type { BuiltCase, Family, ScheduledRaise } from "../campaign/families.ts";

const STUBS = 0x18000n;
const KERNEL = 0x10000n;
/** User page holding the resume slot (not the data page random instructions write to). */
const RESUME = 0x221ff8n;
/** The scratch region: 6–8 MiB, mapped through the 4 KiB table at 0x4000 (nothing present). */
const SCRATCH = 0x600000n;
const SCRATCH_PT = 0x4000n;
const SCRATCH_PAGES = 8;
/** Vectors whose exceptions push an error code. */
const ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
const IRQ_IST_VECTOR = 0x40;

const LAYOUT: GuestLayout = defineLayout({
  idt: { stubs: null, handler: (v) => STUBS + 16n * BigInt(v), userVectors: [0x80], ist: { 2: 1, 8: 2, [IRQ_IST_VECTOR]: 3 } },
  msrs: { fmask: 0x47700n },
  paging: { mappings: DEFAULT_MAPPINGS },
  haltPads: [],
});

/** The kernel: exception stubs, the common handler and the SYSCALL entry. */
function kernel(asm: Assembler): void {
  // One section per stub, at its gate's address (one section with alignment between 256 stubs
  // keeps the assembler's passes from settling).
  for (let v = 0; v < 256; v++) {
    const stub = asm.section(STUBS + 16n * BigInt(v), { name: `stub${v}` });
    if (!ERROR_CODE.has(v)) stub.emit(Code.Pushq_imm8, 0);
    stub.emit(Code.Pushq_imm32, v).emit(Code.Jmp_rel32_64, "common");
  }
  const k = asm.section(KERNEL, { name: "kernel" });
  // Frame: [rsp] vector, +8 error code, +16 RIP, +24 CS, +32 RFLAGS, +40 RSP, +48 SS.
  k.label("common")
    .emit(Code.Test_rm8_imm8, mem(Register.RSP, 24n), 3)
    .emit(Code.Je_rel32_64, "from_kernel")
    .emit(Code.Swapgs)
    .emit(Code.Cmp_rm64_imm8, mem(Register.RSP), 2).emit(Code.Je_rel32_64, "to_user")
    .emit(Code.Cmp_rm64_imm8, mem(Register.RSP), 32).emit(Code.Jae_rel32_64, "to_user")
    // An exception in user mode: resume at the next command.
    .emit(Code.Push_r64, Register.RAX)
    .emit(Code.Mov_r64_rm64, Register.RAX, abs(RESUME))
    .emit(Code.Mov_rm64_r64, mem(Register.RSP, 24n), Register.RAX)
    .emit(Code.Pop_r64, Register.RAX)
    .label("to_user")
    .emit(Code.Swapgs)
    .emit(Code.Add_rm64_imm8, Register.RSP, 16)
    .emit(Code.Iretq)
    .label("from_kernel")
    // NMIs, and IRQs while the kernel sleeps with IF = 1, may arrive in the kernel: return;
    // an exception there is a kernel bug.
    .emit(Code.Cmp_rm64_imm8, mem(Register.RSP), 2).emit(Code.Je_rel32_64, "kernel_return")
    .emit(Code.Cmp_rm64_imm8, mem(Register.RSP), 32).emit(Code.Jb_rel32_64, "kernel_fault")
    .label("kernel_return")
    .emit(Code.Add_rm64_imm8, Register.RSP, 16)
    .emit(Code.Iretq)
    .label("kernel_fault")
    .emit(Code.Hlt).emit(Code.Jmp_rel32_64, "kernel_fault");
  // SYSCALL: EAX 0 nothing, 1 store RSI as scratch PTE number EDI, 2 INVLPG [RDI], 3 halt.
  k.label("syscall_entry")
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, abs(percpuOffset(LAYOUT, "userRsp"), Register.GS), Register.RSP)
    .emit(Code.Mov_r64_rm64, Register.RSP, abs(percpuOffset(LAYOUT, "kernelStack"), Register.GS))
    .emit(Code.Cmp_rm32_imm8, Register.EAX, 1).emit(Code.Je_rel32_64, "sys_pte")
    .emit(Code.Cmp_rm32_imm8, Register.EAX, 2).emit(Code.Je_rel32_64, "sys_invlpg")
    .emit(Code.Cmp_rm32_imm8, Register.EAX, 3).emit(Code.Je_rel32_64, "sys_halt")
    .emit(Code.Cmp_rm32_imm8, Register.EAX, 4).emit(Code.Je_rel32_64, "sys_sleep")
    .emit(Code.Cmp_rm32_imm8, Register.EAX, 5).emit(Code.Je_rel32_64, "sys_sleep_irq")
    .label("sys_return")
    .emit(Code.Mov_r64_rm64, Register.RSP, abs(percpuOffset(LAYOUT, "userRsp"), Register.GS))
    .emit(Code.Swapgs)
    .emit(Code.Sysretq)
    .label("sys_pte")
    .emit(Code.And_rm32_imm32, Register.EDI, SCRATCH_PAGES - 1)
    .emit(Code.Mov_rm64_r64, mem(Register.None, SCRATCH_PT, Register.None, Register.RDI, 8), Register.RSI)
    .emit(Code.Jmp_rel32_64, "sys_return")
    .label("sys_invlpg")
    .emit(Code.Invlpg_m, mem(Register.RDI))
    .emit(Code.Jmp_rel32_64, "sys_return")
    .label("sys_halt")
    .emit(Code.Hlt).emit(Code.Jmp_rel32_64, "sys_halt")
    // Sleep with IF = 0 until an NMI wakes HLT; or `sti; hlt` until an interrupt does.
    .label("sys_sleep")
    .emit(Code.Hlt)
    .label("sys_sleep_woken")
    .emit(Code.Jmp_rel32_64, "sys_return")
    .label("sys_sleep_irq")
    .emit(Code.Sti)
    .label("sys_sleep_irq_hlt")
    .emit(Code.Hlt)
    .label("sys_sleep_irq_woken")
    .emit(Code.Cli)
    .emit(Code.Jmp_rel32_64, "sys_return");
}

// ------------------------------------------------------------------------------------------------
// The commands

/** What the commands build: the user program, and the raises waiting for the next command. */
export interface ModelReal {
  readonly user: Section;
  readonly raises: { label: string; event: RaiseRequest }[];
  /** Raises made pending since the last command started (attached to the next one's label). */
  pending: RaiseRequest[];
  count: number;
}

/** What the model knows of the environment. */
export interface ModelState {
  /** Scratch pages whose PTE a command rewrote (INVLPG only makes sense after one). */
  readonly rewritten: Set<number>;
}

export abstract class ModelCommand implements fc.Command<ModelState, ModelReal> {
  check(_m: Readonly<ModelState>): boolean {
    return true;
  }
  /** Code commands: the prelude stores where to resume, then the command's own code. */
  run(m: ModelState, r: ModelReal): void {
    const n = r.count++;
    r.user.label(`cmd${n}`);
    for (const event of r.pending) r.raises.push({ label: `cmd${n}`, event });
    r.pending = [];
    r.user.emit(Code.Mov_rm64_imm32, abs(RESUME), sym(`cmd${n + 1}`));
    this.code(m, r.user);
  }
  protected abstract code(m: ModelState, s: Section): void;
  abstract toString(): string;
  /** Instructions the command places (for the size of a case). */
  abstract get instructions(): number;
}

export class ExecuteK extends ModelCommand {
  constructor(readonly specs: readonly InstructionSpec[]) {
    super();
  }
  protected code(_m: ModelState, s: Section): void {
    emitInstructions(s, this.specs, { rip: 0n, data: LAYOUT.data.user, kernel: false });
  }
  toString(): string {
    return `execute(${this.specs.length}: ${JSON.stringify(this.specs)})`;
  }
  get instructions(): number {
    return this.specs.length;
  }
}

export class Raise extends ModelCommand {
  constructor(readonly event: RaiseRequest) {
    super();
  }
  override run(_m: ModelState, r: ModelReal): void {
    r.pending.push(this.event);
  }
  protected code(): void {}
  toString(): string {
    return "irq" in this.event ? `raise(irq ${this.event.irq})` : "raise(nmi)";
  }
  get instructions(): number {
    return 0;
  }
}

export class SyscallRoundTrip extends ModelCommand {
  protected code(_m: ModelState, s: Section): void {
    s.emit(Code.Mov_r32_imm32, Register.EAX, 0).emit(Code.Syscall);
  }
  toString(): string {
    return "syscall()";
  }
  get instructions(): number {
    return 2;
  }
}

export class InterruptRoundTrip extends ModelCommand {
  protected code(_m: ModelState, s: Section): void {
    s.emit(Code.Int_imm8, 0x80);
  }
  toString(): string {
    return "int(0x80)";
  }
  get instructions(): number {
    return 1;
  }
}

export class RewritePte extends ModelCommand {
  constructor(readonly page: number, readonly entry: bigint) {
    super();
  }
  protected code(m: ModelState, s: Section): void {
    m.rewritten.add(this.page);
    s.emit(Code.Mov_r32_imm32, Register.EDI, this.page)
      .emit(Code.Mov_r64_imm64, Register.RSI, this.entry)
      .emit(Code.Mov_r32_imm32, Register.EAX, 1)
      .emit(Code.Syscall);
  }
  toString(): string {
    return `pte(${this.page}, 0x${this.entry.toString(16)})`;
  }
  get instructions(): number {
    return 4;
  }
}

export class Invlpg extends ModelCommand {
  constructor(readonly page: number) {
    super();
  }
  override check(m: Readonly<ModelState>): boolean {
    return m.rewritten.has(this.page);
  }
  protected code(_m: ModelState, s: Section): void {
    s.emit(Code.Mov_r64_imm64, Register.RDI, SCRATCH + 0x1000n * BigInt(this.page))
      .emit(Code.Mov_r32_imm32, Register.EAX, 2)
      .emit(Code.Syscall);
  }
  toString(): string {
    return `invlpg(${this.page})`;
  }
  get instructions(): number {
    return 3;
  }
}

/** A system call that sleeps in the kernel (HLT) until an event wakes it: an NMI with IF = 0, or
 *  an IRQ after `sti; hlt` (raised in the STI shadow, or once halted). */
export class SleepUntilWoken extends ModelCommand {
  constructor(readonly wake: "nmi" | "irq-in-shadow" | "irq-halted", readonly vector: number) {
    super();
  }
  override run(m: ModelState, r: ModelReal): void {
    super.run(m, r);
    const label = this.wake === "nmi" ? "sys_sleep_woken" : this.wake === "irq-in-shadow" ? "sys_sleep_irq_hlt" : "sys_sleep_irq_woken";
    r.raises.push({ label, event: this.wake === "nmi" ? { nmi: true } : { irq: this.vector } });
  }
  protected code(_m: ModelState, s: Section): void {
    s.emit(Code.Mov_r32_imm32, Register.EAX, this.wake === "nmi" ? 4 : 5).emit(Code.Syscall);
  }
  toString(): string {
    return `sleep(${this.wake}${this.wake === "nmi" ? "" : ` ${this.vector}`})`;
  }
  get instructions(): number {
    return 2;
  }
}

export class AccessScratch extends ModelCommand {
  constructor(readonly page: number, readonly write: boolean) {
    super();
  }
  protected code(_m: ModelState, s: Section): void {
    const at = abs(SCRATCH + 0x1000n * BigInt(this.page) + 0x10n);
    if (this.write) s.emit(Code.Mov_rm64_r64, at, Register.RBX);
    else s.emit(Code.Mov_r64_rm64, Register.RBX, at);
  }
  toString(): string {
    return `${this.write ? "store" : "load"}(${this.page})`;
  }
  get instructions(): number {
    return 1;
  }
}

// ------------------------------------------------------------------------------------------------
// The arbitraries

const instructionSpec = fc.record({ template: fc.nat(), a: fc.nat(15), b: fc.nat(63), imm: fc.integer() });
const page = fc.nat(SCRATCH_PAGES - 1);
/** Frames a scratch PTE may point at: user data, a kernel page (the per-CPU area), the GDT. */
const frame = fc.constantFrom(0x220000n, 0x222000n, 0x223000n, 0x30000n, 0x8000n);
const pteFlags = fc.record({
  p: fc.oneof({ weight: 4, arbitrary: fc.constant(1n) }, { weight: 1, arbitrary: fc.constant(0n) }),
  rw: fc.boolean(), us: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  a: fc.boolean(), d: fc.boolean(), xd: fc.boolean(),
  rsvd: fc.oneof({ weight: 8, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(1n << 51n, 1n << 47n) }),
});

const COMMANDS: fc.Arbitrary<ModelCommand>[] = [
  fc.array(instructionSpec, { minLength: 1, maxLength: 6 }).map((specs) => new ExecuteK(specs)),
  fc.integer({ min: 32, max: 255 }).map((irq) => new Raise({ irq })),
  fc.constant(null).map(() => new Raise({ nmi: true })),
  fc.constant(null).map(() => new SyscallRoundTrip()),
  fc.constant(null).map(() => new InterruptRoundTrip()),
  fc.tuple(page, frame, pteFlags).map(([p, f, x]) =>
    new RewritePte(p, f | x.p | (x.rw ? 2n : 0n) | (x.us ? 4n : 0n) | (x.a ? 0x20n : 0n) | (x.d ? 0x40n : 0n) | (x.xd ? 1n << 63n : 0n) | x.rsvd)),
  page.map((p) => new Invlpg(p)),
  fc.tuple(page, fc.boolean()).map(([p, w]) => new AccessScratch(p, w)),
  fc.tuple(fc.constantFrom<"nmi" | "irq-in-shadow" | "irq-halted">("nmi", "irq-in-shadow", "irq-halted"), fc.integer({ min: 32, max: 255 })).map(([w, v]) => new SleepUntilWoken(w, v)),
];

export interface ModelCase {
  readonly profile: ProfileName;
  readonly commands: Iterable<ModelCommand>;
}

const modelArb: fc.Arbitrary<ModelCase> = fc.record({
  profile: fc.constantFrom<ProfileName>("intel", "amd"),
  commands: fc.commands(COMMANDS, { maxCommands: 12 }) as fc.Arbitrary<Iterable<ModelCommand>>,
});

/** The commands that run (their `check` passes), in order. */
let kernelImage: AssembledImage | undefined;
let layoutWithEntry: GuestLayout | undefined;

/** The layout with LSTAR at the kernel's entry: one object, so the guest kit's cached layout
 *  memory is reused from case to case. */
function caseLayout(kernel: AssembledImage): GuestLayout {
  return (layoutWithEntry ??= { ...LAYOUT, msrs: { ...LAYOUT.msrs, lstar: kernel.symbols.get("syscall_entry")! } });
}

/** The kernel is the same for every case: assembled once. */
function kernelCode(): AssembledImage {
  if (kernelImage === undefined) {
    const asm = new Assembler();
    kernel(asm);
    kernelImage = asm.assemble();
  }
  return kernelImage;
}

function compile(commands: Iterable<ModelCommand>): { real: ModelReal; asm: Assembler; ran: ModelCommand[] } {
  const asm = new Assembler();
  const user = asm.section(LAYOUT.code.user, { name: "user" });
  const real: ModelReal = { user, raises: [], pending: [], count: 0 };
  const ran: ModelCommand[] = [];
  const model: ModelState = { rewritten: new Set() };
  for (const c of commands) {
    if (!c.check(model)) continue;
    c.run(model, real);
    ran.push(c);
  }
  // The last command: a system call that halts (IF = 0 in the kernel: nothing wakes it but an NMI).
  const last = real.count++;
  user.label(`cmd${last}`);
  for (const event of real.pending) real.raises.push({ label: `cmd${last}`, event });
  user.emit(Code.Mov_rm64_imm32, abs(RESUME), sym(`cmd${last}`)).emit(Code.Mov_r32_imm32, Register.EAX, 3).emit(Code.Syscall);
  user.label(`cmd${last + 1}`).emit(Code.Jmp_rel32_64, `cmd${last}`);
  return { real, asm, ran };
}

export function buildModel(c: ModelCase, profile?: ProfileName): BuiltCase {
  const { real, asm } = compile(c.commands);
  const image = asm.assemble();
  const kernel = kernelCode();
  const guest = buildGuest(caseLayout(kernel), { code: [kernel, image], start: { ring: 3 } });
  const raises: ScheduledRaise[] = real.raises.map((r) => ({ rip: image.symbols.get(r.label) ?? kernel.symbols.get(r.label)!, event: r.event }));
  return { state: guest.state, profile: profile ?? c.profile, maxSteps: 600, raises };
}

/** The commands of a case as this file's classes: fc.commands yields each wrapped in its own
 *  CommandWrapper (`cmd`), which has none of their fields; domain shrinking builds plain lists. */
export function commandsOf(c: ModelCase): ModelCommand[] {
  return [...c.commands].map((x) => (x instanceof ModelCommand ? x : (x as unknown as { readonly cmd: ModelCommand }).cmd));
}

function shrinkModel(c: ModelCase): ModelCase[] {
  const list = commandsOf(c);
  const out: ModelCase[] = [];
  for (let i = list.length - 1; i >= 0; i--) out.push({ ...c, commands: [...list.slice(0, i), ...list.slice(i + 1)] });
  list.forEach((cmd, i) => {
    if (cmd instanceof ExecuteK && cmd.specs.length > 1)
      for (let j = cmd.specs.length - 1; j >= 0; j--) {
        const specs = [...cmd.specs.slice(0, j), ...cmd.specs.slice(j + 1)];
        out.push({ ...c, commands: list.map((x, k) => (k === i ? new ExecuteK(specs) : x)) });
      }
  });
  return out;
}

export const MODEL_FAMILY: Family<ModelCase> = {
  name: "model",
  description:
    "model-based sequences (fc.commands) on a valid long-mode environment: execute K instructions, raise an IRQ or NMI, syscall and interrupt round trips, rewrite a page-table entry, INVLPG, touch a scratch page",
  arbitrary: modelArb,
  build: buildModel,
  shrink: shrinkModel,
  size: (c) => commandsOf(c).reduce((n, cmd) => n + cmd.instructions, 0),
  unit: "instructions",
};

/** The commands of a case, one line (reports). */
export function describeModelCase(c: ModelCase): string {
  return commandsOf(c).map((x) => x.toString()).join("; ");
}
