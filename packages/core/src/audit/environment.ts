// Which signer and digest store to use, from the environment: on AWS (the digest writer Lambda, or
// the CLI pointed at AWS) the KMS key SITELOGIX_AUDIT_KMS_KEY_ID and the bucket
// SITELOGIX_AUDIT_DIGEST_BUCKET; otherwise a local key pair and directory per endpoint, under
// SITELOGIX_AUDIT_HOME (default ~/.sitelogix): never inside the repository.
import { homedir } from "node:os";
import { join } from "node:path";
import { KMSClient } from "@aws-sdk/client-kms";
import { S3Client } from "@aws-sdk/client-s3";
import { Resource } from "sst/resource";
import { resolveTableNames } from "../names.js";
import { directoryDigestStore, s3DigestStore, type DigestStore } from "./digest-store.js";
import { kmsSigner, localSigner, type DigestSigner } from "./signer.js";

export interface AuditEnvironment {
  env?: NodeJS.ProcessEnv;
  /** The audit table sealed (default: the resolved table names' audit table). */
  auditTableName?: string;
  kms?: KMSClient;
  s3?: S3Client;
}

/** One DynamoDB endpoint and audit table, as a directory name: `localhost_8000-sitelogix-audit-log`. */
export function auditEndpointId({ env = process.env, auditTableName }: AuditEnvironment = {}): string {
  const endpoint = env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL ?? `aws-${env.AWS_REGION ?? "default"}`;
  const host = endpoint.replace(/^[a-z]+:\/\//i, "").replace(/[^A-Za-z0-9.-]+/g, "_");
  return `${host}-${auditTableName ?? resolveTableNames(env).audit}`;
}

const auditHome = (env: NodeJS.ProcessEnv) => env.SITELOGIX_AUDIT_HOME ?? join(homedir(), ".sitelogix");

/** The endpoint's local Ed25519 signer, in `<SITELOGIX_AUDIT_HOME>/audit-keys/<endpoint id>/`. */
export function localSignerFor(options: AuditEnvironment = {}): Promise<DigestSigner> {
  const env = options.env ?? process.env;
  return localSigner(join(auditHome(env), "audit-keys", auditEndpointId({ ...options, env })));
}

/** The endpoint's local digest directory: `<SITELOGIX_AUDIT_HOME>/audit-digests/<endpoint id>/`. */
export function localStoreFor(options: AuditEnvironment = {}): DigestStore {
  const env = options.env ?? process.env;
  return directoryDigestStore(join(auditHome(env), "audit-digests", auditEndpointId({ ...options, env })));
}

/** Under `sst shell`, the stage's key and bucket (stacks/digests.ts links them as AuditDigests). */
function linkedDigests(name: "keyId" | "bucket"): string | undefined {
  if (!("AuditDigests" in Resource)) return undefined;
  const value = (Resource as unknown as Record<string, Record<string, unknown> | undefined>).AuditDigests?.[name];
  return typeof value === "string" ? value : undefined;
}

/** The KMS signer when SITELOGIX_AUDIT_KMS_KEY_ID is set, else the endpoint's local Ed25519 key pair. */
export async function signerFromEnvironment(options: AuditEnvironment = {}): Promise<DigestSigner> {
  const env = options.env ?? process.env;
  const keyId = env.SITELOGIX_AUDIT_KMS_KEY_ID || linkedDigests("keyId");
  if (keyId) return kmsSigner({ kms: options.kms ?? new KMSClient({}), keyId });
  return localSignerFor(options);
}

/** The S3 store when SITELOGIX_AUDIT_DIGEST_BUCKET is set (prefix SITELOGIX_AUDIT_DIGEST_PREFIX), else local. */
export function storeFromEnvironment(options: AuditEnvironment = {}): DigestStore {
  const env = options.env ?? process.env;
  const bucket = env.SITELOGIX_AUDIT_DIGEST_BUCKET || linkedDigests("bucket");
  if (bucket) {
    return s3DigestStore({
      s3: options.s3 ?? new S3Client({}),
      bucket,
      prefix: env.SITELOGIX_AUDIT_DIGEST_PREFIX ?? "digests/",
    });
  }
  return localStoreFor(options);
}
