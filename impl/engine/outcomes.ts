// Numbering the engine/ modules share (this module imports nothing, so importers can copy the
// values into module-local consts: see consts.ts, "Using these constants").

/** Outcomes of one step (the engine turns them into EngineEvent kinds and EngineStop reasons). */
export const R_RETIRED = 0, R_DELIVERED = 1, R_HALTED = 2, R_IO = 3, R_SHUTDOWN = 4, R_UNSUP = 5, R_MEMLIMIT = 6;

/** Boundary decisions (engine/boundary.ts): nothing to deliver; halted with nothing deliverable
 *  (stop); deliver the single-step trap, the NMI, the IRQ. */
export const BOUNDARY_NONE = 0, BOUNDARY_HALTED = 1, BOUNDARY_DEBUG_TRAP = 2, BOUNDARY_NMI = 3, BOUNDARY_IRQ = 4;
