// `ringspec bench`: its options, the side-by-side table and the JSON figures, from reports built
// here (no figure is asserted: speed is measured by `npm run bench`, never in tests), and one short
// run with an emulator that is not there, which must cost a line, not the run.
import { describe, expect, it } from "vitest";
import { benchJson, figure, pairedRatio, parseBenchArguments, renderBenchReport, spread } from "../../cli/bench.ts";
import { main } from "../../cli/main.ts";
import { processCpuSeconds } from "../../engines/host/process.ts";

/** The report's type, through the renderer (tests never import bench/). */
type BenchReport = Parameters<typeof renderBenchReport>[0];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => (stdout += t), err: (l) => (stderr += l + "\n") });
  return { code, stdout, stderr };
}

describe("ringspec bench options", () => {
  it("defaults to impl and spec only, with the kernels", () => {
    expect(parseBenchArguments([])).toEqual({ json: false, against: [], programs: {}, kernels: true });
  });

  it("takes the emulators, their programs, rounds, seconds, loops and flags", () => {
    expect(
      parseBenchArguments(["--against", "qemu,bochs", "--qemu", "/opt/q", "--bochs", "/opt/b", "--rounds", "10", "--seconds", "0.5", "--loops", "syscall,int-loop", "--no-kernels", "--json"]),
    ).toEqual({
      json: true, against: ["qemu", "bochs"], programs: { qemu: "/opt/q", bochs: "/opt/b" }, kernels: false, rounds: 10, seconds: 0.5, loops: ["syscall", "int-loop"],
    });
    expect(parseBenchArguments(["--runs", "3"])).toMatchObject({ rounds: 3 });
    expect(parseBenchArguments(["--against", "bochs,bochs"])).toMatchObject({ against: ["bochs"] });
  });

  it("refuses bad values with a line naming the option", () => {
    const error = (argv: string[]) => {
      const r = parseBenchArguments(argv);
      return "error" in r ? r.error : "accepted";
    };
    expect(error(["--against", "qemu,vbox"])).toBe('--against: unknown emulator "vbox" (expected qemu, bochs)');
    expect(error(["--against"])).toBe("--against: expected a value");
    expect(error(["--against", "--json"])).toBe("--against: expected a value");
    expect(error(["--rounds", "0"])).toMatch(/^--rounds: expected a whole number from 1 to 1000/);
    expect(error(["--rounds", "2.5"])).toMatch(/^--rounds: /);
    expect(error(["--seconds", "-1"])).toMatch(/^--seconds: expected a number of seconds/);
    expect(error(["--loops", "syscall,fork"])).toBe('--loops: unknown loop "fork" (expected int-loop, syscall, interrupt, page-fault)');
    expect(error(["--qemu", "/opt/q"])).toBe("--qemu is only used with --against qemu");
    expect(error(["--fast"])).toBe('unknown option "--fast" (see ringspec bench --help)');
    expect(error(["now"])).toBe('unexpected argument "now"');
  });

  it("exits 2 with one line on bad options", async () => {
    const r = await run(["bench", "--against", "vbox"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('ringspec: bench: --against: unknown emulator "vbox" (expected qemu, bochs)\n');
    expect(r.stdout).toBe("");
  });
});

describe("ringspec bench figures", () => {
  it("spread: the median and range of the finite samples", () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, low: 1, high: 3, count: 3 });
    expect(spread([4, 1, Number.NaN, 2, 3])).toEqual({ median: 2.5, low: 1, high: 4, count: 4 });
    expect(spread([Number.NaN])).toBeUndefined();
  });

  it("ratios are taken round by round", () => {
    // Round 2 was slow for both: its pair still gives 2, where min/max would mix moments.
    expect(pairedRatio([10, 4, 12], [5, 2, 6])).toEqual({ median: 2, low: 2, high: 2, count: 3 });
    expect(pairedRatio([10, 4], undefined)).toBeUndefined();
    expect(pairedRatio([10, 4], [5, Number.NaN])).toEqual({ median: 2, low: 2, high: 2, count: 1 });
  });

  it("figures keep three significant digits", () => {
    expect([figure(2137.4), figure(77.04), figure(6.7), figure(0.53)]).toEqual(["2,137", "77.0", "6.70", "0.530"]);
  });

  const report: BenchReport = {
    rounds: 3,
    against: ["qemu", "bochs"],
    loops: [
      // int-loop: steps/s, shown in MIPS.
      { name: "int-loop", unit: "MIPS", stepsPerRound: 1, engines: { impl: { samples: [1.2e9, 1.3e9, 1.25e9] }, spec: { samples: [5e5, 5.3e5, 5.5e5] }, qemu: { samples: [2.4e9, 2.6e9, 2.5e9] }, bochs: { samples: [7.5e7, 8e7, 7.7e7] } } },
      // syscall: 21 steps per round trip; bochs failed on this loop only.
      { name: "syscall", unit: "round trips/s", stepsPerRound: 21, engines: { impl: { samples: [21e6 * 6.7, 21e6 * 6.5, 21e6 * 6.9] }, spec: { samples: [2.9e5, 3e5, 2.8e5] }, qemu: { samples: [21e6 * 14.8, 21e6 * 13, 21e6 * 15] }, bochs: { missing: "bochs: the free run stopped elsewhere" } } },
    ],
    missing: [],
    kernels: undefined,
    hostReference: 190,
    load: [1.5, 2.25],
  };

  it("renders the side-by-side table: each engine's median and range, the ratios, the notes", () => {
    const lines = renderBenchReport(report, "ringspec bench --against qemu,bochs --rounds 3");
    expect(lines[0]).toMatch(/^\| loop +\| impl +\| QEMU TCG +\| Bochs +\| impl\/QEMU +\| impl\/Bochs +\| spec \(M instr\/s\) +\| impl\/spec +\|$/);
    expect(lines[1]).toMatch(/^\|-+(\|-+){7}\|$/);
    const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim());
    expect(cells(lines[2]!)).toEqual(["int-loop", "1,250 MIPS (1,200–1,300)", "2,500 MIPS (2,400–2,600)", "77.0 MIPS (75.0–80.0)", "0.500 (0.500–0.500)", "16.2 (16.0–16.3)", "0.530 (0.500–0.550)", "2,400×"]);
    expect(cells(lines[3]!)).toEqual(["syscall", "6.70 M/s (6.50–6.90)", "14.8 M/s (13.0–15.0)", "—", "0.460 (0.453–0.500)", "—", "0.290 (0.280–0.300)", "485×"]);
    expect(lines).toContain("bochs on syscall: not measured — bochs: the free run stopped elsewhere");
    expect(lines.some((l) => l.startsWith("Medians of 3 interleaved rounds"))).toBe(true);
    expect(lines).toContain("Command: ringspec bench --against qemu,bochs --rounds 3");
    expect(lines.join("\n")).toMatch(/Load average 1\.5 → 2\.3/);
  });

  it("prints an emulator that could not run as its own line, and its columns empty", () => {
    const lines = renderBenchReport({ ...report, against: ["qemu"], loops: [{ ...report.loops[0]!, engines: { impl: report.loops[0]!.engines.impl! } }], missing: ["qemu: not measured — qemu-system-x86_64: not found"] }, "ringspec bench");
    expect(lines[2]!.split("|").map((c) => c.trim())).toEqual(["", "int-loop", "1,250 MIPS (1,200–1,300)", "—", "—", "—", "—", ""]);
    expect(lines).toContain("qemu: not measured — qemu-system-x86_64: not found");
  });

  it("prints each kernel's MIPS on impl and spec with their range, and impl's syscalls and switches per second", () => {
    const kernels = [
      { name: "c", impl: 3.5, spec: 0.25, implRange: [3.1, 3.9] as const, specRange: [0.24, 0.26] as const, syscallsPerSecond: 490.4, contextSwitchesPerSecond: 192.7, counts: { instructions: 631973, syscalls: 89, contextSwitches: 35 } },
      { name: "demo", impl: 0.4, spec: "stops unsupported at 10000 (no)", syscallsPerSecond: 927, contextSwitchesPerSecond: 454.5, counts: { instructions: 22055, syscalls: 51, contextSwitches: 25 } },
    ];
    const lines = renderBenchReport({ ...report, kernels }, "ringspec bench");
    const at = lines.findIndex((l) => l.startsWith("kernel "));
    expect(lines[at]!.split(/ {2,}/)).toEqual(["kernel", "impl", "spec", "impl syscalls/s", "impl switches/s", "run (impl)"]);
    expect(lines[at + 1]!.split(/ {2,}/)).toEqual(["c", "3.50 MIPS (3.10–3.90)", "0.250 MIPS (0.240–0.260)", "490", "193", "631973 instructions, 89 syscalls, 35 context switches to the exit"]);
    expect(lines[at + 2]!.split(/ {2,}/)).toEqual(["demo", "0.400 MIPS", "—", "927", "455", "22055 instructions, 51 syscalls, 25 context switches to the exit"]);
    expect(lines[at + 3]!.trim()).toBe("spec: stops unsupported at 10000 (no)");
  });

  it("names every figure in JSON, in the loop's unit", () => {
    const json = benchJson(report);
    expect(json["impl.int-loop"]).toBeCloseTo(1250);
    expect(json["qemu.syscall"]).toBeCloseTo(14.8e6);
    expect(json["qemu.syscall.low"]).toBeCloseTo(13e6);
    expect(json["spec.syscall.instructions_per_s"]).toBe(2.9e5);
    expect(json["ratio.qemu.int-loop"]).toBeCloseTo(0.5);
    expect(json["ratio.int-loop"]).toBeCloseTo(2400);
    expect(json["bochs.syscall"]).toBeUndefined();
    expect(json["host-reference"]).toBe(190);
  });
});

describe("ringspec bench run", () => {
  it("an emulator that is not installed costs one line; impl and spec are still measured", async () => {
    const r = await run(["bench", "--against", "qemu", "--qemu", "/nonexistent/qemu", "--loops", "int-loop", "--rounds", "1", "--seconds", "0.02", "--no-kernels"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("qemu: not measured — /nonexistent/qemu: not found");
    const row = r.stdout.split("\n").find((l) => l.startsWith("| int-loop"))!;
    expect(row.split("|").map((c) => c.trim()).slice(2, 5)).toEqual([expect.stringMatching(/^[\d,.]+ MIPS$/), "—", "—"]);
    expect(r.stderr).toContain("bench: round 1/1");
  });

  it("reads an emulator process's CPU time from /proc (none for a process that is not there)", () => {
    const own = processCpuSeconds(process.pid);
    expect(own).toBeTypeOf("number");
    expect(own).toBeGreaterThan(0);
    expect(processCpuSeconds(2 ** 22 + 12345)).toBeUndefined();
    expect(processCpuSeconds(undefined)).toBeUndefined();
  });
});
