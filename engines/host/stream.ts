// A socket as a buffer that protocol readers take from: they wait (with a deadline) until the
// bytes they need have arrived. Used by the QMP and GDB remote-protocol clients.
import { connect, type Socket } from "node:net";
import { EngineError } from "./errors.ts";

export class ByteStream {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private closedReason: string | undefined;

  constructor(
    private readonly socket: Socket,
    readonly what: string,
  ) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on("close", () => {
      this.closedReason ??= "connection closed";
      this.wake();
    });
    socket.on("error", (e) => {
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
    this.socket.write(data);
  }

  close(): void {
    this.closedReason ??= "closed";
    this.socket.destroy();
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
