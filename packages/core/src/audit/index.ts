// The audit trail: one immutable, hash-chained entry per stream record of the SiteLogix tables,
// queryable by item, actor and table, verifiable end to end. One file per role:
//   values       attribute values: validation, canonical encoding, sizes, plain JSON
//   attribution  who made a change (application user, migrator, TTL)
//   entry        the entry and its field table (ENTRY_FIELDS), read by hashing, storage and output
//   record       a stream record → an entry's content
//   chain        hashing and placing an entry in its item's chain
//   retention    how long entries are kept
//   store        the audit table's layout: entries, chunks, heads, index keys
//   trail        AuditTrail: append (exactly once, in order), and the entry point to queries and verification
//   query        one item's history; one actor's or table's entries in a time range
//   verify       every entry, link and head
//   export       output formats and file exports
//   signer       digest signers: KMS (ECDSA P-256) on AWS, a local Ed25519 key pair; signature checks
//   digest-store where digests are kept: an S3 bucket (Object Lock) or a local directory
//   digest       the signed digest: format, encoding, checking signatures and the digest chain
//   seal         sealing the heads changed since the previous digest into a new digest
//   environment  the signer and store the environment selects (KMS/S3 or local)
//   verify-chain one chain's check, fed its items in order; verify-digests: digests → sealed points
//   export-proof the proof beside an export; export-verify: checking an export offline
export { TTL_PRINCIPAL, UNKNOWN_ACTOR, migratorActor, type ActorBasis } from "./attribution.js";
export { AUDIT_FORMAT, GENESIS_HASH, entryHash } from "./chain.js";
export { ENTRY_FIELDS, entityId, type AuditEntry, type EntryContent, type EntryField } from "./entry.js";
export { entryJson, exportEntries, formatEntries, type EntryFormat, type ExportResult } from "./export.js";
export type { TimeRange } from "./query.js";
export { changedAttributes, entryContent } from "./record.js";
export { DEFAULT_RETENTION, retentionFromEnv, type Retention } from "./retention.js";
export { AUDIT_INDEX_SHARDS, AUDIT_INDEXES, UnreadableEntryError, type EntryStorage } from "./store.js";
export {
  AUDIT_BATCH_CONCURRENCY,
  AuditTrail,
  OutOfOrderRecordError,
  type AppendOutcome,
  type AuditTrailOptions,
} from "./trail.js";
export { canonicalJson, canonicalNumber, normalizeImage, type AttributeMap } from "./values.js";
export type { ChainProblem, VerifyReport } from "./verify.js";
export { verifyExport } from "./export-verify.js";
export { proofFileOf, type ProofSource } from "./export-proof.js";
export {
  checkDigests,
  DIGEST_PREFIX,
  digestName,
  isDigestName,
  partHeads,
  type CheckedDigest,
  type DigestBody,
  type DigestFile,
  type DigestProblem,
  type SealedHead,
} from "./digest.js";
export { DigestExistsError, directoryDigestStore, s3DigestStore, type DigestStore } from "./digest-store.js";
export {
  auditEndpointId,
  localSignerFor,
  localStoreFor,
  signerFromEnvironment,
  storeFromEnvironment,
  type AuditEnvironment,
} from "./environment.js";
export { PART_HEADS, SEAL_SETTLE_SECONDS, sealAuditDigest, type SealDeps, type SealResult } from "./seal.js";
export {
  ECDSA_SHA_256,
  ED25519,
  keyFingerprint,
  kmsSigner,
  localSigner,
  verifyDigestSignature,
  type DigestSigner,
} from "./signer.js";
