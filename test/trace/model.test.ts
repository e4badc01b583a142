// The trace model: transitions, their mode-transfer sequences (rules in the order the spec
// exercised them, silent checks placed, the failed check and why) and stack frames, and the
// timeline contexts, on vectors from independent emulators and on small guests.
import { describe, expect, it } from "vitest";
import { lineOf, modelOf, ruleLines, vectorState } from "./helpers.ts";
import { intLoop, syscallLoop } from "./guests.ts";
import { placeImplied } from "../../trace/model/build.ts";
import { REGSTATE_LAYOUT } from "../../trace/model/frame.ts";
import { explainTransition } from "../../trace/explain.ts";
import { ruleCatalogue } from "../../cli/trace.ts";

describe("trace model: a SYSCALL/SYSRET round trip", () => {
  const m = modelOf(vectorState("syscall-sysret-roundtrip"), { steps: 4 });
  const [syscall, sysret] = m.transitions;

  it("finds the two transitions with their kinds, privilege levels and addresses", () => {
    expect(m.transitions.map((t) => [t.kind, t.label, t.step, t.from.cpl, t.to.cpl])).toEqual([
      ["syscall", "SYSCALL", 1, 3, 0],
      ["sysret", "SYSRETQ", 2, 0, 3],
    ]);
    expect(syscall!.to.rip).toBe("0x230000");
    expect(sysret!.to.rip).toBe("0x200002");
  });

  it("lays out SYSCALL's sequence in the spec's order, its silent checks first", () => {
    expect(ruleLines(syscall!)).toEqual([[
      "SYSCALL-01 passed", "SYSCALL-02 passed", "SYSCALL-03 reported", "SYSCALL-04 reported", "SYSCALL-05 reported",
      "SYSCALL-11 reported", "SYSCALL-06 reported", "SYSCALL-09 reported", "NMI-05 reported", "SYSCALL-07 reported", "SYSCALL-V2 reported",
      "SYSCALL-08 reported", "SYSCALL-10 reported",
    ]]);
    expect(lineOf(syscall!, "SYSCALL-03")).toBe("RCX ← 0x200002, the RIP of the next instruction");
    expect(lineOf(syscall!, "SYSCALL-04")).toBe("R11 ← RFLAGS 0x202");
    expect(lineOf(syscall!, "SYSCALL-05")).toContain("= 0x2 (-IF)");
    expect(lineOf(syscall!, "SYSCALL-08")).toBe("RIP ← LSTAR 0x230000");
    expect(syscall!.sequence[0]!.also).toEqual([{ rule: "PF-ACCESSED", count: 1 }, { rule: "RF-01", count: 1 }]);
  });

  it("draws SYSCALL's frame as the registers that carry the return state, nothing pushed", () => {
    const [frame] = syscall!.frames;
    expect(frame!.cells).toEqual([]);
    const regs = Object.fromEntries(frame!.registers.map((r) => [r.name, [r.before, r.after]]));
    expect(regs).toMatchObject({ RCX: ["0x0", "0x200002"], R11: ["0x0", "0x202"], RSP: ["0x210000", "0x210000"], CS: ["0x2b", "0x8"], RIP: ["0x200000", "0x230000"] });
  });

  it("checks SYSRET's RCX before loading it", () => {
    expect(ruleLines(sysret!)[0]!.slice(0, 4)).toEqual(["SYSRET-01 passed", "SYSRET-02 passed", "SYSRET-03 passed", "SYSRET-04 reported"]);
    expect(lineOf(sysret!, "SYSRET-03")).toBe("RCX 0x200002 is canonical");
    expect(lineOf(sysret!, "SYSRET-06")).toContain("= 0x2b");
  });

  it("shows the kernel running on the user stack between SYSCALL and SYSRET", () => {
    expect(m.segments.map((s) => [s.from, s.to, s.cpl, s.if, s.stack])).toEqual([
      [0, 0, 3, true, "user"],
      [1, 1, 0, false, "user"],
      [2, 4, 3, true, "user"],
    ]);
  });

  it("reads the same transitions and frames from impl, its sequence derived from the states", () => {
    const i = modelOf(vectorState("syscall-sysret-roundtrip"), { steps: 4, engine: "impl" });
    expect(i.transitions.map((t) => t.label)).toEqual(["SYSCALL", "SYSRETQ"]);
    expect(i.transitions[0]!.frames).toEqual(syscall!.frames);
    expect(i.transitions[0]!.sequence[0]!.lines.every((l) => l.status === "derived")).toBe(true);
    expect(lineOf(i.transitions[0]!, "SYSCALL-03")).toBe(lineOf(syscall!, "SYSCALL-03"));
    expect(i.segments).toEqual(m.segments);
  });
});

describe("trace model: an interrupt through an IST gate", () => {
  it("NMI on IST3: the stack switch names the TSS field, the frame is drawn on it", () => {
    const m = modelOf(vectorState("nmi-ist3"), { steps: 1 });
    const [nmi] = m.transitions;
    expect([nmi!.kind, nmi!.label, nmi!.vector, nmi!.errorCode]).toEqual(["nmi", "NMI", 2, null]);
    expect(nmi!.sequence.map((p) => p.title)).toEqual(["NMI at the boundary before 0x10000", "delivery of NMI through IDT gate 0x2"]);
    expect(lineOf(nmi!, "DELIVER-02")).toContain("IST 3");
    expect(lineOf(nmi!, "DT-03")).toBe("stack from TSS.IST3, at TSS + 0x34");
    expect(lineOf(nmi!, "DELIVER-12")).toBe("new RSP ← TSS.IST3 = 0x23000 (IST 3: switched whatever the privilege)");
    expect(lineOf(nmi!, "DELIVER-17")).toBe("SS unchanged (no privilege change)");
    const [frame] = nmi!.frames;
    expect(frame!.title).toBe("5 slots pushed on TSS.IST3");
    expect(frame!.cells.filter((c) => c.role === "pushed").map((c) => [c.address, c.name, c.after])).toEqual([
      ["0x22ff8", "SS", "0000_0000_0000_0010"],
      ["0x22ff0", "RSP", "0000_0000_0002_0000"],
      ["0x22fe8", "RFLAGS", "0000_0000_0000_0002"],
      ["0x22fe0", "CS", "0000_0000_0000_0008"],
      ["0x22fd8", "RIP", "0000_0000_0001_0000"],
    ]);
    expect(frame!.marks).toEqual([{ label: "TSS.IST3", address: "0x23000" }, { label: "RSP after", address: "0x22fd8" }]);
    expect(m.segments[m.segments.length - 1]!.stack).toBe("IST3");
  });

  it("INT 0x80 from user mode through an IST1 gate: privilege change and IST switch, frame named as a regstate", () => {
    const g = intLoop();
    const m = modelOf(g.state, { steps: 5, symbols: g.symbols, frameLayout: REGSTATE_LAYOUT });
    const [int80, , , iret] = m.transitions;
    expect(m.transitions.map((t) => t.label)).toEqual(["INT 0x80", "SWAPGS", "SWAPGS", "IRETQ"]);
    expect(int80!.to.at).toBe("int80_handler");
    expect(lineOf(int80!, "DELIVER-04")).toBe("INT n from CPL 3: gate DPL 3 ≥ CPL 3");
    expect(lineOf(int80!, "DELIVER-11")).toBe("DPL 0 < CPL 3: privilege change, new CPL 0");
    expect(lineOf(int80!, "DELIVER-12")).toContain("TSS.IST1");
    const pushed = int80!.frames[0]!.cells.filter((c) => c.role === "pushed");
    expect(pushed.map((c) => [c.name, c.field])).toEqual([
      ["SS", "regstate.ss"], ["RSP", "regstate.rsp"], ["RFLAGS", "regstate.rflags"], ["CS", "regstate.cs"], ["RIP", "regstate.rip"],
    ]);
    // The IRETQ pops the same frame: RSP before marks its RIP slot.
    const popped = iret!.frames[0]!;
    expect(popped.cells.filter((c) => c.role === "popped").map((c) => c.name)).toEqual(["SS", "RSP", "RFLAGS", "CS", "RIP"]);
    expect(popped.marks[0]).toEqual({ label: "RSP before", address: int80!.to.rsp });
    // Three kernel segments (GS.base changes twice), all on IST1.
    expect(m.segments.map((s) => s.stack)).toEqual(["user", "IST1", "IST1", "IST1", "user"]);
  });

  it("GS.base parity: kernel's between the two SWAPGS, the user's outside", () => {
    const g = intLoop();
    const m = modelOf(g.state, { steps: 5 });
    expect(m.segments.map((s) => [s.from, s.to, s.cpl, s.gs])).toEqual([
      [0, 0, 3, "user"], [1, 1, 0, "user"], [2, 2, 0, "kernel"], [3, 3, 0, "user"], [4, 5, 3, "user"],
    ]);
  });
});

describe("trace model: a #PF with its error code", () => {
  const m = modelOf(vectorState("pf-user-read-notpresent"), { steps: 1 });
  const [pf] = m.transitions;

  it("names the failed page-walk check, the error code's bits and CR2", () => {
    expect([pf!.kind, pf!.label, pf!.vector, pf!.errorCode]).toEqual(["exception", "#PF", 14, 4]);
    const [instruction, delivery] = pf!.sequence;
    expect(instruction!.title).toBe("mov 0x401000,%rax (faulted)");
    expect(instruction!.failed).toBe(true);
    const failed = instruction!.lines.find((l) => l.status === "failed")!;
    expect(failed.rule).toBe("PF-NP");
    expect(failed.why).toBe("raises #PF(0x4) (P=0 not present, W/R=0 read, U/S=1 user) at 0x401000 (CR2, PF-01)");
    expect(delivery!.lines[0]).toMatchObject({ rule: "PF-01", text: "CR2 ← 0x401000, the faulting linear address, before delivery begins" });
    expect(lineOf(pf!, "EXC-02")).toBe("#PF pushes an error code: 0x4 (P=0 not present, W/R=0 read, U/S=1 user)");
  });

  it("draws the error code below RIP on the RSP0 stack, RSP after pointing at it", () => {
    const [frame] = pf!.frames;
    const pushed = frame!.cells.filter((c) => c.role === "pushed");
    expect(pushed.map((c) => c.name)).toEqual(["SS", "RSP", "RFLAGS", "CS", "RIP", "error code"]);
    expect(pushed[5]).toMatchObject({ address: "0x1ffd0", before: "0000_0000_0000_0000", after: "0000_0000_0000_0004" });
    expect(pushed[2]!.after).toBe("0000_0000_0001_0002"); // RF = 1 in the image of a fault
    expect(frame!.marks).toEqual([{ label: "TSS.RSP0", address: "0x20000" }, { label: "RSP after", address: "0x1ffd0" }]);
    expect(frame!.notes).toContain("error code 0x4 pushed last, below RIP: the handler must pop it before IRETQ");
  });
});

describe("trace model: a #DF", () => {
  it("#UD whose delivery faults, then #PF whose delivery faults: #DF delivered on IST1", () => {
    const m = modelOf(vectorState("df-rsp0-unmapped-ist"), { steps: 1 });
    const [df] = m.transitions;
    expect([df!.label, df!.vector, df!.errorCode]).toEqual(["#DF", 8, 0]);
    expect(df!.sequence.map((p) => [p.title, p.failed])).toEqual([
      ["ud2 (faulted)", true],
      ["delivery of #UD through IDT gate 0x6", true],
      ["delivery of #PF (error code 0x2) through IDT gate 0xe", true],
      ["delivery of #DF (error code 0x0) through IDT gate 0x8", false],
    ]);
    const [ud2, ud, pf, dfPart] = df!.sequence;
    expect(ud2!.lines.map((l) => `${l.rule} ${l.status}`)).toEqual(["UD2-01 failed"]);
    // The #UD frame's first push hits the unmapped RSP0 stack: a #PF, delivered serially.
    const udFailed = ud!.lines.find((l) => l.status === "failed")!;
    expect(udFailed.rule).toBe("PF-NP");
    expect(ud!.lines.slice(-4).map((l) => l.rule)).toEqual(["DF-02", "DF-06", "DF-03", "DF-07"]);
    expect(pf!.lines.find((l) => l.status === "failed")!.rule).toBe("PF-NP");
    expect(pf!.lines.slice(-4).map((l) => l.rule)).toEqual(["DF-02", "DF-06", "DF-03", "DF-04"]);
    expect(lineOf({ ...df!, sequence: [dfPart!] }, "DELIVER-12")).toContain("TSS.IST1");
    expect(df!.frames[0]!.title).toBe("6 slots pushed on TSS.IST1");
  });

  it("a fault while delivering #DF: the triple fault ends with DF-05", () => {
    const m = modelOf(vectorState("df-contributory-np-then-gp"), { steps: 1 });
    const [tf] = m.transitions;
    expect([tf!.kind, tf!.label]).toEqual(["triple-fault", "triple fault"]);
    const last = tf!.sequence[tf!.sequence.length - 1]!;
    expect(last.title).toBe("delivery of #DF (error code 0x0) through IDT gate 0x8");
    expect(last.lines.find((l) => l.status === "failed")!.text).toBe("16·0x8 + 15 = 0x8f > IDTR.limit 0x5f: the IDT has no gate 0x8");
    expect(last.lines[last.lines.length - 1]!.rule).toBe("DF-05");
    expect(tf!.frames).toEqual([]);
  });
});

describe("trace model: a failed IRETQ", () => {
  const m = modelOf(vectorState("iretq-ring3-to-ring0-gp"), { steps: 6 });
  const t = m.transitions.find((x) => x.failed !== undefined)!;

  it("names the check that failed and why", () => {
    expect(t.label).toBe("#GP ← IRETQ");
    expect(t.failed).toEqual({ instruction: "IRETQ", rule: "IRETQ-06", why: "return CS.RPL 0 < CPL 3: IRET never returns to a more privileged level" });
    expect(ruleLines(t)[0]).toEqual(["IRETQ-01 passed", "IRETQ-02 reported", "IRETQ-03 passed", "IRETQ-04 passed", "IRETQ-05 passed", "IRETQ-06 failed"]);
    expect(lineOf(t, "IRETQ-02")).toBe("read RIP 0x10000, CS 0x8, RFLAGS 0x2 from [RSP 0x20ffd8]");
    expect(t.sequence[1]!.title).toBe("delivery of #GP (error code 0x8) through IDT gate 0xd");
  });

  it("draws the frame IRETQ read (not popped) and the #GP frame delivered", () => {
    const [read, pushed] = t.frames;
    expect(read!.title).toBe("the frame IRETQ read before it faulted");
    expect(read!.cells.filter((c) => c.name !== null).map((c) => [c.name, c.before, c.role])).toEqual([
      ["SS", "0000_0000_0000_0010", "context"],
      ["RSP", "0000_0000_0021_0000", "context"],
      ["RFLAGS", "0000_0000_0000_0002", "context"],
      ["CS", "0000_0000_0000_0008", "context"],
      ["RIP", "0000_0000_0001_0000", "context"],
    ]);
    expect(pushed!.cells.find((c) => c.name === "error code")!.after).toBe("0000_0000_0000_0008");
  });

  it("explains it as text (ringspec run --trace --explain)", () => {
    const text = explainTransition(t);
    expect(text).toContain("IRETQ failed at IRETQ-06: return CS.RPL 0 < CPL 3");
    expect(text).toContain("✗ IRETQ-06    return CS.RPL 0 < CPL 3: IRET never returns to a more privileged level — raises #GP(0x8) (GDT selector 0x8)");
    expect(text).toContain("0x1ffd0  0000_0000_0000_0000 *0000_0000_0000_0008  error code  ← RSP after");
  });
});

describe("trace model: compatibility mode", () => {
  it("IRETL to a 32-bit user code segment: the timeline's lane is compatibility mode", () => {
    const m = modelOf(vectorState("iretd-to-ring3-compat"), { steps: 3 });
    expect(m.transitions.map((t) => [t.label, t.to.cpl, t.to.mode])).toEqual([["IRETL", 3, "compat32"]]);
    expect(m.segments[m.segments.length - 1]).toMatchObject({ cpl: 3, mode: "compat32" });
    // 32-bit IRET slots are 4 bytes: the cells are drawn as 8-byte words, and the note says so.
    expect(m.transitions[0]!.frames[0]!.notes).toEqual(["32-bit operand size: the slots are 4 bytes wide (cells show 8-byte words)"]);
  });
});

describe("trace model: long runs", () => {
  it("groups repeated round trips and counts every transition", () => {
    const g = syscallLoop();
    const m = modelOf(g.state, { steps: 11 * 40, symbols: g.symbols });
    expect(m.transitions.filter((t) => t.kind === "syscall")).toHaveLength(40);
    expect(m.transitions.filter((t) => t.kind === "swapgs")).toHaveLength(80);
    expect(m.groups).toEqual([{ label: "×40 SYSCALL → SYSRETQ", first: 0, last: m.transitions.length - 1, count: 40, from: 0, to: 11 * 39 + 9 }]);
    expect(m.transitions[0]!.to.at).toBe("entry_SYSCALL_64");
  });

  it("keeps the timeline and transitions whole past the record and detail limits", () => {
    const g = intLoop();
    const m = modelOf(g.state, { steps: 50, maxRecords: 10, maxDetailed: 8 });
    expect(m.steps).toHaveLength(10);
    expect(m.omittedSteps).toBe(40);
    expect(m.transitions).toHaveLength(40);
    expect(m.omittedDetails).toBe(32);
    expect(m.transitions[8]!.sequence).toEqual([]);
    expect(m.segments[m.segments.length - 1]!.to).toBe(50);
  });
});

describe("trace model: rule order", () => {
  it("puts a rule recorded with another right after it", () => {
    expect(placeImplied(["SYSCALL-05", "SYSCALL-06", "SYSCALL-08", "SYSCALL-11", "SYSCALL-09"], ruleCatalogue)).toEqual([
      "SYSCALL-05", "SYSCALL-11", "SYSCALL-06", "SYSCALL-09", "SYSCALL-08",
    ]);
  });

  it("the rule catalogue has every rule a sequence names", () => {
    const m = modelOf(vectorState("df-rsp0-unmapped-ist"), { steps: 1 });
    const named = m.transitions.flatMap((t) => t.sequence.flatMap((p) => p.lines.map((l) => l.rule))).filter((r) => r !== null);
    for (const rule of named) expect(m.rules[rule!], rule!).toBeDefined();
  });
});
