// Records the emulator outputs the unit tests parse (test/engines/{qemu,bochs,gdb}/samples) from
// the real QEMU and Bochs on this machine. Not a test: run it by hand after an emulator upgrade,
//   npx tsx test/engines/record-samples.ts
// and review the diff. The unit tests then check the parsers against what the emulators print.
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "../../contract/load.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { BochsEngine } from "../../engines/bochs/engine.ts";
import { STATE_PARAMS } from "../../engines/bochs/cpu-state.ts";
import { RspClient } from "../../engines/gdb/rsp.ts";

const here = dirname(fileURLToPath(import.meta.url));
const vectors = join(here, "../../conformance/vectors");

function vector(name: string) {
  const doc = parseDocument(readFileSync(join(vectors, `${name}.json`), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc;
}

// Internals the recorder reaches into (the engines keep them private).
interface QemuInternals {
  session: { logFile: string; gdb: RspClient; lastStream: Buffer | undefined };
}
interface BochsInternals {
  session: { logFile: string; debuggerClient: { command(c: string): Promise<string> } };
}

async function qemuSamples(): Promise<void> {
  const out = join(here, "qemu/samples");
  // The migration stream right after installing syscall-basic (CPL 3, SYSCALL MSRs set).
  {
    const v = vector("syscall-basic");
    const e = new QemuEngine();
    await e.load(v.state, v.profile);
    const internals = e as unknown as QemuInternals;
    // The stream load read to check the installed state.
    writeFileSync(join(out, "migration-syscall-basic.bin.gz"), gzipSync(internals.session.lastStream!));
    // The target description QEMU's gdbstub serves.
    const gdb = internals.session.gdb;
    writeFileSync(join(here, "gdb/samples/qemu-target.xml"), (await gdb.readFeatureFile("target.xml")) ?? "");
    writeFileSync(join(here, "gdb/samples/qemu-i386-64bit.xml"), (await gdb.readFeatureFile("i386-64bit.xml")) ?? "");
    await e.close();
  }
  // -d int logs of whole runs: exceptions, a software interrupt, #DF and a triple fault, an IRQ, an NMI.
  for (const name of ["gp-noncanonical-load", "df-contributory-np-then-gp", "irq-ring0-if1", "nmi-ring3", "int3-ring3-dpl3"]) {
    const v = vector(name);
    const e = new QemuEngine();
    await e.load(v.state, v.profile);
    await e.run(v.vector.limits.max_steps);
    writeFileSync(join(out, `int-log-${name}.txt`), readFileSync((e as unknown as QemuInternals).session.logFile, "latin1"));
    await e.close();
  }
}

async function bochsSamples(): Promise<void> {
  const out = join(here, "bochs/samples");
  {
    const v = vector("syscall-basic");
    const e = new BochsEngine();
    await e.load(v.state, v.profile);
    const d = (e as unknown as BochsInternals).session.debuggerClient;
    const registers = await d.command("r");
    const shows: string[] = [];
    for (const p of STATE_PARAMS) shows.push(await d.command(`show "${p}"`));
    const step = await d.command("s");
    const xp = await d.command("xp /512gx 0x8000");
    writeFileSync(join(out, "state-syscall-basic.json"), JSON.stringify({ registers, shows, step, xp }, null, 1) + "\n");
    await e.close();
  }
  for (const name of ["gp-noncanonical-load", "df-contributory-np-then-gp", "irq-ring0-if1", "nmi-ring3", "int3-ring3-dpl3", "mov-ss-shadow-single-step"]) {
    const v = vector(name);
    const e = new BochsEngine();
    await e.load(v.state, v.profile);
    const logFile = (e as unknown as BochsInternals).session.logFile;
    const start = readFileSync(logFile, "latin1").length;
    await e.run(v.vector.limits.max_steps);
    // The case's part of the log, without the page-walk noise.
    const text = readFileSync(logFile, "latin1").slice(start).split("\n").filter((l) => !/page walk|CPUID\[|PLUGIN|RFB|CMOS/.test(l)).join("\n");
    writeFileSync(join(out, `log-${name}.txt`), text);
    await e.close();
  }
}

await qemuSamples();
await bochsSamples();
console.log("samples recorded");
