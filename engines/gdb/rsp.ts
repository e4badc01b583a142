// A client for the GDB remote serial protocol (the "gdbstub" of QEMU and other emulators):
// packets `$payload#checksum`, acknowledgements until no-ack mode, run-length decoding, escapes,
// stop replies, and the commands the engines use (registers, memory, single-step, breakpoints,
// target description). Every reply is checked; a malformed one is an EngineError("protocol").
import { z } from "zod";
import { ByteStream, connectWithRetry } from "../host/stream.ts";
import { EngineError } from "../host/errors.ts";

export type RspTarget = { readonly path: string } | { readonly host: string; readonly port: number };

/** A stop reply: why the target stopped. */
export type StopReply =
  | { readonly kind: "signal"; readonly signal: number; readonly info: ReadonlyMap<string, string> }
  | { readonly kind: "exited"; readonly code: number }
  | { readonly kind: "terminated"; readonly signal: number };

/** GDB signal numbers that matter here. */
export const SIGNAL = { INT: 2, TRAP: 5 } as const;

function checksum(payload: Buffer | string): number {
  const bytes = typeof payload === "string" ? Buffer.from(payload, "latin1") : payload;
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return sum;
}

/** `$`, `#`, `}` and `*` are escaped as `}` followed by the byte XOR 0x20. */
export function escapePayload(payload: string): string {
  return payload.replace(/[$#}*]/g, (c) => "}" + String.fromCharCode(c.charCodeAt(0) ^ 0x20));
}

/** Undoes escapes and run-length encoding (`X*n`: X repeated n − 29 more times). */
export function decodePayload(raw: Buffer): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x7d) {
      i++;
      out += String.fromCharCode(raw[i]! ^ 0x20);
    } else if (c === 0x2a) {
      const count = raw[++i]! - 29;
      const last = out[out.length - 1];
      if (last === undefined || count < 0) throw new EngineError("protocol", "gdb stub: run-length encoding with nothing to repeat");
      out += last.repeat(count);
    } else out += String.fromCharCode(c);
  }
  return out;
}

/** One framed packet from the start of `bytes` (after any acks), or undefined if incomplete. */
export function takePacket(bytes: Buffer): { value: { payload: string } | { ack: "+" | "-" }; used: number } | undefined {
  if (bytes.length === 0) return undefined;
  const first = bytes[0]!;
  if (first === 0x2b || first === 0x2d) return { value: { ack: first === 0x2b ? "+" : "-" }, used: 1 };
  if (first !== 0x24 && first !== 0x25) {
    // Noise between packets (some stubs send a stray byte): skip it.
    return { value: { ack: "+" }, used: 1 };
  }
  const hash = bytes.indexOf(0x23, 1);
  if (hash === -1 || bytes.length < hash + 3) return undefined;
  const raw = bytes.subarray(1, hash);
  const sum = parseInt(bytes.subarray(hash + 1, hash + 3).toString("latin1"), 16);
  if (sum !== checksum(raw)) throw new EngineError("protocol", `gdb stub: packet with a bad checksum (${bytes.subarray(0, Math.min(hash + 3, 60)).toString("latin1")})`);
  return { value: { payload: decodePayload(raw) }, used: hash + 3 };
}

const StopInfoKey = z.string().regex(/^[0-9a-zA-Z_]+$/);

/** Parses `T05thread:01;06:...;`, `S05`, `W00`, `X09`; undefined if `payload` is not a stop reply. */
export function parseStopReply(payload: string): StopReply | undefined {
  const kind = payload[0];
  if (kind === "S" || kind === "T") {
    const signal = parseInt(payload.slice(1, 3), 16);
    if (!Number.isInteger(signal)) throw new EngineError("protocol", `gdb stub: bad stop reply ${JSON.stringify(payload)}`);
    const info = new Map<string, string>();
    if (kind === "T") {
      for (const part of payload.slice(3).split(";")) {
        if (part === "") continue;
        const colon = part.indexOf(":");
        const key = part.slice(0, colon);
        if (colon === -1 || !StopInfoKey.safeParse(key).success) throw new EngineError("protocol", `gdb stub: bad stop reply field ${JSON.stringify(part)}`);
        info.set(key.toLowerCase(), part.slice(colon + 1));
      }
    }
    return { kind: "signal", signal, info };
  }
  if (kind === "W" || kind === "X") {
    const n = parseInt(payload.slice(1, 3), 16);
    if (!Number.isInteger(n)) throw new EngineError("protocol", `gdb stub: bad stop reply ${JSON.stringify(payload)}`);
    return kind === "W" ? { kind: "exited", code: n } : { kind: "terminated", signal: n };
  }
  return undefined;
}

const HexBytes = z.string().regex(/^([0-9a-fA-F]{2})*$/);

export function hexToBuffer(text: string, what: string): Buffer {
  if (!HexBytes.safeParse(text).success) throw new EngineError("protocol", `gdb stub: ${what}: expected hex bytes, got ${JSON.stringify(text.slice(0, 40))}`);
  return Buffer.from(text, "hex");
}

export class RspClient {
  private noAck = false;
  /** Features from qSupported (`PacketSize`, `qXfer:features:read`, ...). */
  readonly features = new Map<string, string>();

  private constructor(
    private readonly stream: ByteStream,
    readonly timeoutMs: number,
  ) {}

  static async connect(target: RspTarget, options: { timeoutMs: number; stillStarting?: () => boolean }): Promise<RspClient> {
    const what = "path" in target ? `gdb stub at ${target.path}` : `gdb stub at ${target.host}:${target.port}`;
    const socket = await connectWithRetry(target, options.timeoutMs, what, options.stillStarting);
    const client = new RspClient(new ByteStream(socket, what), options.timeoutMs);
    await client.handshake();
    return client;
  }

  private async handshake(): Promise<void> {
    const reply = await this.command("qSupported:multiprocess-;swbreak+;hwbreak+;qRelocInsn-;xmlRegisters=i386");
    for (const item of reply.split(";")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      if (eq !== -1) this.features.set(item.slice(0, eq), item.slice(eq + 1));
      else this.features.set(item.slice(0, -1), item.slice(-1));
    }
    if (this.features.get("QStartNoAckMode") === "+") {
      const ok = await this.command("QStartNoAckMode");
      if (ok === "OK") this.noAck = true;
    }
  }

  private send(payload: string): void {
    const escaped = escapePayload(payload);
    this.stream.write(`$${escaped}#${checksum(escaped).toString(16).padStart(2, "0")}`);
  }

  /** The next packet, acknowledging it; acks are skipped. */
  private async nextPacket(timeoutMs: number, waitingFor: string): Promise<string> {
    for (;;) {
      const item = await this.stream.take(takePacket, timeoutMs, waitingFor);
      if ("ack" in item) {
        if (item.ack === "-") throw new EngineError("protocol", `gdb stub: rejected a packet (${waitingFor})`);
        continue;
      }
      if (!this.noAck) this.stream.write("+");
      return item.payload;
    }
  }

  /** Sends a packet and returns the reply payload. */
  async command(payload: string, timeoutMs = this.timeoutMs): Promise<string> {
    this.send(payload);
    const what = `a reply to ${payload.slice(0, 24)}`;
    for (;;) {
      const reply = await this.nextPacket(timeoutMs, what);
      // Console output can come before the reply, and so can a stale stop reply (a step that
      // finished just as it was interrupted); no command here answers with one.
      if (reply.startsWith("O") && reply !== "OK" && /^O([0-9a-fA-F]{2})+$/.test(reply)) continue;
      if (/^[TS][0-9a-fA-F]{2}/.test(reply) && !/^[0-9a-fA-F]*$/.test(reply)) continue;
      return reply;
    }
  }

  /** A command that must answer OK. */
  async ok(payload: string): Promise<void> {
    const reply = await this.command(payload);
    if (reply !== "OK") throw new EngineError("protocol", `gdb stub: ${payload.split(/[:;,]/)[0]} answered ${JSON.stringify(reply.slice(0, 40))}`);
  }

  /** Sends a resume packet (`s`, `c`, `vCont;...`) and waits for the stop reply. */
  async resume(payload: string, timeoutMs: number): Promise<StopReply> {
    this.send(payload);
    return this.waitStop(timeoutMs);
  }

  /** Waits for a stop reply (after resume or interrupt). */
  async waitStop(timeoutMs: number): Promise<StopReply> {
    for (;;) {
      const reply = await this.nextPacket(timeoutMs, "a stop reply");
      if (/^O([0-9a-fA-F]{2})+$/.test(reply)) continue;
      const stop = parseStopReply(reply);
      if (stop === undefined) throw new EngineError("protocol", `gdb stub: expected a stop reply, got ${JSON.stringify(reply.slice(0, 40))}`);
      return stop;
    }
  }

  /** Ctrl-C: asks a running target to stop (the stop reply follows). */
  interrupt(): void {
    this.stream.write(Buffer.of(0x03));
  }

  async readRegisters(): Promise<Buffer> {
    const reply = await this.command("g");
    if (reply.startsWith("E")) throw new EngineError("protocol", `gdb stub: reading registers failed (${reply})`);
    return hexToBuffer(reply, "g reply");
  }

  async writeRegister(number: number, bytes: Uint8Array): Promise<void> {
    await this.ok(`P${number.toString(16)}=${Buffer.from(bytes).toString("hex")}`);
  }

  /** Reads guest memory at a (virtual, as the stub sees it) address; null if the stub cannot. */
  async readMemory(address: bigint, length: number): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    const max = 0x800;
    for (let done = 0; done < length; ) {
      const n = Math.min(max, length - done);
      const reply = await this.command(`m${(address + BigInt(done)).toString(16)},${n.toString(16)}`);
      if (reply.startsWith("E") && reply.length === 3) return null;
      const bytes = hexToBuffer(reply, "m reply");
      if (bytes.length === 0) return null;
      chunks.push(bytes);
      done += bytes.length;
    }
    return Buffer.concat(chunks);
  }

  async writeMemory(address: bigint, bytes: Uint8Array): Promise<void> {
    const max = 0x400;
    for (let done = 0; done < bytes.length; done += max) {
      const part = bytes.subarray(done, done + max);
      await this.ok(`M${(address + BigInt(done)).toString(16)},${part.length.toString(16)}:${Buffer.from(part).toString("hex")}`);
    }
  }

  /** `Z0`/`z0` software breakpoints (emulators implement them without writing guest memory). */
  async setBreakpoint(address: bigint): Promise<void> {
    await this.ok(`Z0,${address.toString(16)},1`);
  }
  async clearBreakpoint(address: bigint): Promise<void> {
    await this.ok(`z0,${address.toString(16)},1`);
  }

  /** A file of the target description (`target.xml` and what it includes); null if unsupported. */
  async readFeatureFile(annex: string): Promise<string | null> {
    if (this.features.get("qXfer:features:read") !== "+") return null;
    let text = "";
    for (;;) {
      const reply = await this.command(`qXfer:features:read:${annex}:${text.length.toString(16)},fff`);
      if (reply.startsWith("E")) return null;
      const marker = reply[0];
      if (marker !== "m" && marker !== "l") throw new EngineError("protocol", `gdb stub: bad qXfer reply ${JSON.stringify(reply.slice(0, 40))}`);
      text += reply.slice(1);
      if (marker === "l") return text;
    }
  }

  /** Ends the session (detach, then close the connection). */
  async close(): Promise<void> {
    try {
      this.send("D");
      await this.stream.take(takePacket, 200, "detach reply").catch(() => undefined);
    } catch {
      // the target may be gone already
    }
    this.stream.close();
  }

  /** Closes without talking to the target. */
  drop(): void {
    this.stream.close();
  }
}
