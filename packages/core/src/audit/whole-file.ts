// A file an export writes is whole or absent: written through FILE.partial, renamed when complete,
// removed on failure (an auditor never mistakes a cut-off export for a complete one).
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";

/** Writes `file` from what `fill` writes, honouring back-pressure. */
export async function writeWholeFile(
  file: string,
  fill: (write: (text: string) => Promise<void>) => Promise<void>,
): Promise<void> {
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const write = async (text: string) => {
    if (!out.write(text)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  };
  try {
    await fill(write);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(partial, file);
  } catch (err) {
    out.destroy();
    await rm(partial, { force: true });
    throw err;
  }
}
