// The GDB remote-protocol client and the generic bridge: packet framing on its own, the target
// description QEMU 7.2 serves (recorded), capability handling (what a stub cannot show is "not
// compared", never a pass), and the bridge end to end against a small fake stub.
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseDocument } from "../../../contract/load.ts";
import { compareExpected } from "../../../contract/compare.ts";
import { decodePayload, escapePayload, parseStopReply, takePacket } from "../../../engines/gdb/rsp.ts";
import { loadTargetDescription, registerBytes, registerValue } from "../../../engines/gdb/target-description.ts";
import { GdbEngine, gdbUnobservable, parseGdbTarget } from "../../../engines/gdb/engine.ts";
import { EngineError } from "../../../engines/host/errors.ts";
import { vectorPath } from "../../helpers/fixture.ts";

const sample = (name: string) => readFileSync(new URL(`./samples/${name}`, import.meta.url), "utf8");
const files: Record<string, string> = { "target.xml": sample("qemu-target.xml"), "i386-64bit.xml": sample("qemu-i386-64bit.xml") };

function checksum(text: string): string {
  let sum = 0;
  for (const c of Buffer.from(text, "latin1")) sum = (sum + c) & 0xff;
  return sum.toString(16).padStart(2, "0");
}
const frame = (payload: string) => `$${payload}#${checksum(payload)}`;

describe("remote-protocol packets", () => {
  it("frames, checks and unescapes packets; acks come through on their own", () => {
    expect(takePacket(Buffer.from("+" + frame("OK")))).toEqual({ value: { ack: "+" }, used: 1 });
    expect(takePacket(Buffer.from(frame("OK")))).toEqual({ value: { payload: "OK" }, used: 6 });
    expect(takePacket(Buffer.from("$OK#9"))).toBeUndefined();
    expect(() => takePacket(Buffer.from("$OK#00"))).toThrow(/bad checksum/);
    expect(escapePayload("a#b$c}d*")).toBe("a}\x03b}\x04c}]d}\n");
    expect(decodePayload(Buffer.from("a}\x03b"))).toBe("a#b");
    // Run-length encoding: "0* " is "0" and 3 more.
    expect(decodePayload(Buffer.from("0* "))).toBe("0000");
  });

  it("reads stop replies", () => {
    const t = parseStopReply("T05thread:01;")!;
    expect(t.kind === "signal" && t.signal === 5 && t.info.get("thread") === "01").toBe(true);
    expect(parseStopReply("S02")).toMatchObject({ kind: "signal", signal: 2 });
    expect(parseStopReply("W00")).toEqual({ kind: "exited", code: 0 });
    expect(parseStopReply("OK")).toBeUndefined();
    expect(() => parseStopReply("T05bad field;")).toThrow(EngineError);
  });

  it("reads QEMU's x86-64 target description: 66 registers, the sys registers included", async () => {
    const td = (await loadTargetDescription(async (annex) => files[annex] ?? null))!;
    expect(td.architecture).toBe("i386:x86-64");
    expect(td.size).toBe(608);
    const names = td.registers.map((r) => r.name);
    expect(names.slice(0, 3)).toEqual(["rax", "rbx", "rcx"]);
    for (const n of ["rip", "eflags", "cs", "fs_base", "k_gs_base", "cr0", "cr8", "efer"]) expect(names).toContain(n);
    const efer = td.registers.find((r) => r.name === "efer")!;
    const g = new Uint8Array(td.size);
    g.set(registerBytes(efer, 0xd01n), efer.offset);
    expect(registerValue(g, efer)).toBe(0xd01n);
  });

  it("parses --gdb targets", () => {
    expect(parseGdbTarget("localhost:1234")).toEqual({ host: "localhost", port: 1234 });
    expect(parseGdbTarget("[::1]:1234")).toEqual({ host: "::1", port: 1234 });
    expect(parseGdbTarget("/tmp/gdb.sock")).toEqual({ path: "/tmp/gdb.sock" });
    expect(parseGdbTarget("localhost")).toMatch(/HOST:PORT/);
    expect(parseGdbTarget("h:99999")).toMatch(/out of range/);
  });
});

describe("capabilities", () => {
  it("declares what a stub does not expose, and the comparison reports it as not compared", () => {
    const doc = parseDocument(readFileSync(vectorPath("sysret64-basic"), "utf8"));
    if (doc.kind !== "vector") throw new Error("vector");
    const qemuLike = new Set(["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"]);
    const unobservable = gdbUnobservable(qemuLike, false);
    expect(unobservable).toContain("sregs.cs.dpl");
    expect(unobservable).not.toContain("sregs.cs.selector");
    expect(unobservable).not.toContain("sregs.fs.base");
    expect(unobservable).toContain("msrs.STAR");
    // A state wrong in every hidden field still "passes" the observable part, and the hidden
    // fields are listed as not compared rather than counted.
    const expected = doc.vector.expected;
    const wrong = { ...doc.state, rip: 0x200000n, rflags: 0x202n, cs: { ...doc.state.cs, selector: 0x2b, dpl: 0, l: 0 }, ss: { ...doc.state.ss, selector: 0x23, dpl: 0 }, star: 0n };
    const c = compareExpected(expected, wrong, { unobservable });
    expect(c.differences).toEqual([]);
    expect(c.notCompared).toContain("sregs.cs.dpl");
    expect(c.notCompared).toContain("msrs.STAR");
    expect(c.notCompared).toContain("memory");
    // Without the list the same state fails on those fields.
    expect(compareExpected(expected, wrong).differences.map((d) => d.field)).toContain("sregs.cs.dpl");
  });
});

/** A fake stub: QEMU's target description, registers in a `g` buffer, `s` adds the instruction
 *  length table's entry to RIP (HLT never comes back). */
class FakeStub {
  readonly server: Server;
  registers: Uint8Array = new Uint8Array(608);
  memory = new Map<bigint, number>();
  connections: Socket[] = [];
  constructor() {
    this.server = createServer((socket) => {
      this.connections.push(socket);
      let buffer = "";
      socket.on("data", (d: Buffer) => {
        buffer += d.toString("latin1");
        for (;;) {
          if (buffer.startsWith("\x03")) {
            // Ctrl-C: stop what is running.
            buffer = buffer.slice(1);
            socket.write(frame("T02thread:01;"));
            continue;
          }
          if (buffer.startsWith("+") || buffer.startsWith("-")) {
            buffer = buffer.slice(1);
            continue;
          }
          const m = /^\$([^#]*)#[0-9a-f]{2}/.exec(buffer);
          if (m === null) break;
          buffer = buffer.slice(m[0].length);
          socket.write("+");
          const reply = this.answer(m[1]!);
          if (reply !== null) socket.write(frame(reply));
        }
      });
    });
  }
  private reg(name: "rip"): bigint {
    return new DataView(this.registers.buffer).getBigUint64(128, true);
  }
  private answer(p: string): string | null {
    if (p.startsWith("qSupported")) return "PacketSize=1000;qXfer:features:read+";
    if (p.startsWith("qXfer:features:read:")) {
      const [annex, range] = p.slice("qXfer:features:read:".length).split(":") as [string, string];
      const offset = parseInt(range.split(",")[0]!, 16);
      const text = files[annex];
      return text === undefined ? "E00" : `l${text.slice(offset)}`;
    }
    if (p === "g") return Buffer.from(this.registers).toString("hex");
    if (p.startsWith("P")) {
      const [n, value] = p.slice(1).split("=") as [string, string];
      const offsets: Record<number, number> = { 0: 0, 16: 128, 17: 136 };
      const at = offsets[parseInt(n, 16)];
      if (at === undefined) return "E01";
      this.registers.set(Buffer.from(value, "hex"), at);
      return "OK";
    }
    if (p.startsWith("m")) {
      const [a, l] = p.slice(1).split(",") as [string, string];
      const out: string[] = [];
      for (let i = 0n; i < BigInt(parseInt(l, 16)); i++) out.push((this.memory.get(BigInt("0x" + a) + i) ?? 0x90).toString(16).padStart(2, "0"));
      return out.join("");
    }
    if (p === "s") {
      const rip = this.reg("rip");
      if (this.memory.get(rip) === 0xf4) return null; // halted: no stop reply until ^C
      new DataView(this.registers.buffer).setBigUint64(128, rip + 1n, true);
      return "T05thread:01;";
    }
    return "";
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    return (this.server.address() as { port: number }).port;
  }
  close(): void {
    for (const s of this.connections) s.destroy();
    this.server.close();
  }
}

describe("the bridge against a stub", () => {
  let stub: FakeStub | undefined;
  afterEach(() => stub?.close());

  it("sets what the stub exposes, steps it, reads it back, and stops at a HLT that never returns", async () => {
    stub = new FakeStub();
    // The state's EFLAGS and selectors as the stub holds them (it lets only RAX, RIP, EFLAGS be set).
    const doc = parseDocument(readFileSync(vectorPath("sysret64-basic"), "utf8"));
    if (doc.kind !== "vector") throw new Error("vector");
    const state = { ...doc.state, memory: new Map<number, Uint8Array>() };
    // Every register but RIP and EFLAGS already as the state has them (the bridge writes those two).
    const td = (await loadTargetDescription(async (annex) => files[annex] ?? null))!;
    const values: Record<string, bigint> = {
      rax: state.gpr[0]!, rcx: state.gpr[1]!, rdx: state.gpr[2]!, rbx: state.gpr[3]!, rsp: state.gpr[4]!, rbp: state.gpr[5]!,
      rsi: state.gpr[6]!, rdi: state.gpr[7]!, r8: state.gpr[8]!, r11: state.gpr[11]!,
      cs: BigInt(state.cs.selector), ss: BigInt(state.ss.selector), cr0: state.cr0, cr3: state.cr3, cr4: state.cr4, efer: state.efer,
    };
    for (const reg of td.registers) if (values[reg.name] !== undefined) stub.registers.set(registerBytes(reg, values[reg.name]!), reg.offset);
    stub.memory.set(state.rip + 2n, 0xf4);
    const port = await stub.listen();
    const engine = new GdbEngine({ target: { host: "127.0.0.1", port }, haltWaitMs: 50 });
    try {
      await engine.load(state, "intel");
      expect(engine.capabilities.name).toContain("i386:x86-64");
      expect(engine.capabilities.unobservable).toContain("memory*");
      expect(await engine.step()).toEqual({ kind: "retired", rip: state.rip, instruction: { bytes: Uint8Array.of(0x90), length: 1 } });
      expect((await engine.state()).rip).toBe(state.rip + 1n);
      expect(await engine.run(10)).toEqual({ reason: "hlt", steps: 2 });
      expect((await engine.state()).cpu.halted).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it("refuses a state whose registers the stub will not take", async () => {
    stub = new FakeStub();
    const port = await stub.listen();
    const doc = parseDocument(readFileSync(vectorPath("sysret64-basic"), "utf8"));
    if (doc.kind !== "vector") throw new Error("vector");
    const engine = new GdbEngine({ target: { host: "127.0.0.1", port } });
    try {
      // CS is 0 in the stub and cannot be written: the bridge says so instead of running.
      await expect(engine.load({ ...doc.state, memory: new Map() }, "intel")).rejects.toThrow(/cannot set rcx to 0x200000/);
    } finally {
      await engine.close();
    }
  });

  it("reports a stub that is not there as a start-up error at once", async () => {
    // A refused connection fails at once, with the refusal as its reason; retrying until the
    // connect timeout would end with "could not connect within 60000 ms" instead (after a minute).
    // The message shows which, whatever the machine's speed (no wall-clock bound).
    const engine = new GdbEngine({ target: { host: "127.0.0.1", port: 1 }, connectTimeoutMs: 60_000 });
    await expect(engine.load(parseDocument(readFileSync(vectorPath("sysret64-basic"), "utf8")).state, "intel")).rejects.toThrow(
      "gdb stub at 127.0.0.1:1: could not connect (connect ECONNREFUSED 127.0.0.1:1)",
    );
  });
});
