// Test helpers for stream-driven suites: waiting for an eventual condition, reading a table's stream.
import { sleep } from "@sitelogix/core";
import { compareSequenceNumbers, decodeRecord, type Clients, type DecodedRecord } from "@sitelogix/core";
import { readStream } from "@sitelogix/core/local-esm";

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every record currently in a table's stream, decoded, in stream order. */
export async function readStreamRecords(clients: Clients, tableName: string): Promise<DecodedRecord[]> {
  return (await readStream(clients, tableName))
    .map(decodeRecord)
    .sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber));
}
