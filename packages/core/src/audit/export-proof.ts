// The proof beside an export (<file>.proof.ndjson), so that a third party can check the export with
// the public key alone: every signed digest (their chain from the first), the head lists that seal
// the exported records, and each exported record's entries in full (values in event form, every
// hashed field) from its first exported entry up to the position the latest digest sealed. Hashing
// those entries again and following their links from the export up to the signed head proves each
// exported entry unaltered. Entries after a record's sealed position are exported but unsealed.
import type { DigestStore } from "./digest-store.js";
import { DIGEST_PREFIX, isDigestName } from "./digest.js";
import type { AuditEntry } from "./entry.js";
import { history } from "./query.js";
import type { AuditTable } from "./store.js";
import { eventForm, normalizeImage, type AttributeMap, type RawImage } from "./values.js";
import type { SealedPoints } from "./verify-digests.js";
import { writeWholeFile } from "./whole-file.js";

/** Where the proof comes from: the audit table, the digest store and the key that verifies it. */
export interface ProofSource {
  audit: AuditTable;
  store: DigestStore;
  publicKeyPem: () => Promise<string>;
}

export type ProofLine =
  | { kind: "digest"; name: string; text: string }
  | { kind: "part"; name: string; text: string }
  | { kind: "entry"; entry: Record<string, unknown> };

export const proofFileOf = (file: string) => `${file}.proof.ndjson`;

/** An entry with every field, its values in event form (base64 binaries): JSON that reads back exactly. */
export function proofEntry(entry: AuditEntry): Record<string, unknown> {
  return {
    ...entry,
    ...(entry.old ? { old: eventForm(entry.old) } : {}),
    ...(entry.new ? { new: eventForm(entry.new) } : {}),
  };
}

export function entryOfProof(json: Record<string, unknown>): AuditEntry {
  const { old, new: next, ...rest } = json;
  return {
    ...(rest as unknown as AuditEntry),
    ...(old ? { old: normalizeImage(old as RawImage) as AttributeMap } : {}),
    ...(next ? { new: normalizeImage(next as RawImage) as AttributeMap } : {}),
  };
}

/** The first exported position of each exported record. */
export type ExportedChains = Map<string, { table: string; keys: Record<string, string>; first: number }>;

/** Writes the proof of `exported` to `file` (through a temporary name); returns the number of digests. */
export async function writeProof(
  source: ProofSource,
  sealed: SealedPoints,
  exported: ExportedChains,
  file: string,
): Promise<{ digests: number }> {
  const text = async (name: string) => {
    const bytes = await source.store.get(name);
    if (!bytes) throw new Error(`${name} vanished from ${source.store.location} while exporting`);
    return Buffer.from(bytes).toString("utf8");
  };
  let digests = 0;
  await writeWholeFile(file, async (writeText) => {
    const write = (line: ProofLine) => writeText(`${JSON.stringify(line)}\n`);
    for await (const name of source.store.list(DIGEST_PREFIX)) {
      if (!isDigestName(name)) continue;
      digests++;
      await write({ kind: "digest", name, text: await text(name) });
    }
    const parts = new Set<string>();
    for (const entity of exported.keys()) {
      const part = sealed.points.get(entity)?.part;
      if (part) parts.add(part);
    }
    for (const name of [...parts].sort()) await write({ kind: "part", name, text: await text(name) });
    for (const [entity, chain] of exported) {
      const point = sealed.points.get(entity);
      if (!point || point.count < chain.first) continue;
      for await (const entry of history(source.audit, chain.table, chain.keys)) {
        if (entry.position >= chain.first && entry.position <= point.count)
          await write({ kind: "entry", entry: proofEntry(entry) });
      }
    }
  });
  return { digests };
}
