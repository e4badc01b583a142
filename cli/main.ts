// PLACEHOLDER: the CLI family replaces this file.
export async function main(argv: string[]): Promise<number> {
  console.error(`ringspec: not implemented yet (${argv.join(" ")})`);
  return 2;
}
