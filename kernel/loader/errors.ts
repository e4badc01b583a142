// A kernel image or loader description that cannot be used: one line naming the field.
export class LoaderError extends Error {
  override name = "LoaderError";
}
