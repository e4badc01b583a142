// The cases of a campaign: which family and which seed case number i gets, deterministically from
// the campaign's seed and family list, so that any worker, shard or replay regenerates exactly the
// same case from (seed, families, i).
import fc from "fast-check";
import type { Family } from "./families.ts";

/** A 32-bit seed for case `index` of a campaign seeded with `seed` (splitmix-style mixing). */
export function caseSeed(seed: number, index: number): number {
  let z = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) | 0;
}

export interface CaseId {
  readonly index: number;
  readonly family: Family;
  readonly seed: number;
}

export function caseId(families: readonly Family[], seed: number, index: number): CaseId {
  return { index, family: families[index % families.length]!, seed: caseSeed(seed, index) };
}

/** The generated value of a case: the first value fast-check draws with the case's seed (the same
 *  value `fc.check` starts from, so that fast-check's shrinking starts from it too). */
export function caseValue(id: CaseId): unknown {
  return fc.sample(id.family.arbitrary, { seed: id.seed, numRuns: 1 })[0];
}

/** Whether case `index` belongs to shard `shard` of `count` (1-based, as vitest's --shard). */
export function inShard(index: number, shard: { readonly index: number; readonly count: number }): boolean {
  return index % shard.count === shard.index - 1;
}

/** The `n`-th case index (0-based) of a shard. */
export function shardCase(n: number, shard: { readonly index: number; readonly count: number }): number {
  return n * shard.count + (shard.index - 1);
}
