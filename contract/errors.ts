// The error of every refused input document: one line naming the JSON path of the bad field.
export class FormatError extends Error {
  override name = "FormatError";
}
