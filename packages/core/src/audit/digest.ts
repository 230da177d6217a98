// The signed digest: a list of the chain heads changed in a time range, the previous digest's hash
// and that range, canonically encoded and signed. A digest's heads are written as parts (NDJSON,
// one head a line) whose SHA-256 the digest lists, so that sealing streams any number of heads.
// Every digest links to the one before it; a digest altered, removed from the middle, reordered or
// signed with another key is detected here. The newest one deleted is not: that is for the store
// (S3 versioning and Object Lock) to prevent.
import { createHash } from "node:crypto";
import { canonicalJson } from "./values.js";
import { verifyDigestSignature } from "./signer.js";

export const DIGEST_FORMAT = 1;
export const DIGEST_TYPE = "sitelogix-audit-digest";
export const DIGEST_PREFIX = "digest-";

/** What a digest records about one chain head at sealing: the chain's count and newest hash. */
export interface SealedHead {
  entity: string;
  table: string;
  keys: Record<string, string>;
  count: number;
  lastHash: string;
  lastSequenceNumber: string;
  /** recordedAt of the chain's newest entry. */
  updatedAt: string;
  lastExpiresAt?: number;
}

export interface DigestPart {
  name: string;
  sha256: string;
  heads: number;
}

/** The signed content of a digest. */
export interface DigestBody {
  format: number;
  type: string;
  sequence: number;
  auditTable: string;
  /** Heads whose newest entry was recorded after `from` (exclusive; null: from the beginning) and at or before `to`. */
  range: { from: string | null; to: string };
  sealedAt: string;
  previous: { name: string; sha256: string } | null;
  heads: number;
  parts: DigestPart[];
  signer: { keyId: string; algorithm: string };
}

/** A digest as stored: its body and the signature of the body's canonical encoding (base64). */
export interface DigestFile {
  digest: DigestBody;
  signature: string;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");
export const digestName = (sequence: number) => `${DIGEST_PREFIX}${pad(sequence, 10)}.json`;
/**
 * A part's name: `attempt` (random, per seal) keeps a retry from colliding with the parts a failed
 * seal of the same sequence left behind, which a store never replaces (S3 Object Lock: nor deletes).
 */
export const partName = (sequence: number, attempt: string, segment: number, n: number) =>
  `heads-${pad(sequence, 10)}-${attempt}-${pad(segment, 2)}-${pad(n, 5)}.ndjson`;
export const isDigestName = (name: string) => /^digest-\d{10}\.json$/.test(name);

export const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
/** The hash of a digest's canonical encoding: what its signature covers, and how the next digest names it. */
export const digestHash = (body: DigestBody) => sha256Hex(canonicalJson(body));
/** The bytes a digest's signature covers: a short statement of its hash (KMS signs up to 4 KB raw). */
export const signedBytes = (body: DigestBody) => Buffer.from(`${DIGEST_TYPE}:${DIGEST_FORMAT}:${digestHash(body)}`);

/** One head's line in a part (canonical JSON). */
export const headLine = (head: SealedHead) => `${canonicalJson(head)}\n`;

export interface DigestProblem {
  digest: string;
  problem: string;
}

/** A digest read back, with whether its own signature and link hold. */
export interface CheckedDigest {
  name: string;
  body: DigestBody;
  sha256: string;
  /** Signature valid (the body is what the key holder signed). */
  authentic: boolean;
}

/**
 * Reads digests in order and checks each one's signature under `publicKeyPem`, its sequence, its
 * name and its link to the one before (previous hash, time ranges end to start). `fromGenesis`:
 * the first digest must be the trail's first (false for an export that starts later).
 */
export async function* checkDigests(
  digests: AsyncIterable<{ name: string; bytes: Uint8Array | undefined }>,
  publicKeyPem: string,
  problem: (p: DigestProblem) => void,
  options: { fromGenesis?: boolean; auditTable?: string } = {},
): AsyncGenerator<CheckedDigest> {
  let prev: CheckedDigest | undefined;
  for await (const { name, bytes } of digests) {
    const fail = (text: string) => problem({ digest: name, problem: text });
    let file: DigestFile;
    try {
      if (!bytes) throw new Error("missing");
      file = JSON.parse(Buffer.from(bytes).toString("utf8")) as DigestFile;
      if (file.digest?.type !== DIGEST_TYPE || typeof file.signature !== "string") throw new Error("not a digest");
    } catch (err) {
      fail(`digest unreadable (${(err as Error).message}): altered or replaced`);
      continue;
    }
    const body = file.digest;
    const authentic = verifyDigestSignature(
      body.signer?.algorithm,
      publicKeyPem,
      signedBytes(body),
      Buffer.from(file.signature, "base64"),
    );
    if (!authentic) fail("signature does not verify with the public key: digest altered or not signed by the key");
    const checked: CheckedDigest = { name, body, sha256: digestHash(body), authentic };
    if (name !== digestName(body.sequence)) fail(`holds digest ${body.sequence}: digests renamed or reordered`);
    if (options.auditTable !== undefined && body.auditTable !== options.auditTable)
      fail(`seals audit table ${body.auditTable}, not ${options.auditTable}`);
    if (prev) {
      if (body.sequence !== prev.body.sequence + 1)
        fail(`follows digest ${prev.body.sequence}: digest ${prev.body.sequence + 1} deleted, or digests reordered`);
      else if (body.previous?.sha256 !== prev.sha256 || body.previous?.name !== prev.name)
        fail(`does not link to ${prev.name}: the previous digest was altered or replaced`);
      if (body.range.from !== prev.body.range.to) fail(`its time range does not start where ${prev.name}'s ends`);
    } else if (options.fromGenesis !== false && (body.sequence !== 1 || body.previous !== null)) {
      fail(`the first digest found is number ${body.sequence}: earlier digests deleted`);
    }
    prev = checked;
    yield checked;
  }
}

/** The heads a digest's parts list, each part checked against the hash and count the digest records. */
export async function* partHeads(
  digest: CheckedDigest,
  read: (name: string) => Promise<Uint8Array | undefined>,
  problem: (p: DigestProblem) => void,
): AsyncGenerator<{ part: string; head: SealedHead }> {
  for (const part of digest.body.parts) {
    const bytes = await read(part.name);
    if (!bytes) {
      problem({ digest: digest.name, problem: `head list ${part.name} missing` });
      continue;
    }
    if (sha256Hex(bytes) !== part.sha256) {
      problem({
        digest: digest.name,
        problem: `head list ${part.name} altered: its SHA-256 differs from the digest's`,
      });
      continue;
    }
    const lines = Buffer.from(bytes).toString("utf8").split("\n").filter(Boolean);
    if (lines.length !== part.heads)
      problem({ digest: digest.name, problem: `head list ${part.name} has ${lines.length} of ${part.heads} heads` });
    for (const line of lines) yield { part: part.name, head: JSON.parse(line) as SealedHead };
  }
}
