// spec/context: the context-switch rules on synthetic boundary sequences (machine.ts builds the
// states; each test tells a short story of a kernel doing one thing right or wrong).
import { describe, expect, it } from "vitest";
import { initialContextModel, needsState, observe, boundaryInstruction, type ContextConfig, type ContextModel, type Violation } from "../../../spec/context/index.ts";
import type { ArchState } from "../../../contract/state.ts";
import type { EngineEvent } from "../../../contract/engine.ts";
import {
  IST1, LSTAR, PERCPU, RSP0_A, RSP0_B, SWAPGS_BYTES, SYSCALL_BYTES, SYSRETQ_BYTES, TASK_B_CR3, TSS, USER_RIP, USER_RSP,
  deliverFromUser, iret, kernelStep, poke, swapgs, syscall, sysret, userState, withGpr,
} from "./machine.ts";

const CONFIG: ContextConfig = { kernelStacks: "per-task", kernelStackSize: 0x1000n, kernelMemory: [{ start: 0x100000n, end: 0x110000n, what: "the kernel image" }] };

type Step = { event: EngineEvent; after: ArchState };

/** Feeds the steps to the checker; returns every violation and the final model. */
function check(steps: readonly Step[], initial: ArchState = userState(), config: ContextConfig = CONFIG): { violations: Violation[]; model: ContextModel } {
  let model = initialContextModel(config, initial);
  const violations: Violation[] = [];
  steps.forEach((s, i) => {
    const r = observe(model, { step: i + 1, event: s.event, after: s.after });
    model = r.model;
    violations.push(...r.violations);
  });
  return { violations, model };
}

/** A correct syscall path: SYSCALL; SWAPGS; switch to RSP0; the handler sets RAX; back: SWAPGS; SYSRETQ. */
function syscallRoundTrip(user: ArchState, options: { result?: bigint; clobber?: [number, bigint]; skipExitSwapgs?: boolean; skipStackSwitch?: boolean; stackTop?: bigint } = {}): Step[] {
  const steps: Step[] = [];
  const push = (s: Step) => (steps.push(s), s.after);
  let s = push(syscall(user));
  s = push(swapgs(s));
  const userRsp = s.gpr[4]!;
  s = push(kernelStep(s, options.skipStackSwitch === true ? userRsp - 8n : options.stackTop ?? RSP0_A)); // mov %gs:kstack, %rsp
  s = push(kernelStep(s, s.gpr[4]! - 8n)); // push ...
  s = withGpr(s, 0, options.result ?? 42n); // the result
  if (options.clobber !== undefined) s = withGpr(s, options.clobber[0], options.clobber[1]);
  s = push(kernelStep(s, userRsp)); // mov user rsp back
  if (options.skipExitSwapgs !== true) s = push(swapgs(s));
  push(sysret(s));
  return steps;
}

describe("a correct kernel passes every rule", () => {
  it("a SYSCALL → SYSRETQ round trip and an interrupt → IRETQ round trip give no violation", () => {
    const round = syscallRoundTrip(userState());
    const back = round[round.length - 1]!.after;
    // A timer interrupt: SWAPGS in the handler, and again before IRETQ.
    const d = deliverFromUser(back, 32, "external");
    const g1 = swapgs(d.after, 0x11000n + 16n * 32n);
    const g2 = swapgs(g1.after, 0x11100n);
    const r = iret(g2.after);
    const { violations, model } = check([...round, d, g1, g2, r]);
    expect(violations).toEqual([]);
    expect(model.suspended.size).toBe(0);
    expect(r.after.rip).toBe(back.rip);
    // Two entries (SYSCALL, interrupt) and two returns, each checked: (b) at the SYSCALL's stack
    // switch and at the delivery.
    expect(model.checks).toEqual({ a: 2, b: 2, c: 2, d: 2, e: 2, f: 2 });
  });
});

describe("CTX-01 (a): a task resumes with the user context it entered with", () => {
  it("CTX-01: a yield that clobbers a callee-saved register (R12) is caught, naming the register and the entry", () => {
    const { violations } = check(syscallRoundTrip(userState(), { clobber: [12, 0n] }));
    expect(violations.map((v) => v.rule)).toEqual(["CTX-01"]);
    const v = violations[0]!;
    expect(v.invariant).toBe("a");
    expect(v.message).toContain("r12 = 0x0 (was 0xd011)");
    expect(v.message).toContain(`SYSCALL at ${"0x" + USER_RIP.toString(16)}`);
    expect(v.task).toBe("task 1 (cr3 0x1000)");
  });

  it("CTX-01: RAX is a system call's result, but after an interrupt it must come back unchanged", () => {
    expect(check(syscallRoundTrip(userState(), { result: 7n })).violations).toEqual([]);
    const d = deliverFromUser(userState(), 32, "external");
    const g1 = swapgs(d.after);
    const changed = withGpr(g1.after, 0, 7n);
    const g2 = swapgs(changed);
    const { violations } = check([d, g1, g2, iret(g2.after)]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-01"]);
    expect(violations[0]!.message).toContain("rax = 0x7");
  });

  it("CTX-01: after a system call RCX must be the return RIP, as SYSRET leaves it (an IRETQ path must restore it)", () => {
    const steps = syscallRoundTrip(userState());
    const last = steps[steps.length - 1]!;
    steps[steps.length - 1] = { ...last, after: withGpr(last.after, 1, 0x1234n) };
    const { violations } = check(steps);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-01"]);
    expect(violations[0]!.message).toContain("rcx = 0x1234 (the return RIP");
  });
});

describe("CTX-02 (b): the kernel runs on the task's kernel stack", () => {
  it("CTX-02: an IDT entry from user mode lands right below the aligned RSP0 (an engine that did not switch would be caught)", () => {
    const d = deliverFromUser(userState(), 14, "exception", 6);
    expect(check([d]).violations).toEqual([]);
    const wrong = { ...d, after: withGpr(d.after, 4, d.after.gpr[4]! - 0x100n) };
    const { violations } = check([wrong]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-02"]);
    expect(violations[0]!.message).toContain("not on its kernel stack (TSS.RSP0 = 0x20000)");
  });

  it("CTX-02: a gate with an IST uses that stack", () => {
    const d = deliverFromUser(userState(), 8, "exception", 0, IST1);
    expect(check([d]).violations).toEqual([]);
  });

  it("CTX-02-SYSCALL: an entry path that pushes onto the user stack before switching is caught", () => {
    const { violations } = check(syscallRoundTrip(userState(), { skipStackSwitch: true }));
    expect(violations.map((v) => v.rule)).toEqual(["CTX-02-SYSCALL"]);
    expect(violations[0]!.message).toContain("outside the task's kernel stack");
  });

  it("CTX-02-RING0: an exception delivered in kernel mode onto a user page (SYSRETQ's #GP with the user RSP) is caught", () => {
    const steps = syscallRoundTrip(userState());
    // Instead of SYSRETQ returning: #GP(0) in ring 0, frame pushed on the user stack.
    const beforeSysret = steps[steps.length - 2]!.after;
    const rsp = (beforeSysret.gpr[4]! & ~0xfn) - 48n;
    const gp: Step = { event: { kind: "delivered", rip: 0x15100n, vector: 13, errorCode: 0, source: "exception" }, after: { ...withGpr(beforeSysret, 4, rsp), rip: 0x11000n + 16n * 13n } };
    const { violations } = check([...steps.slice(0, -1), gp]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-02-RING0"]);
    expect(violations[0]!.message).toContain("user-accessible stack");
  });
});

describe("CTX-03 (c): user mode has the user's GS and IF = 1", () => {
  it("CTX-03-GS: an exit path without SWAPGS leaves the kernel's GS.base live in user mode", () => {
    const { violations } = check(syscallRoundTrip(userState(), { skipExitSwapgs: true }));
    expect(violations.map((v) => v.rule)).toEqual(["CTX-03-GS", "CTX-01"]);
    expect(violations[0]!.message).toContain(`kernel's GS.base (0x${PERCPU.toString(16)})`);
  });

  it("CTX-03-GS: parity is found from the instruction bytes when events carry them", () => {
    const steps = syscallRoundTrip(userState()).map((s) => {
      const k = boundaryInstructionOf(s);
      return k === undefined ? s : { ...s, event: { ...s.event, instruction: { bytes: k, length: k.length } } };
    });
    expect(check(steps).violations).toEqual([]);
  });

  it("CTX-03-IF: returning to user mode with IF = 0 is caught", () => {
    const steps = syscallRoundTrip(userState());
    const last = steps[steps.length - 1]!;
    steps[steps.length - 1] = { ...last, after: { ...last.after, rflags: 0x2n } };
    const { violations } = check(steps);
    expect(violations.map((v) => v.rule)).toContain("CTX-03-IF");
    expect(violations.find((v) => v.rule === "CTX-03-IF")!.message).toContain("interrupts disabled (IF = 0)");
  });
});

/** Tags synthetic SYSCALL/SWAPGS/SYSRETQ steps with their bytes, as an engine that reports them would. */
function boundaryInstructionOf(s: Step): Uint8Array | undefined {
  if (s.event.kind !== "retired") return undefined;
  if (s.after.rip === LSTAR && s.after.cs.selector === 0x08 && s.event.rip === USER_RIP) return SYSCALL_BYTES;
  if (s.after.cs.selector === 0x23) return SYSRETQ_BYTES;
  if (s.after.gs.base !== undefined && s.event.rip === 0x15000n) return SWAPGS_BYTES;
  return Uint8Array.from([0x90]);
}

describe("CTX-04 (d): CPL 3 reaches CPL 0 only through IDT gates or LSTAR", () => {
  it("CTX-04: arriving in the kernel anywhere but the gate's handler is caught", () => {
    const d = deliverFromUser(userState(), 32, "external");
    const { violations } = check([{ ...d, after: { ...d.after, rip: 0x11234n } }]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-04"]);
    expect(violations[0]!.message).toContain("not the handler of IDT gate 32");
  });

  it("CTX-04: a privilege change by an ordinary instruction is caught", () => {
    const s = userState();
    const { violations } = check([{ event: { kind: "retired", rip: s.rip }, after: { ...s, rip: 0x40000n, cs: { ...s.cs, selector: 0x08, dpl: 0 } } }]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-04"]);
  });
});

describe("CTX-05 (e): TSS.RSP0 is the running task's kernel stack top", () => {
  /** Task A makes a system call and yields inside the kernel; the kernel switches to task B. */
  function switchToB(rsp0ForB: bigint): Step[] {
    const a = userState();
    const enterA = syscall(a);
    const g = swapgs(enterA.after);
    const onStack = kernelStep(g.after, RSP0_A);
    // ... A yields; the scheduler picks B: CR3 ← B, RSP0 ← rsp0ForB, B's context, SWAPGS, SYSRETQ to B.
    let b = poke({ ...onStack.after, cr3: TASK_B_CR3 }, TSS + 4n, rsp0ForB);
    b = withGpr(withGpr(b, 1, 0x200800n), 11, 0x202n);
    b = withGpr(b, 4, USER_RSP - 0x1000n);
    const g2 = swapgs(b);
    return [enterA, g, onStack, g2, sysret(g2.after)];
  }

  it("CTX-05: B running with its own RSP0 is fine", () => {
    expect(check(switchToB(RSP0_B)).violations).toEqual([]);
  });

  it("CTX-05: a stale RSP0 after a switch (B runs on the stack of A, suspended in the kernel) is caught", () => {
    const { violations } = check(switchToB(RSP0_A));
    expect(violations.map((v) => v.rule)).toEqual(["CTX-05"]);
    expect(violations[0]!.message).toContain("the kernel stack of task 1 (cr3 0x1000), which is suspended in the kernel");
    expect(violations[0]!.task).toBe("task 2 (cr3 0x5000)");
  });

  it("CTX-05: a task whose RSP0 changes between two runs is caught; with one shared kernel stack, any change is", () => {
    const first = syscallRoundTrip(userState());
    const back = first[first.length - 1]!.after;
    const moved = poke(back, TSS + 4n, 0x24000n);
    const second = syscallRoundTrip(moved, { stackTop: 0x24000n });
    const { violations } = check([...first, ...second]);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-05"]);
    expect(violations[0]!.message).toContain("but its kernel stack top is 0x20000");
    const shared = check([...first, ...second], userState(), { ...CONFIG, kernelStacks: "shared" });
    expect(shared.violations.map((v) => v.rule)).toEqual(["CTX-05"]);
  });
});

describe("CTX-06 (f): no user-accessible mapping of kernel memory", () => {
  it("CTX-06: a user mapping of the kernel's pages is caught, naming what it maps", () => {
    const steps = syscallRoundTrip(userState());
    const last = steps[steps.length - 1]!;
    // The 0–2 MiB kernel page made user-accessible (U/S = 1): the IDT, TSS and kernel stacks are in it.
    steps[steps.length - 1] = { ...last, after: poke(last.after, 0x3000n, 0x87n) };
    const { violations } = check(steps);
    expect(violations.map((v) => v.rule)).toEqual(["CTX-06"]);
    expect(violations[0]!.message).toContain("lets user mode write kernel memory: 0x0 maps physical 0x0, the kernel image");
  });

  it("CTX-06: ranges the loader declares count as kernel memory", () => {
    const steps = syscallRoundTrip(userState());
    const { violations } = check(steps, userState(), { ...CONFIG, kernelMemory: [{ start: 0x300000n, end: 0x301000n, what: "the kernel's heap" }] });
    expect(violations.map((v) => v.message)).toEqual([expect.stringContaining("physical 0x200000, the kernel's heap")]);
  });
});

describe("what the checker needs from a runner", () => {
  it("needs the state after deliveries, after boundary instructions, during a SYSCALL entry, and always when events carry no bytes", () => {
    const model = initialContextModel(CONFIG, userState());
    const retired = (bytes?: number[]): EngineEvent => ({ kind: "retired", rip: 0n, ...(bytes === undefined ? {} : { instruction: { bytes: Uint8Array.from(bytes), length: bytes.length } }) });
    expect(needsState(model, retired())).toBe(true);
    expect(needsState(model, retired([0x48, 0x89, 0xe7]))).toBe(false); // mov %rsp,%rdi
    expect(needsState(model, retired([0x0f, 0x05]))).toBe(true);
    expect(needsState(model, retired([0x48, 0xcf]))).toBe(true);
    expect(needsState(model, { kind: "delivered", rip: 0n, vector: 14, errorCode: 2, source: "exception" })).toBe(true);
    expect(needsState(model, { kind: "io", rip: 0n, direction: "out", port: 0xe9, size: 1, value: 65n })).toBe(false);
    const inWindow = observe(model, { step: 1, ...syscall(userState()) }).model;
    expect(needsState(inWindow, retired([0x90]))).toBe(true);
  });

  it("recognises the boundary instructions through prefixes", () => {
    expect(boundaryInstruction(Uint8Array.from([0x48, 0x0f, 0x07]))).toBe("sysret");
    expect(boundaryInstruction(Uint8Array.from([0x66, 0x0f, 0x01, 0xf8]))).toBe("swapgs");
    expect(boundaryInstruction(Uint8Array.from([0x48, 0xcf]))).toBe("iret");
    expect(boundaryInstruction(Uint8Array.from([0x48, 0xcb]))).toBe("retf");
    expect(boundaryInstruction(Uint8Array.from([0x0f, 0x01, 0xf9]))).toBe("other");
  });

  it("observe is pure: the model it was given is unchanged", () => {
    const model = initialContextModel(CONFIG, userState());
    const snapshot = JSON.stringify(model, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v));
    for (const s of syscallRoundTrip(userState())) observe(model, { step: 1, ...s });
    expect(JSON.stringify(model, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v))).toBe(snapshot);
  });
});
