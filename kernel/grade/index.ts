// kernel/grade: the context-switch check of a kernel run and its reports (text, JSON,
// Gradescope results.json, JUnit XML), scored from a rubric.
export * from "./rubric.ts";
export * from "./check.ts";
export * from "./gradescope.ts";
