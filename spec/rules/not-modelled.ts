// Digest rule IDs (§2–§22) that the spec does not implement as a check or an update, each with
// the reason. The rule-coverage report counts these as accounted for; everything else in the
// digest must be registered by a family and named in a test.

export const NOT_MODELLED: Readonly<Record<string, string>> = {
  // Filled in as the families land.
  // System instructions (spec/transitions/):
  "CLI-01": "real-address mode: outside the model (IA-32e mode only)",
  "STI-01": "real-address mode: outside the model (IA-32e mode only)",
  "MSR-09": "WRMSR is serializing: no architectural effect in a model without caches, TLB or speculation",
  "SWAPGS-04": "a note on how kernels use SWAPGS (no memory operand, not serializing): nothing to check",
  "SWAPGS-05": "an OS convention (when an entry path swaps GS); hardware never swaps GS on delivery or IRET",
  "SWAPGS-06": "an OS convention (SWAPGS as the last GS-relative action of an exit path)",
  // Event delivery (spec/transitions/deliver.ts):
  "SMAP-05": "an OS convention (CLAC on every entry, AC in FMASK); the machine side is DELIVER-20 (delivery keeps AC) and FLAGS-02 (POPF sets AC)",
  "IRETQ-18": "IRET is serializing: no architectural effect in a model without caches, TLB or speculation",
};
