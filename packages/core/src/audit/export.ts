// Output: entries as JSON documents (the fields ENTRY_FIELDS shows, in its order), NDJSON, CSV or
// an aligned table, streamed; and exports to a file with its SHA-256 digest.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { entryFields, type AuditEntry, type EntryFieldName } from "./entry.js";
import { proofFileOf, writeProof, type ExportedChains, type ProofSource } from "./export-proof.js";
import { sealedPoints } from "./verify-digests.js";
import { writeWholeFile } from "./whole-file.js";

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
  /** The proof beside the export (when digests exist): its file, the digests, entries sealed and not. */
  proof?: { file: string; digests: number; sealedEntries: number; unsealedEntries: number };
}

/**
 * Writes entries to `file` (streamed, through a temporary file renamed at the end so that a failed
 * export never leaves a complete-looking file) and its SHA-256 beside it as `<file>.sha256`, in
 * `sha256sum` format: `sha256sum -c <file>.sha256` checks it. With `proof`, also the proof
 * (export-proof.ts) that lets `verifyExport` check the export offline; the digests it includes are
 * checked first, and an export refused if they are not intact.
 */
export async function exportEntries(
  entries: AsyncIterable<AuditEntry>,
  format: "ndjson" | "csv",
  file: string,
  proof?: ProofSource,
): Promise<ExportResult> {
  const problems: string[] = [];
  const sealed = proof
    ? await sealedPoints(proof.store, proof.publicKeyPem, proof.audit.tableName, (p) =>
        problems.push(`${p.digest}: ${p.problem}`),
      )
    : undefined;
  if (problems.length)
    throw new Error(`the signed digests are not intact (run \`audit verify\`): ${problems.slice(0, 5).join("; ")}`);
  const chains: ExportedChains = new Map();
  let sealedEntries = 0;
  const digest = createHash("sha256");
  let count = 0;
  let bytes = 0;
  const counted = async function* () {
    for await (const entry of entries) {
      count++;
      if (sealed) {
        const chain = chains.get(entry.entity);
        if (!chain) chains.set(entry.entity, { table: entry.table, keys: entry.keys, first: entry.position });
        else chain.first = Math.min(chain.first, entry.position);
        if (entry.position <= (sealed.points.get(entry.entity)?.count ?? 0)) sealedEntries++;
      }
      yield entry;
    }
  };
  await writeWholeFile(file, async (write) => {
    for await (const text of formatEntries(counted(), format)) {
      digest.update(text);
      bytes += Buffer.byteLength(text);
      await write(text);
    }
  });
  const sha256 = digest.digest("hex");
  const digestFile = `${file}.sha256`;
  await writeFile(digestFile, `${sha256}  ${basename(file)}\n`);
  const result: ExportResult = { file, digestFile, entries: count, bytes, sha256 };
  if (proof && sealed) {
    const proofFile = proofFileOf(file);
    const { digests } = await writeProof(proof, sealed, chains, proofFile);
    result.proof = { file: proofFile, digests, sealedEntries, unsealedEntries: count - sealedEntries };
  }
  return result;
}
