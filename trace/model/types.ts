// The trace model: what `ringspec trace --json` prints and what the HTML page and `run --trace
// --explain` draw. Built from the trace records of a run (trace/record.ts) and from the states
// before and after each transition (the IDT gate, the TSS field, the frame in memory are read from
// them: trace/model/machine.ts). Plain JSON: hex strings, numbers, booleans; no bigints.
import type { TraceEvent, TraceRecord } from "../record.ts";

export const TRACE_MODEL_FORMAT = "ringspec-trace-model/1";

/** The privilege and mode at an instruction boundary, and what the timeline draws under them. */
export interface BoundaryContext {
  readonly cpl: number;
  /** 64-bit mode, or compatibility mode with a 32/16-bit code segment. */
  readonly mode: "64" | "compat32" | "compat16";
  /** RFLAGS.IF. */
  readonly if: boolean;
  /** The stack RSP is on: `user`, `RSP0`..`RSP2`, `IST1`..`IST7` (within the stack window below
   *  that TSS field's value), or `kernel` (another stack at CPL < 3). */
  readonly stack: string;
  /** Whose base GS.base holds, by SWAPGS parity: `user`/`kernel` once the run has been in user
   *  mode (the parity there is the user's), else `as-loaded`/`swapped`. */
  readonly gs: "user" | "kernel" | "as-loaded" | "swapped";
}

/** A run of boundaries [from, to] (0 = the initial state, s = after step s) with one context. */
export interface TimelineSegment extends BoundaryContext {
  readonly from: number;
  readonly to: number;
}

export type TransitionKind =
  | "syscall" | "sysret" | "sysenter" | "sysexit"
  | "int" | "exception" | "irq" | "nmi"
  | "iret" | "far-ret" | "far-jump" | "far-call"
  | "swapgs" | "triple-fault";

/** One line of a mode-transfer sequence. */
export interface SequenceLine {
  /** The rule that decided it (null: a note of the model's, e.g. an escalation). */
  readonly rule: string | null;
  readonly phase: "check" | "read" | "update" | "push" | "pop" | "fault" | "note";
  /** What happened, with this transition's values. */
  readonly text: string;
  /**
   * `reported`: the engine reported this rule at this point of the step; `passed`: a check the
   * spec records only when it fails, placed where the SDM puts it; `failed`: the check that
   * failed; `derived`: the engine reports no rules (impl), so the line is the model's reading of
   * the states in the SDM's order.
   */
  readonly status: "reported" | "passed" | "failed" | "derived";
  /** For a failed check: why, with the values that made it fail. */
  readonly why?: string;
}

/** One part of a step's sequence: the instruction, or one attempt to deliver an event. */
export interface SequencePart {
  readonly title: string;
  readonly lines: readonly SequenceLine[];
  /** Rules the engine reported in this part that draw no line of their own (page-walk A/D bits,
   *  RF clearing...), with how often, in first-hit order. */
  readonly also: readonly { readonly rule: string; readonly count: number }[];
  /** The part ended with a fault (the next part delivers it, or #DF, or the CPU shuts down). */
  readonly failed: boolean;
}

export interface FrameCell {
  /** Linear address of the 8-byte slot. */
  readonly address: string;
  /** The slot before and after the step (16 hex digits; null where the page is not mapped). */
  readonly before: string | null;
  readonly after: string | null;
  /** What the hardware put there (`RIP`, `CS`, `RFLAGS`, `RSP`, `SS`, `error code`, `padding`). */
  readonly name: string | null;
  /** The kernel's name for the slot, from the frame layout (`regstate.rip`, `pt_regs.orig_ax`). */
  readonly field: string | null;
  readonly role: "pushed" | "popped" | "padding" | "context";
  /** A symbol for the value (a RIP in a kernel with a symbol map). */
  readonly symbol?: string;
}

export interface StackMark {
  readonly label: string;
  readonly address: string;
}

export interface RegisterChange {
  readonly name: string;
  readonly before: string;
  readonly after: string;
  readonly note?: string;
}

export interface Frame {
  /** E.g. "interrupt frame pushed on IST1", "IRETQ pops its frame". */
  readonly title: string;
  /** The stack the cells are on. */
  readonly stack: string;
  /** Highest address first, as stacks are drawn. */
  readonly cells: readonly FrameCell[];
  /** RSP before and after, the stack top read from the TSS, the alignment. */
  readonly marks: readonly StackMark[];
  /** Registers that carry the return state instead of a frame (SYSCALL: RCX, R11) and RSP. */
  readonly registers: readonly RegisterChange[];
  readonly notes: readonly string[];
}

export interface EndPoint {
  readonly cpl: number;
  readonly mode: BoundaryContext["mode"];
  readonly rip: string;
  /** `symbol+offset` where a symbol map is given. */
  readonly at?: string;
  readonly rsp: string;
  readonly stack: string;
}

export interface Transition {
  /** Index in `transitions`. */
  readonly id: number;
  readonly step: number;
  readonly kind: TransitionKind;
  /** Short label for the timeline: `SYSCALL`, `#PF`, `INT 0x80`, `IRQ 0x20`, `IRETQ`. */
  readonly label: string;
  /** Longer one-line title: `#PF(0x4) from CPL 3 at 0x200000: mov 0x401000,%rax`. */
  readonly title: string;
  readonly vector?: number;
  readonly errorCode?: number | null;
  readonly from: EndPoint;
  readonly to: EndPoint;
  /** A transition instruction that faulted (IRETQ, SYSRET, far RET...): its name and the check. */
  readonly failed?: { readonly instruction: string; readonly rule: string | null; readonly why: string };
  /** SWAPGS: drawn as a tick on the GS strip, not as a lane change. */
  readonly minor: boolean;
  readonly sequence: readonly SequencePart[];
  /** The stack frames drawn: what the transition pushed or popped (for a failed IRET: the frame
   *  it read, then the frame its fault's delivery pushed). */
  readonly frames: readonly Frame[];
}

/** Consecutive round trips from user mode with the same shape (entry kind and vector, handler,
 *  return kind), drawn as one block: `×1000 SYSCALL → SYSRET`. */
export interface RoundTripGroup {
  readonly label: string;
  /** Transition ids of the first entry and the last return. */
  readonly first: number;
  readonly last: number;
  readonly count: number;
  /** Boundaries covered. */
  readonly from: number;
  readonly to: number;
}

export interface RuleInfo {
  readonly description: string;
  readonly source: string;
  /** A rule with no check or update of its own is recorded with these (spec/rules/rule.ts): the
   *  sequence shows it right after them. */
  readonly recordedWith?: string | readonly string[];
}

/** A step as the page lists it: the trace record, and the symbol of its address. */
export type ModelStep = TraceRecord & { readonly at?: string };

export interface TraceModel {
  readonly format: typeof TRACE_MODEL_FORMAT;
  readonly title: string;
  readonly source: {
    /** The file traced (as given on the command line). */
    readonly file: string;
    readonly engine: string;
    readonly profile: string;
    /** Whether the engine reported rules (spec does). */
    readonly rules: boolean;
    /** The command that makes this trace again. */
    readonly command: string;
  };
  readonly stop: { readonly reason: string; readonly steps: number; readonly detail?: string; readonly at: string };
  readonly initial: BoundaryContext;
  readonly segments: readonly TimelineSegment[];
  readonly transitions: readonly Transition[];
  readonly groups: readonly RoundTripGroup[];
  /** The steps recorded (all, unless the run was longer than the record limit). */
  readonly steps: readonly ModelStep[];
  /** Steps run but not recorded (over the limit); transitions are still all listed. */
  readonly omittedSteps: number;
  /** Transitions over the detail limit keep their label but not their sequence and frame. */
  readonly omittedDetails: number;
  /** Every rule a sequence line or a step names: its description and SDM source. */
  readonly rules: Readonly<Record<string, RuleInfo>>;
  /** The frame layout the frames were named with, if any. */
  readonly frameLayout?: string;
}

/** A kernel's register frame around the hardware frame (struct regstate, struct pt_regs): field
 *  names in ascending address order, 8 bytes each; `rip` names the field that holds the hardware
 *  frame's RIP (the others follow from it). */
export interface FrameLayout {
  readonly name: string;
  readonly fields: readonly string[];
  readonly rip: string;
}

export type { TraceEvent };
