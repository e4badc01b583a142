// Where two engines part ways: the spec rule a divergence is grouped under. The diverging step is
// replayed on the spec with rule reporting on (from engine A's state before it), which gives the
// rules that step exercised, in order, and the checks that failed. Among those rules, the one at
// which the engines part ways is chosen, in this order:
//   1. a fault: engine A's step raised an exception (or escalated one) that engine B did not
//      raise, or raised another: the rule of the check that raised it;
//   2. a diagnosis: a value-level test of one rule's effect that explains B's value (B's frame
//      top is not 16-byte aligned: DELIVER-15; B's stack came from another TSS slot: DELIVER-12;
//      B's IRET did not pop SS:RSP: IRETQ-10; an error-code bit differs: PF-02; ...);
//   3. the fields: the rule whose one-line description names the most differing fields, those on
//      the left of an assignment ("RFLAGS ← …") counting double, the later rule on a tie (updates
//      run in order, so the last writer of a field decides its value);
//   4. nothing fits (no rule at that step, or none names a differing field): the step's first
//      rule, or "unattributed" when the spec reports none.
// Before the diagnoses, one case of step granularity: engine B's step went on into an event's
// handler (an emulator's step may include the single-step #DB trap that follows an instruction):
// B's frame holds the RIP and CS at which engine A's step ended. When the spec's own next step
// delivers the same vector, what still differs after it decides the rule and the line.
import type { ProfileName } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent, PhysicalRange, StepFault } from "../../contract/engine.ts";
import { compareEvents, compareStates, unionRanges, type FieldDifference } from "../../contract/compare.ts";
import type { CaseDivergence } from "./lockstep-case.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { allRules, ruleById } from "../../spec/index.ts";
import { TSS_OFFSETS } from "../../guest/index.ts";
import { gateOf, readLinear64 } from "../../trace/model/machine.ts";
import { readPhysical64, translate } from "../../guest/paging.ts";

export interface Attribution {
  /** The rule ID, or "unattributed". */
  readonly rule: string;
  /** Why this rule: one line about the values (or the rule's own description). */
  readonly why: string;
  /** The rules the spec exercised at the diverging step, in order, repeats removed. */
  readonly rules: readonly string[];
  readonly faults: readonly StepFault[];
}

export const UNATTRIBUTED = "unattributed";

/** The parts of a divergence that attribution reads. */
type DivergenceView = Pick<CaseDivergence, "before" | "eventA" | "eventB" | "stateA" | "stateB" | "differences" | "compared">;

/** What a diagnosis reads: the divergence, the names of its differing fields and the spec's rules. */
interface Context extends DivergenceView {
  readonly fields: ReadonlySet<string>;
  readonly rules: readonly string[];
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const differs = (c: Context, prefix: string) => [...c.fields].some((f) => f.startsWith(prefix));

/** The stack pointers a delivery could start from: the old RSP and every TSS slot. */
function stackSources(before: ArchState): { name: string; value: bigint }[] {
  const out = [{ name: "the interrupted RSP", value: before.gpr[4]! }];
  for (let n = 0; n < 3; n++) {
    const v = readLinear64(before, before.tr.base + BigInt(TSS_OFFSETS.rsp(n)));
    if (v !== null) out.push({ name: `TSS.RSP${n}`, value: v });
  }
  for (let n = 1; n <= 7; n++) {
    const v = readLinear64(before, before.tr.base + BigInt(TSS_OFFSETS.ist(n)));
    if (v !== null) out.push({ name: `TSS.IST${n}`, value: v });
  }
  return out;
}

const PF_BITS = ["P", "W/R", "U/S", "RSVD", "I/D"];

/** The vectors, in order, whose IDT gate (in `before`) is a present 64-bit interrupt or trap gate
 *  (type 0xE or 0xF, a system descriptor: what a delivery in long mode can go through) pointing
 *  at `rip`. Exported for its tests. */
export function vectorsAt(before: ArchState, rip: bigint): number[] {
  const out: number[] = [];
  for (let v = 0; v < 256; v++) {
    const gate = gateOf(before, v);
    if (gate === null || !gate.withinLimit) continue;
    if (gate.present === 1 && gate.s === 0 && (gate.type === 0xe || gate.type === 0xf) && gate.offset === rip) out.push(v);
  }
  return out;
}

/** The vectors whose handler engine B's step may have ended in: B's own event's when it reports
 *  one, else every vector whose gate (in the IDT before the step) points at B's RIP (gates may
 *  share a handler). */
function vectorsEntered(c: DivergenceView): number[] {
  if (c.eventB !== undefined) return c.eventB.kind === "delivered" ? [c.eventB.vector] : [];
  return vectorsAt(c.before, c.stateB.rip);
}

/** One of them: a pending single-step trap names #DB among handlers that share an entry point,
 *  else the lowest. */
function vectorEntered(c: DivergenceView): number | undefined {
  const vectors = vectorsEntered(c);
  return c.stateA.cpu.pendingDebugTrap && vectors.includes(1) ? 1 : vectors[0];
}

/** Whether engine B's stack holds a frame interrupted at `rip` in `cs` (with or without an error
 *  code below it). */
function frameHolds(c: DivergenceView, rip: bigint, cs: number): boolean {
  const rsp = c.stateB.gpr[4]!;
  return [0n, 8n].some((skip) => readLinear64(c.stateB, rsp + skip) === rip && ((readLinear64(c.stateB, rsp + skip + 8n) ?? -1n) & 0xffffn) === BigInt(cs));
}

/** Engine B's step went on past where engine A's ended into an event's handler: A's step retired
 *  an instruction, and B's frame holds the RIP and CS at which A's step ended. The vector, or
 *  undefined. */
function wentOn(c: DivergenceView): number | undefined {
  if (c.eventA?.kind !== "retired" || c.stateB.rip === c.stateA.rip || !frameHolds(c, c.stateA.rip, c.stateA.cs.selector)) return undefined;
  return vectorEntered(c);
}

/** The memory differences as bytes: physical address → [A's byte, B's byte] (null: a field that
 *  is not memory, or not valued as hex bytes). */
function memoryBytes(differences: readonly FieldDifference[]): Map<bigint, [number, number]> | null {
  const out = new Map<bigint, [number, number]>();
  for (const d of differences) {
    const m = /^memory@(0x[0-9a-f]+)$/.exec(d.field);
    if (m === null || typeof d.a !== "string" || typeof d.b !== "string" || d.a.length !== d.b.length || !/^([0-9a-f]{2})+$/.test(d.a + d.b)) return null;
    for (let i = 0; i < d.a.length / 2; i++) out.set(BigInt(m[1]!) + BigInt(i), [parseInt(d.a.slice(2 * i, 2 * i + 2), 16), parseInt(d.b.slice(2 * i, 2 * i + 2), 16)]);
  }
  return out;
}

/** Value-level tests of one rule's effect: a line explaining engine B's value, or null. */
const DIAGNOSES: Readonly<Record<string, (c: Context) => string | null>> = {
  "DELIVER-15": (c) => {
    if (c.eventA?.kind !== "delivered" || !differs(c, "regs.rsp")) return null;
    const frame = BigInt(c.eventA.errorCode === undefined ? 40 : 48);
    const topA = c.stateA.gpr[4]! + frame;
    const topB = c.stateB.gpr[4]! + frame;
    if ((topA & 15n) !== 0n || (topB & 15n) === 0n || topB - topA > 15n || topB < topA) return null;
    return `the frame is pushed below ${hex(topB)}, not below that value aligned down to 16 (${hex(topA)})`;
  },
  "DELIVER-12": (c) => {
    if (c.eventA?.kind !== "delivered" || !differs(c, "regs.rsp")) return null;
    const frame = BigInt(c.eventA.errorCode === undefined ? 40 : 48);
    const topA = c.stateA.gpr[4]! + frame;
    const topB = BigInt.asUintN(64, c.stateB.gpr[4]! + frame);
    const sources = stackSources(c.before);
    const near = (top: bigint) => sources.filter((s) => top === (s.value & ~15n) || top === s.value);
    const usedA = near(topA).map((s) => s.name);
    const usedB = near(topB).filter((s) => !usedA.includes(s.name));
    if (usedB.length === 0) return null;
    return `the new stack comes from ${usedB[0]!.name} (${hex(usedB[0]!.value)}) instead of ${usedA[0] ?? hex(topA)}`;
  },
  "IRETQ-10": (c) => {
    if (c.eventA?.kind !== "retired" || !differs(c, "regs.rsp")) return null;
    for (const size of [8n, 4n, 2n]) {
      if (c.stateB.gpr[4] === BigInt.asUintN(64, c.before.gpr[4]! + 3n * size) && c.stateA.gpr[4] !== c.stateB.gpr[4])
        return `SS:RSP are not popped: RSP only moves past RIP, CS and RFLAGS (${hex(c.stateB.gpr[4]!)}, not the popped ${hex(c.stateA.gpr[4]!)})`;
    }
    return null;
  },
  // The frame is right but for RF in the pushed RFLAGS image (bit 16: byte 2, bit 0).
  "RF-03": (c) => {
    if (c.eventA?.kind !== "delivered") return null;
    const bytes = memoryBytes(c.differences);
    if (bytes === null || bytes.size !== 1) return null;
    const linear = c.stateA.gpr[4]! + (c.eventA.errorCode === undefined ? 16n : 24n) + 2n;
    const p = translate((a) => readPhysical64(c.stateA.memory, a), c.stateA.cr3, linear).physical;
    const [a, b] = bytes.get(p ?? -1n) ?? [0, 0];
    if ((a ^ b) !== 1) return null;
    return `RF = ${b & 1} in the RFLAGS image pushed for vector ${c.eventA.vector}, not ${a & 1}`;
  },
  "IRETQ-00": (c) => {
    if (!c.fields.has("cpu.nmi_blocked") || !c.before.cpu.nmiBlocked || c.stateA.cpu.nmiBlocked || !c.stateB.cpu.nmiBlocked) return null;
    return c.eventA?.kind === "delivered" ? `NMIs stay blocked after an IRET that faults (vector ${c.eventA.vector})` : "NMIs stay blocked after IRET";
  },
  // amd: SYSRET to a non-canonical RCX completes and the fetch faults at CPL 3; an engine that
  // faults at CPL 0 instead does what Intel does. Engine B must show that #GP: its step ended in
  // vector 13's handler at CPL 0, and not with a frame of the SYSRET completed (a step that went
  // on into a trap's handler, e.g. the single-step #DB, also ends at CPL 0).
  "SYSRET-V1": (c) => {
    if (c.eventA?.kind !== "retired" || c.stateA.cs.dpl !== 3 || c.stateB.cs.dpl !== 0 || !c.rules.includes("SYSRET-V1")) return null;
    if (!vectorsEntered(c).includes(13) || wentOn(c) !== undefined) return null;
    return `a non-canonical RCX (${hex(c.before.gpr[1]!)}) faults at CPL 0 (#GP), the Intel way, instead of being loaded to fault at CPL 3`;
  },
  "PF-02": (c) => {
    if (c.eventA?.kind !== "delivered" || c.eventA.vector !== 14 || c.eventB?.kind !== "delivered" || c.eventB.vector !== 14) return null;
    const a = c.eventA.errorCode ?? 0;
    const b = c.eventB.errorCode ?? 0;
    if (a === b) return null;
    const bits = PF_BITS.filter((_, i) => ((a ^ b) >> i) & 1).map((name, _) => name);
    return `#PF error code ${hex(a)} vs ${hex(b)}: ${bits.join(", ")} bit${bits.length === 1 ? "" : "s"} differ`;
  },
  "SWAPGS-03": (c) => {
    if (c.eventA?.kind !== "retired" || !(differs(c, "sregs.gs.base") || differs(c, "msrs.KERNEL_GS_BASE") || differs(c, "msrs.GS_BASE"))) return null;
    if (c.stateB.gs.base === c.before.gs.base && c.stateB.kernelGsBase === c.before.kernelGsBase) return "GS.base and KERNEL_GS_BASE are not exchanged";
    return null;
  },
  "SYSRET-05": (c) => {
    if (c.eventA?.kind !== "retired" || !differs(c, "regs.rflags")) return null;
    const r11 = c.before.gpr[11]!;
    if (c.stateA.rflags !== ((r11 & 0x3c7fd7n) | 2n)) return null;
    const unmasked = (c.stateB.rflags & ~0x3c7fd7n & ~2n) !== 0n || (c.stateB.rflags & 2n) === 0n;
    return `RFLAGS ${hex(c.stateB.rflags)}${unmasked ? " (R11's bits outside the mask kept)" : ""}, not (R11 AND 0x3C7FD7) OR 2 = ${hex(c.stateA.rflags)}`;
  },
};

// ------------------------------------------------------------------------------------------------
// Fields named by a rule's description

/** Words that name each group of fields in the rules' descriptions. */
const FIELD_WORDS: readonly (readonly [RegExp, RegExp])[] = [
  [/^regs\.rflags$/, /\b(RFLAGS|EFLAGS|IF|TF|NT|RF|VM|AC|DF|IOPL|VIF|VIP|ID|flags?)\b/],
  [/^regs\.rsp$/, /\b(RSP|ESP|stack|frame|push(es|ed)?|pop(s|ped)?|SS:RSP)\b/i],
  [/^regs\.rip$/, /\b(RIP|EIP|target|offset|LSTAR|CSTAR)\b/],
  [/^regs\.rcx$/, /\b(RCX|ECX)\b/],
  [/^regs\.r11$/, /\bR11\b/],
  [/^regs\.rax$/, /\b(RAX|EAX|EDX:EAX)\b/],
  [/^regs\.rdx$/, /\b(RDX|EDX)\b/],
  [/^sregs\.cs\./, /\b(CS|CPL|code segment)\b/],
  [/^sregs\.ss\./, /\b(SS|SS:RSP|stack segment)\b/],
  [/^sregs\.(ds|es)\./, /\b(DS|ES|data segment)/],
  [/^(sregs\.fs\.|msrs\.FS_BASE)/, /\bFS\b/],
  [/^(sregs\.gs\.|msrs\.GS_BASE|msrs\.KERNEL_GS_BASE)/, /\b(GS|KERNEL_GS_BASE)\b/],
  [/^sregs\.cr2$/, /\bCR2\b/],
  [/^sregs\.cr[0348]$/, /\b(CR0|CR3|CR4|CR8|MOV CR)\b/],
  [/^sregs\.efer$/, /\bEFER\b/],
  [/^msrs\.(STAR|LSTAR|CSTAR|SFMASK)$/, /\b(STAR|LSTAR|CSTAR|FMASK|WRMSR)\b/],
  [/^memory@/, /\b(push(es|ed)?|frame|store[sd]?|write[sn]?|written|accessed|dirty|A\/D)\b/i],
  [/^event\.error_code$/, /\berror code\b/],
  [/^cpu\.nmi_blocked$/, /\bNMI\b/],
  [/^cpu\.shadow$/, /\bshadow\b/],
  [/^cpu\.halted$/, /\b(HLT|halt)/],
  [/^cpu\.pending_debug_trap$/, /\b(single-step|TF)\b/],
  [/^cpu\.pending_irq$/, /\b(interrupt|IRQ)\b/],
];

function fieldGroups(fields: ReadonlySet<string>): RegExp[] {
  const out: RegExp[] = [];
  for (const [field, words] of FIELD_WORDS) if ([...fields].some((f) => field.test(f))) out.push(words);
  return out;
}

/** How well a rule's description names the differing fields (left of ← counts double). */
function score(description: string, groups: readonly RegExp[]): number {
  const arrow = description.search(/←|<-/);
  const left = arrow === -1 ? "" : description.slice(0, arrow);
  let s = 0;
  for (const words of groups) {
    if (arrow !== -1 && words.test(left)) s += 2;
    else if (words.test(description)) s += 1;
  }
  return s;
}

const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM",
};

/** The rule that raises exception `vector`: one of the step's rules that names it, else the only
 *  rule of the spec that does. */
function raiserOf(vector: number, rules: readonly string[]): string | undefined {
  const name = EXCEPTION_NAMES[vector];
  if (name === undefined) return undefined;
  // Delivery rules name the faults of the delivery itself, not of the instruction.
  const names = (id: string) => !/^(DELIVER|DF|EXC)-/.test(id) && (ruleById(id)?.description ?? "").includes(name);
  const inStep = rules.filter(names);
  if (inStep.length === 1) return inStep[0];
  const all = allRules().filter((r) => r.description.includes(name));
  return all.length === 1 ? all[0]!.id : undefined;
}

/** The rule of `rules` whose description names the differing fields best (on a tie the later
 *  one, or with `later` false the earlier one). */
function bestByFields(rules: readonly string[], fields: ReadonlySet<string>, later = true): string | undefined {
  const groups = fieldGroups(fields);
  let best: string | undefined;
  let bestScore = 0;
  for (const rule of rules) {
    const s = score(ruleById(rule)?.description ?? "", groups);
    if (s > 0 && (later ? s >= bestScore : s > bestScore)) {
      best = rule;
      bestScore = s;
    }
  }
  return best;
}

function describeKind(e: EngineEvent | undefined): string {
  if (e === undefined) return "no step";
  const what = e.kind === "delivered" ? `delivers vector ${e.vector}` : e.kind === "retired" ? "retires an instruction" : e.kind === "halted" ? "halts" : e.kind;
  return `${what}${e.instruction === undefined ? (e.kind === "delivered" ? " at the boundary" : "") : ""}`;
}

function describeKinds(a: EngineEvent | undefined, b: EngineEvent | undefined): string {
  return `engine A ${describeKind(a)}, engine B ${describeKind(b)}`;
}

// ------------------------------------------------------------------------------------------------

function dedupe(rules: readonly string[]): string[] {
  const seen = new Set<string>();
  return rules.filter((r) => (seen.has(r) ? false : (seen.add(r), true)));
}

function faultRule(faults: readonly StepFault[], eventB: EngineEvent | undefined): StepFault | undefined {
  if (faults.length === 0) return undefined;
  const vectorB = eventB?.kind === "delivered" ? eventB.vector : undefined;
  // B delivered an earlier fault of A's chain: they part ways where A escalated.
  const i = vectorB === undefined ? -1 : faults.findIndex((f) => f.vector === vectorB);
  return i >= 0 && i + 1 < faults.length ? faults[i + 1] : faults[0];
}

/** The rule at which engines A and B part ways at a diverging step. */
export function attribute(
  divergence: DivergenceView,
  profile: ProfileName,
): Attribution {
  let rules: string[] = [];
  let faults: readonly StepFault[] = [];
  try {
    const spec = new SpecEngine({ rules: true });
    spec.load(divergence.before, profile);
    const e = spec.step();
    rules = dedupe(e.rules ?? []);
    faults = e.faults ?? [];
  } catch {
    // A state the spec cannot step (outside the model): nothing to attribute with.
  }
  const fields = new Set(divergence.differences.map((d) => d.field));
  const c: Context = { ...divergence, fields, rules };
  const done = (rule: string, why: string): Attribution => ({ rule, why, rules, faults });

  // 0. The engines disagree on what the step is (an instruction or an event at the boundary, an
  //    idle HLT or a delivery): the rules that decided it come before any delivery or memory
  //    access in the spec's order; the one that names the differing fields best.
  const kindDiffers = fields.has("event.kind") || fields.has("event.instruction");
  if (kindDiffers) {
    const prefix: string[] = [];
    for (const rule of rules) {
      if (/^(DELIVER|PF|DF|EXC|CANON|SMAP|RF)-/.test(rule)) break;
      prefix.push(rule);
    }
    // The earliest decision that names the fields best (they are taken in order).
    const chosen = bestByFields(prefix, fields, false);
    if (chosen !== undefined) return done(chosen, `${ruleById(chosen)?.description ?? chosen} (${describeKinds(divergence.eventA, divergence.eventB)})`);
  }

  // 1a. Engine B raised an exception engine A's step did not raise at all: the check that raises
  //     it (in the step's rules, or the only rule of the spec that raises it) is where B parted.
  if (divergence.eventB?.kind === "delivered" && divergence.eventB.source === "exception" && fields.has("event.vector")) {
    const vectorB = divergence.eventB.vector;
    if (!faults.some((f) => f.vector === vectorB) && !(divergence.eventA?.kind === "delivered" && divergence.eventA.vector === vectorB)) {
      const rule = raiserOf(vectorB, rules);
      if (rule !== undefined) return done(rule, `${ruleById(rule)?.description ?? rule} (engine B raises vector ${vectorB}, the spec ${divergence.eventA?.kind === "delivered" ? `vector ${divergence.eventA.vector}` : (divergence.eventA?.kind ?? "nothing")})`);
    }
  }

  // 1. A fault engine B did not take the same way. An engine that is not single-stepped (an
  //    emulator, compared by whole runs) reports no event: that it did not deliver the spec's
  //    exception shows in its RIP, which is not at the handler the spec entered.
  const eventFields = [...fields].some((f) => f === "event.kind" || f === "event.vector" || f === "event.source" || f === "run.stop");
  const missedFault =
    divergence.eventB === undefined && divergence.eventA?.kind === "delivered" && divergence.eventA.source === "exception" && divergence.stateB.rip !== divergence.stateA.rip;
  const fault = eventFields || missedFault ? faultRule(faults, divergence.eventB) : undefined;
  if (fault !== undefined) return done(fault.rule, `${ruleById(fault.rule)?.description ?? fault.rule} (the spec raises vector ${fault.vector} here)`);

  // 1b. Engine B's step went on past where the spec's ended into an event's handler.
  const entered = wentOn(divergence);
  const wentOnAt = entered === undefined ? null : wentOnAttribution(divergence, profile, entered, rules, faults);
  if (wentOnAt !== null) return wentOnAt;

  // 2. A diagnosis that explains engine B's value.
  for (const rule of rules) {
    const why = DIAGNOSES[rule]?.(c) ?? null;
    if (why !== null) return done(rule, why);
  }
  // Diagnoses also stand when the spec's rule list lacks the rule (a step B took another way).
  for (const [rule, test] of Object.entries(DIAGNOSES)) {
    if (rules.length > 0 && !rules.some((r) => r.split("-")[0] === rule.split("-")[0])) continue;
    const why = test(c);
    if (why !== null) return done(rule, why);
  }

  // 3. The rule whose description names the differing fields.
  const best = bestByFields(rules, fields);
  if (best !== undefined) return done(best, ruleById(best)?.description ?? best);

  // 4. Nothing fits.
  const first = rules[0];
  return first === undefined ? done(UNATTRIBUTED, "the spec reports no rule at this step") : done(first, ruleById(first)?.description ?? first);
}

/** Engine B's step went on past where the spec's ended into the handler of `vector`: the
 *  spec takes its next step from where its own ended; if that delivers the same vector, its state
 *  is compared with B's as the divergence was (its rule and unobservable fields; every field, and
 *  memory where the divergence showed a difference or the spec's next step wrote). What still
 *  differs picks the rule among the step's, and the line says what B's step did and what still
 *  differs. Nothing is claimed about a fault. Else null (the usual order goes on). */
function wentOnAttribution(d: DivergenceView, profile: ProfileName, vector: number, rules: readonly string[], faults: readonly StepFault[]): Attribution | null {
  const name = EXCEPTION_NAMES[vector];
  const went = `engine B's step goes on into the handler of vector ${vector}${name === undefined ? "" : ` (${name})`}: its frame holds RIP ${hex(d.stateA.rip)}, CS ${hex(d.stateA.cs.selector)}, where the spec's step ends`;
  let next: { event: EngineEvent; state: ArchState; wrote: readonly PhysicalRange[] } | null = null;
  try {
    const spec = new SpecEngine();
    spec.load(d.stateA, profile);
    const event = spec.step();
    next = { event, state: spec.state(), wrote: spec.touched() };
  } catch {
    // A state the spec cannot step: nothing to compare with.
  }
  if (next === null || next.event.kind !== "delivered" || next.event.vector !== vector) return null;
  // The memory B's step wrote differs from A's state where it differs from the spec's after the
  // delivery too, unless the delivery wrote it (then it is among what the spec wrote).
  const differedBefore = d.differences.flatMap((x) => {
    const m = /^memory@(0x[0-9a-f]+)$/.exec(x.field);
    return m === null || typeof x.a !== "string" ? [] : [{ start: BigInt(m[1]!), end: BigInt(m[1]!) + BigInt(x.a.length / 2) }];
  });
  const memory = unionRanges(differedBefore, next.wrote);
  // B's event (one step for two of the spec's) is compared where it names the delivery.
  const eventStill = d.eventB === undefined ? [] : compareEvents(next.event, d.eventB).filter((x) => ["event.vector", "event.error_code", "event.source"].includes(x.field));
  const still = [...eventStill, ...compareStates(next.state, d.stateB, { rule: d.compared.rule, memory, unobservable: d.compared.unobservable }).differences];
  // The rule: by the fields that still differ, or (none do) by those that differed.
  const rule = bestByFields(rules, new Set((still.length === 0 ? d.differences : still).map((x) => x.field))) ?? rules[0] ?? UNATTRIBUTED;
  const shown = still.slice(0, 4).map((x) => `${x.field} ${String(x.a)} vs ${String(x.b)}`);
  const after = still.length === 0 ? "the states agree (a difference of step granularity only)" : `they still differ (spec vs engine B) in ${shown.join(", ")}${still.length > 4 ? ", ..." : ""}`;
  return { rule, why: `${went}; after the spec's own delivery of it ${after}`, rules, faults };
}
