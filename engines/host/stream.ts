// A byte stream (a socket, or a child's stdout with its stdin) as a buffer that protocol readers
// take from: they wait (with a deadline) until the bytes they need have arrived. Used by the QMP
// and GDB remote-protocol clients and the Bochs debugger driver.
import { connect, type Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { EngineError } from "./errors.ts";

/** Buffered input beyond this is a runaway peer (a guest printing without end, a broken stub). */
const MAX_BUFFERED = 64 << 20;

export class ByteStream {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private closedReason: string | undefined;
  private readonly input: Readable;
  private readonly output: Writable;
  private readonly destroy: () => void;

  constructor(
    channel: Socket | { readonly input: Readable; readonly output: Writable },
    readonly what: string,
  ) {
    if ("input" in channel) {
      this.input = channel.input;
      this.output = channel.output;
      this.destroy = () => {
        channel.output.destroy();
        channel.input.destroy();
      };
      channel.output.on("error", (e) => {
        this.closedReason ??= e.message;
        this.wake();
      });
    } else {
      this.input = channel;
      this.output = channel;
      this.destroy = () => channel.destroy();
    }
    this.input.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      if (this.buffer.length > MAX_BUFFERED) {
        this.closedReason = `more than ${MAX_BUFFERED >> 20} MiB of unread output`;
        this.destroy();
      }
      this.wake();
    });
    this.input.on("close", () => {
      this.closedReason ??= "connection closed";
      this.wake();
    });
    this.input.on("end", () => {
      this.closedReason ??= "connection closed";
      this.wake();
    });
    this.input.on("error", (e) => {
      this.closedReason = e.message;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Runs `take` on the buffered bytes until it returns a result (with the number of bytes it
   * used), waiting for more data in between; fails after `timeoutMs` or when the connection ends.
   */
  async take<T>(take: (bytes: Buffer) => { value: T; used: number } | undefined, timeoutMs: number, waitingFor: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = take(this.buffer);
      if (got !== undefined) {
        this.buffer = this.buffer.subarray(got.used);
        return got.value;
      }
      if (this.closedReason !== undefined) throw new EngineError("crash", `${this.what}: ${this.closedReason} while waiting for ${waitingFor}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new EngineError("timeout", `${this.what}: no ${waitingFor} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Bytes already received and not yet taken. */
  pending(): number {
    return this.buffer.length;
  }

  write(data: string | Uint8Array): void {
    if (this.closedReason !== undefined) throw new EngineError("crash", `${this.what}: ${this.closedReason}`);
    this.output.write(data);
  }

  close(): void {
    this.closedReason ??= "closed";
    this.destroy();
  }
}

/** Connects to a unix socket or HOST:PORT, retrying while the server starts, until `timeoutMs`. */
export async function connectWithRetry(
  target: { path: string } | { host: string; port: number },
  timeoutMs: number,
  what: string,
  stillStarting: () => boolean = () => true,
): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = "path" in target ? connect(target.path) : connect(target.port, target.host);
        socket.once("connect", () => {
          socket.removeAllListeners("error");
          socket.setNoDelay?.(true);
          resolve(socket);
        });
        socket.once("error", reject);
      });
    } catch (e) {
      last = (e as Error).message;
    }
    if (!stillStarting()) throw new EngineError("start", `${what}: could not connect (${last})`);
    if (Date.now() > deadline) throw new EngineError("start", `${what}: could not connect within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
