// QEMU's `-d int` log: one line per delivery attempt (`     3: v=0d e=0402 i=0 cpl=3 IP=...`),
// preceded by `check_exception old: ... new ...` for exceptions and `Servicing hardware INT=0x21`
// for external interrupts; a `check_exception` with no delivery after it is the triple fault.
// The engine reads the lines a step appended and turns them into that step's event.
import type { DeliverySource } from "../../contract/engine.ts";
import { EngineError } from "../host/errors.ts";

export type IntLogEntry =
  | { readonly kind: "exception"; readonly old: number; readonly vector: number }
  | { readonly kind: "hardware"; readonly vector: number }
  | {
      readonly kind: "delivery";
      readonly vector: number;
      readonly errorCode: number;
      /** i=1: INT n, INT3, INTO (and whatever else QEMU counts as a software interrupt). */
      readonly software: boolean;
      readonly cpl: number;
      readonly rip: bigint;
    }
  | { readonly kind: "smm"; readonly what: "enter" | "after RSM" };

const DELIVERY = /^\s*\d+: v=([0-9a-f]{2}) e=([0-9a-f]{4}) i=([01]) cpl=([0-3]) IP=[0-9a-f]{4}:([0-9a-f]{1,16}) pc=[0-9a-f]+ SP=[0-9a-f]{4}:[0-9a-f]+/;
const EXCEPTION = /^check_exception old: 0x([0-9a-f]+) new 0x([0-9a-f]+)$/;
const HARDWARE = /^Servicing hardware INT=0x([0-9a-f]{1,2})$/;
const SMM = /^SMM: (enter|after RSM)$/;

/** The entries in `text` (complete lines only; register dumps and other lines are skipped). */
export function parseIntLog(text: string): IntLogEntry[] {
  const out: IntLogEntry[] = [];
  for (const line of text.split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = DELIVERY.exec(line)) !== null) {
      out.push({
        kind: "delivery",
        vector: parseInt(m[1]!, 16),
        errorCode: parseInt(m[2]!, 16),
        software: m[3] === "1",
        cpl: Number(m[4]),
        rip: BigInt("0x" + m[5]!),
      });
    } else if ((m = EXCEPTION.exec(line)) !== null) {
      const old = parseInt(m[1]!, 16);
      out.push({ kind: "exception", old: old === 0xffffffff ? -1 : old, vector: parseInt(m[2]!, 16) });
    } else if ((m = HARDWARE.exec(line)) !== null) {
      out.push({ kind: "hardware", vector: parseInt(m[1]!, 16) });
    } else if ((m = SMM.exec(line)) !== null) {
      out.push({ kind: "smm", what: m[1] as "enter" | "after RSM" });
    }
  }
  return out;
}

/** Exceptions that push an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP). */
const WITH_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

export interface StepDeliveries {
  /** The event finally delivered in the step, if any. */
  readonly delivered?: { readonly vector: number; readonly errorCode: number | undefined; readonly source: DeliverySource };
  /** An exception was raised and nothing was delivered after it: the triple fault. */
  readonly tripleFault: boolean;
}

/** What one step's log entries mean: the last delivery (after any #DF escalation), or a triple fault. */
export function summarizeStep(entries: readonly IntLogEntry[]): StepDeliveries {
  let delivered: StepDeliveries["delivered"];
  let pending: "exception" | "external" | undefined;
  let exceptionAfterLastDelivery = false;
  for (const e of entries) {
    switch (e.kind) {
      case "exception":
        pending = "exception";
        exceptionAfterLastDelivery = true;
        break;
      case "hardware":
        pending = "external";
        break;
      case "delivery": {
        const source: DeliverySource = e.software ? "software" : pending === "exception" ? "exception" : pending === "external" ? "external" : e.vector === 2 ? "nmi" : "external";
        delivered = { vector: e.vector, errorCode: source === "exception" && WITH_ERROR_CODE.has(e.vector) ? e.errorCode : undefined, source };
        pending = undefined;
        exceptionAfterLastDelivery = false;
        break;
      }
      case "smm":
        throw new EngineError("protocol", `QEMU log: SMM ${e.what} while running the case`);
    }
  }
  return { ...(delivered === undefined ? {} : { delivered }), tripleFault: exceptionAfterLastDelivery };
}
