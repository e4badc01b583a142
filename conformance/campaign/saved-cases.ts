// `--save-cases DIR`: each minimal failing case as a `ringspec-vector/1` file. Its initial state is
// the case's; its expected section is engine A's result (the exit and every register, segment,
// control register and MSR, plus the memory it wrote); its provenance names the campaign, the
// seed and the case, so `ringspec vectors check` runs it on any engine.
import { hexToBytes, bytesToHex, hex } from "../../contract/hex.ts";
import type { VectorJsonIn } from "../../contract/schema.ts";
import type { CampaignResult } from "./result.ts";

type Outcome = CampaignResult["outcomes"][number];
type StateJsonLike = { regs: Record<string, string>; sregs: Record<string, unknown>; msrs: Record<string, string>; memory: { gpa: string; bytes: string }[]; cpu?: unknown };

function pages(regions: readonly { gpa: string; bytes: string }[]): Map<bigint, Uint8Array> {
  const out = new Map<bigint, Uint8Array>();
  for (const r of regions) {
    const bytes = hexToBytes(r.bytes);
    const gpa = BigInt(r.gpa);
    for (let i = 0; i < bytes.length; i++) {
      const a = gpa + BigInt(i);
      const n = a >> 12n;
      let page = out.get(n);
      if (page === undefined) out.set(n, (page = new Uint8Array(4096)));
      page[Number(a & 0xfffn)] = bytes[i]!;
    }
  }
  return out;
}

/** The runs of bytes that differ between two memories (what engine A wrote). */
function writtenRegions(initial: StateJsonLike["memory"], final: StateJsonLike["memory"]): { gpa: string; bytes: string }[] {
  const a = pages(initial);
  const b = pages(final);
  const out: { gpa: string; bytes: string }[] = [];
  const zero = new Uint8Array(4096);
  for (const n of [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) {
    const pa = a.get(n) ?? zero;
    const pb = b.get(n) ?? zero;
    let i = 0;
    while (i < 4096) {
      if (pa[i] === pb[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < 4096 && pa[j] !== pb[j]) j++;
      out.push({ gpa: hex(n * 4096n + BigInt(i)), bytes: bytesToHex(pb.subarray(i, j)) });
      i = j;
    }
  }
  return out;
}

export function caseFileName(o: Outcome): string {
  return `${(o.rule ?? "divergence").replace(/[^A-Za-z0-9_-]/g, "_")}-case${o.index}.json`;
}

/** The vector of a failing case, or why there is none (raises between steps, or engine A did not
 *  finish the run). */
export function caseVector(result: CampaignResult, o: Outcome): VectorJsonIn | string {
  const d = o.detail as
    | { initial: StateJsonLike; expected_state: StateJsonLike | null; expected_exit: "hlt" | "shutdown" | "limit" | null; expected_steps: number; max_steps: number; profile: "intel" | "amd"; raises: unknown[]; case: string; step: number }
    | undefined;
  if (d === undefined) return "not shrunk (only the first cases of each rule are)";
  if (d.raises.length > 0) return "the case raises events between steps, which a vector cannot say";
  if (d.expected_state === null || d.expected_exit === null) return `${result.engines.a} did not finish the case`;
  const e = d.expected_state;
  const { memory: _, cpu: __, ...state } = e;
  return {
    format: "ringspec-vector/1",
    name: `conform-${o.rule}-case${o.index}`,
    description: `Minimal case of a ringspec conform campaign: ${result.engines.b} parts ways with ${result.engines.a} at ${o.rule} (step ${d.step}): ${o.why ?? ""}. Case: ${d.case}`,
    provenance: {
      recorded_with: [`ringspec ${result.engines.a} (engine A of the campaign)`],
      agrees_with_sdm: false,
      notes: `ringspec conform: ${result.engines.a} vs ${result.engines.b}, seed ${result.campaign.seed}, families ${result.campaign.families.join(",")}, profile ${result.campaign.profile}, case ${o.index} (${o.family}), shrunk; expected = ${result.engines.a}'s result. Replay: ${o.replay ?? ""}`,
    },
    profile: d.profile,
    initial: d.initial as VectorJsonIn["initial"],
    limits: { max_steps: d.expected_exit === "limit" ? d.expected_steps : d.max_steps },
    expected: {
      exit: d.expected_exit,
      ...(state as Omit<VectorJsonIn["expected"], "exit">),
      memory: writtenRegions(d.initial.memory, e.memory),
    },
  };
}
