// The block cache's budget bookkeeping (blocks/block-cache.ts): which pool slots hold blocks, how
// many blocks and compiled blocks are held, and how often the cache was emptied for being full.
// A module of its own with no imports, so that machine.ts can create it.

export interface BlockBudget {
  /** Pool slots that hold blocks. */
  readonly slots: Set<number>;
  /** Blocks held (all slots). */
  blocks: number;
  /** Compiled blocks held. */
  compiled: number;
  /** Times the cache was emptied because a cap was reached. */
  flushes: number;
}

export function newBlockBudget(): BlockBudget {
  return { slots: new Set<number>(), blocks: 0, compiled: 0, flushes: 0 };
}
