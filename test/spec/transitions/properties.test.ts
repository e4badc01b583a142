// Properties of delivery, IRET and the step loop (fast-check, fixed seeds).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS, RFLAGS_DEFINED, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { deliver } from "../../../spec/transitions/double-fault.ts";
import {
  exceptionEvent, externalEvent, NMI_EVENT, pushesErrorCode, softwareEvent, type InterruptEvent,
} from "../../../spec/transitions/exception-classes.ts";
import { iret } from "../../../spec/transitions/iret.ts";
import { step } from "../../../spec/step/step.ts";
import { HAS_ERROR_CODE } from "../../../spec/fault.ts";
import { kernelMachine, userMachine, withCode, KERNEL_SS, USER_SS } from "../../helpers/fixture.ts";
import { asMachine, withGate, withTss } from "./build-delivery.ts";

const RUNS = 60;

/** Events that need no DPL-3 gate: exceptions (with their error code), NMI, external, INT1. */
const hardwareEvent: fc.Arbitrary<InterruptEvent> = fc.oneof(
  fc.integer({ min: 0, max: 31 }).filter((v) => v !== 2).map((v) => exceptionEvent(fault("TEST", v, HAS_ERROR_CODE.has(v) ? 0x10 : undefined, v === 14 ? 0x1000n : undefined))),
  fc.constant(NMI_EVENT),
  fc.integer({ min: 32, max: 255 }).map(externalEvent),
  fc.constant(softwareEvent(1, "int1")),
);

/** Stack tops in supervisor memory (0x40000–0x1f0000), not necessarily aligned. */
const stackTop = fc.integer({ min: 0x40000, max: 0x1f0000 }).map(BigInt);

describe("delivery from ring 3 ends at CPL 0 on RSP0 or the IST stack, 16-byte aligned", () => {
  it("for any hardware event, gate IST and stack tops", () => {
    fc.assert(
      fc.property(hardwareEvent, fc.integer({ min: 0, max: 7 }), stackTop, fc.array(stackTop, { minLength: 7, maxLength: 7 }), (event, ist, rsp0, ists) => {
        let m0 = withGate(withTss(userMachine(), 4, rsp0), event.vector, { ist });
        ists.forEach((top, i) => (m0 = withTss(m0, 0x24 + 8 * i, top)));
        const m = asMachine(deliver(m0, event, INTEL));
        const top = ist === 0 ? rsp0 : ists[ist - 1]!;
        const frame = pushesErrorCode(event) ? 48n : 40n;
        expect(m.cs.selector & 3).toBe(0);
        expect(m.ss.selector).toBe(0);
        expect(m.gpr[RSP]).toBe((top & ~0xfn) - frame);
        expect((m.gpr[RSP]! + frame) % 16n).toBe(0n);
      }),
      { seed: 0x5eed01, numRuns: RUNS },
    );
  });
});

describe("IRETQ of a frame built by delivery restores the interrupted state", () => {
  const rflags = fc.bigInt({ min: 0n, max: RFLAGS_DEFINED }).map((f) => (f & RFLAGS_DEFINED & ~RFLAGS.VM) | 2n);
  const user = fc.record({
    rip: fc.bigInt({ min: 0x200000n, max: 0x3fffffn }),
    rsp: fc.bigInt({ min: 0x200100n, max: 0x3fffffn }),
    rflags,
    gprs: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 }),
    ring: fc.constantFrom(0, 3),
  });
  const event: fc.Arbitrary<InterruptEvent> = fc.oneof(
    fc.integer({ min: 32, max: 255 }).map(externalEvent),
    fc.constant(NMI_EVENT),
    fc.constantFrom(0, 6, 13, 14).map((v) => exceptionEvent(fault("TEST", v, 0, v === 14 ? 0x5000n : undefined))),
  );
  it("registers, flags, CS, SS and RSP come back exactly", () => {
    fc.assert(
      fc.property(user, event, fc.integer({ min: 0, max: 3 }), (u, e, ist) => {
        const kernel = u.ring === 0;
        const base = kernel ? kernelMachine() : userMachine();
        const rsp = kernel ? u.rsp - 0x180000n : u.rsp; // kernel stacks below 2 MiB
        const gpr = u.gprs.map((v, i) => (i === RSP ? rsp : v));
        const interrupted: Machine = withGate(
          { ...base, rip: kernel ? u.rip - 0x1f0000n : u.rip, rflags: u.rflags, gpr, ds: kernel ? KERNEL_SS : USER_SS, es: kernel ? KERNEL_SS : USER_SS },
          e.vector,
          { ist },
        );
        const entered = asMachine(deliver(interrupted, e, INTEL));
        // The handler drops the error code (add $8, %rsp), then IRETQ.
        const handler = pushesErrorCode(e) ? { ...entered, gpr: entered.gpr.map((v, i) => (i === RSP ? v + 8n : v)) } : entered;
        const back = asMachine(iret(handler, 8, INTEL));
        const image = pushesErrorCode(e) || e.source === "exception" ? u.rflags | RFLAGS.RF : u.rflags;
        expect(back.rip).toBe(interrupted.rip);
        expect(back.gpr).toEqual(interrupted.gpr);
        expect(back.rflags).toBe(image);
        expect(back.cs).toEqual(interrupted.cs);
        expect(back.ss).toEqual(interrupted.ss);
        expect(back.ds).toEqual(interrupted.ds);
        expect(back.cpu.nmiBlocked).toBe(false);
      }),
      { seed: 0x5eed02, numRuns: RUNS },
    );
  });
});

describe("the step function never throws", () => {
  it("on random bytes at random states it returns an event", () => {
    const kinds = new Set(["retired", "delivered", "halted", "shutdown", "io", "unsupported", "fault"]);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 15, maxLength: 15 }),
        fc.constantFrom(0, 3),
        fc.bigInt({ min: 0n, max: RFLAGS_DEFINED }),
        fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 }),
        fc.record({
          pendingIrq: fc.option(fc.integer({ min: 0, max: 255 })),
          pendingNmi: fc.boolean(),
          nmiBlocked: fc.boolean(),
          shadow: fc.constantFrom("none" as const, "sti" as const, "movss" as const),
          halted: fc.boolean(),
          pendingDebugTrap: fc.boolean(),
        }),
        fc.constantFrom<"idt" | "stop">("idt", "stop"),
        (bytes, ring, flags, gprs, cpu, delivery) => {
          const base = ring === 0 ? kernelMachine() : userMachine();
          const m0 = withCode({ ...base, gpr: gprs.map((v, i) => (i === RSP ? base.gpr[RSP]! : v)), rflags: (flags & ~RFLAGS.VM) | 2n, cpu: { ...base.cpu, ...cpu, shutdown: false } }, bytes);
          let m = m0;
          for (let i = 0; i < 4; i++) {
            const r = step(m, { delivery });
            expect(kinds.has(r.event.kind)).toBe(true);
            m = r.state;
          }
        },
      ),
      { seed: 0x5eed03, numRuns: RUNS * 2 },
    );
  });
});
