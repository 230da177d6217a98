// Output: entries as JSON documents (the fields ENTRY_FIELDS shows, in its order), NDJSON, CSV or
// an aligned table, streamed; and exports to a file with its SHA-256 digest.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { entryFields, type AuditEntry, type EntryFieldName } from "./entry.js";

export type EntryFormat = "table" | "json" | "ndjson" | "csv";

/** The entry as a JSON document: the fields of the audit contract, then the chain fields. */
export function entryJson(entry: AuditEntry): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  for (const [name, field] of entryFields()) {
    const value = entry[name];
    if (field.json && value !== undefined) json[name] = field.json(value);
  }
  return json;
}

/** The CSV columns, in the order of the CSV contract (fields of the JSON document). */
const CSV_COLUMNS: readonly EntryFieldName[] = [
  "at",
  "table",
  "keys",
  "eventName",
  "actor",
  "actorBasis",
  "changed",
  "old",
  "new",
  "sequenceNumber",
  "eventId",
  "position",
  "hash",
  "prevHash",
];

const csvField = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

function csvRow(entry: AuditEntry): string {
  const json = entryJson(entry);
  const cell = (column: EntryFieldName) => {
    const v = json[column];
    if (column === "changed") return entry.changed.join(" ");
    return v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
  };
  return `${CSV_COLUMNS.map((c) => csvField(cell(c))).join(",")}\r\n`;
}

const TABLE_WIDTHS = { at: 24, table: 18, key: 40, event: 6, actor: 28 } as const;

function tableRow(cells: string[]): string {
  const widths = Object.values(TABLE_WIDTHS);
  return `${cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join("  ")}\n`;
}

/**
 * The text of a stream of entries in one format, chunk by chunk (constant memory): `json` is one
 * array, `ndjson` one entry per line, `csv` RFC 4180 with a header, `table` aligned columns for
 * reading (attribute names only, no values).
 */
export async function* formatEntries(entries: AsyncIterable<AuditEntry>, format: EntryFormat): AsyncGenerator<string> {
  if (format === "csv") yield `${CSV_COLUMNS.join(",")}\r\n`;
  if (format === "table") yield tableRow(["AT", "TABLE", "KEY", "EVENT", "ACTOR", "CHANGED"]);
  if (format === "json") yield "[";
  let first = true;
  for await (const entry of entries) {
    switch (format) {
      case "json":
        yield `${first ? "\n" : ",\n"}${JSON.stringify(entryJson(entry))}`;
        break;
      case "ndjson":
        yield `${JSON.stringify(entryJson(entry))}\n`;
        break;
      case "csv":
        yield csvRow(entry);
        break;
      case "table":
        yield tableRow([
          entry.at,
          entry.table,
          Object.values(entry.keys).join(" / "),
          entry.eventName,
          entry.actor,
          entry.changed.join(", "),
        ]);
        break;
    }
    first = false;
  }
  if (format === "json") yield first ? "]\n" : "\n]\n";
}

export interface ExportResult {
  file: string;
  digestFile: string;
  entries: number;
  bytes: number;
  sha256: string;
}

/**
 * Writes entries to `file` (streamed, through a temporary file renamed at the end so that a failed
 * export never leaves a complete-looking file) and its SHA-256 beside it as `<file>.sha256`, in
 * `sha256sum` format: `sha256sum -c <file>.sha256` checks it.
 */
export async function exportEntries(
  entries: AsyncIterable<AuditEntry>,
  format: "ndjson" | "csv",
  file: string,
): Promise<ExportResult> {
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const digest = createHash("sha256");
  let count = 0;
  let bytes = 0;
  const counted = async function* () {
    for await (const entry of entries) {
      count++;
      yield entry;
    }
  };
  try {
    for await (const text of formatEntries(counted(), format)) {
      digest.update(text);
      bytes += Buffer.byteLength(text);
      if (!out.write(text)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(partial, file);
  } catch (err) {
    out.destroy();
    await rm(partial, { force: true });
    throw err;
  }
  const sha256 = digest.digest("hex");
  const digestFile = `${file}.sha256`;
  await writeFile(digestFile, `${sha256}  ${basename(file)}\n`);
  return { file, digestFile, entries: count, bytes, sha256 };
}
