// Sealing: one signed digest of every chain head changed since the previous digest. The heads are
// read by a parallel scan and written, as they come, in parts of PART_HEADS lines whose SHA-256 the
// digest lists: memory stays flat however many heads changed. The digest and its parts are written
// once (a store refuses to overwrite a name), so two sealers racing cannot replace each other's.
import { randomBytes } from "node:crypto";
import { paginateScan, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  checkDigests,
  DIGEST_FORMAT,
  DIGEST_PREFIX,
  DIGEST_TYPE,
  digestName,
  headLine,
  isDigestName,
  partName,
  sha256Hex,
  signedBytes,
  type DigestBody,
  type DigestFile,
  type DigestPart,
  type SealedHead,
} from "./digest.js";
import type { DigestStore } from "./digest-store.js";
import type { DigestSigner } from "./signer.js";
import { HEAD_SK } from "./store.js";

/** Heads per part. */
export const PART_HEADS = 5_000;
/** Parallel scan segments. */
export const SEAL_SEGMENTS = 4;
/**
 * A digest covers heads updated up to this long before sealing: an append in flight (its entry's
 * recordedAt taken, its transaction not yet landed) is sealed by the next digest instead of missed.
 */
export const SEAL_SETTLE_SECONDS = 30;

export interface SealDeps {
  doc: DynamoDBDocumentClient;
  auditTableName: string;
  signer: DigestSigner;
  store: DigestStore;
  now?: () => Date;
  /** Overrides SEAL_SETTLE_SECONDS (tests and `audit seal --settle`). */
  settleSeconds?: number;
}

export interface SealResult {
  /** The digest's name in the store. */
  digest: string;
  sequence: number;
  /** Number of chain heads it seals. */
  heads: number;
  parts: number;
  range: { from: string | null; to: string };
  previous: string | null;
  location: string;
  durationMs: number;
}

/** The newest digest in the store, its signature checked; undefined when there is none yet. */
async function latestDigest(store: DigestStore, signer: DigestSigner, auditTable: string) {
  let last: string | undefined;
  for await (const name of store.list(DIGEST_PREFIX)) if (isDigestName(name)) last = name;
  if (last === undefined) return undefined;
  const problems: string[] = [];
  const bytes = await store.get(last);
  const one = async function* () {
    yield { name: last, bytes };
  };
  const pem = await signer.publicKeyPem();
  for await (const checked of checkDigests(one(), pem, (p) => problems.push(p.problem), {
    fromGenesis: false,
    auditTable,
  })) {
    if (problems.length === 0) return checked;
  }
  throw new Error(`cannot seal after ${last} in ${store.location}: ${problems.join("; ")}`);
}

/** Seals the heads changed since the previous digest into a new signed digest. */
export async function sealAuditDigest(deps: SealDeps): Promise<SealResult> {
  const { doc, auditTableName, signer, store } = deps;
  const started = performance.now();
  const now = (deps.now ?? (() => new Date()))();
  const previous = await latestDigest(store, signer, auditTableName);
  const sequence = (previous?.body.sequence ?? 0) + 1;
  const from = previous?.body.range.to ?? null;
  const settled = new Date(now.getTime() - (deps.settleSeconds ?? SEAL_SETTLE_SECONDS) * 1000).toISOString();
  const to = from !== null && settled < from ? from : settled;

  const parts: DigestPart[] = [];
  let heads = 0;
  await Promise.all(
    Array.from({ length: SEAL_SEGMENTS }, async (_, segment) => {
      let lines: string[] = [];
      let n = 0;
      const attempt = randomBytes(4).toString("hex");
      const flush = async () => {
        if (lines.length === 0) return;
        const bytes = Buffer.from(lines.join(""), "utf8");
        const name = partName(sequence, attempt, segment, n++);
        const part = { name, sha256: sha256Hex(bytes), heads: lines.length };
        parts.push(part);
        lines = [];
        await store.put(name, bytes);
      };
      const pager = paginateScan(
        { client: doc },
        {
          TableName: auditTableName,
          Segment: segment,
          TotalSegments: SEAL_SEGMENTS,
          FilterExpression: "SK = :head AND updatedAt > :from AND updatedAt <= :to",
          ExpressionAttributeValues: { ":head": HEAD_SK, ":from": from ?? "0000", ":to": to },
          ConsistentRead: true,
        },
      );
      for await (const page of pager) {
        for (const item of page.Items ?? []) {
          lines.push(headLine(sealedHead(item)));
          heads++;
          if (lines.length >= PART_HEADS) await flush();
        }
      }
      await flush();
    }),
  );
  parts.sort((a, b) => (a.name < b.name ? -1 : 1));
  const body: DigestBody = {
    format: DIGEST_FORMAT,
    type: DIGEST_TYPE,
    sequence,
    auditTable: auditTableName,
    range: { from, to },
    sealedAt: now.toISOString(),
    previous: previous ? { name: previous.name, sha256: previous.sha256 } : null,
    heads,
    parts,
    signer: { keyId: signer.keyId, algorithm: signer.algorithm },
  };
  const file: DigestFile = {
    digest: body,
    signature: Buffer.from(await signer.sign(signedBytes(body))).toString("base64"),
  };
  const name = digestName(sequence);
  await store.put(name, Buffer.from(`${JSON.stringify(file, null, 2)}\n`, "utf8"));
  return {
    digest: name,
    sequence,
    heads,
    parts: parts.length,
    range: { from, to },
    previous: previous?.name ?? null,
    location: store.location,
    durationMs: Math.round(performance.now() - started),
  };
}

function sealedHead(item: Record<string, unknown>): SealedHead {
  return {
    entity: String(item.PK),
    table: String(item.table),
    keys: (item.keys ?? {}) as Record<string, string>,
    count: Number(String(item.count)),
    lastHash: String(item.lastHash),
    lastSequenceNumber: String(item.lastSequenceNumber),
    updatedAt: String(item.updatedAt),
    ...(item.lastExpiresAt !== undefined ? { lastExpiresAt: Number(String(item.lastExpiresAt)) } : {}),
  };
}
