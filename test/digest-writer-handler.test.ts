// The digest writer Lambda invoked as EventBridge's schedule would, with its default dependencies —
// the audit table resolved like in Lambda, the signer and store chosen from the environment the stack
// sets (SITELOGIX_AUDIT_KMS_KEY_ID, SITELOGIX_AUDIT_DIGEST_BUCKET, SITELOGIX_AUDIT_DIGEST_PREFIX) —
// against DynamoDB Local for the audit table, and KMS and S3 through client-level mocks (no local
// engine has them): a P-256 key pair signs what kms:Sign is sent, a map holds what S3 is sent.
import { generateKeyPairSync, sign } from "node:crypto";
import { GetPublicKeyCommand, KMSClient, SignCommand, type SignCommandInput } from "@aws-sdk/client-kms";
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandInput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AuditTrail, s3DigestStore } from "@sitelogix/core";
import { createTestTables, reportChange, type TestTables } from "@sitelogix/testkit";

const KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/digest-writer-test";
const BUCKET = "sitelogix-dev-digests-test";
const SECRET_WEATHER = "hurricane-at-555-0142";

let t: TestTables;
let trail: AuditTrail;
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const kms = mockClient(KMSClient);
const s3 = mockClient(S3Client);
const objects = new Map<string, Uint8Array>();
let refuseToSign = false;

const change = (PK: string, weather: string) => reportChange(t.names.reports, { PK, SK: "METADATA" }, weather);

// What the handler prints (Powertools: info and EMF to stdout, errors to stderr).
let stdout = "";
let stderr = "";
/** The EMF documents printed: the metric values by name. */
const emitted = () =>
  stdout
    .split("\n")
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

beforeAll(async () => {
  t = await createTestTables("legacy");
  trail = new AuditTrail(t.clients.dynamodb, t.names);
  for (const PK of ["REPORT#w1", "REPORT#w2", "REPORT#w3"]) await trail.append(change(PK, SECRET_WEATHER));
  // What the stack sets on the function (stacks/digests.ts), and the table names as Lambda resolves them.
  Object.assign(process.env, {
    SITELOGIX_TABLE_PREFIX: t.prefix,
    SITELOGIX_AUDIT_KMS_KEY_ID: KEY_ARN,
    SITELOGIX_AUDIT_DIGEST_BUCKET: BUCKET,
    SITELOGIX_AUDIT_DIGEST_PREFIX: "digests/",
    POWERTOOLS_SERVICE_NAME: "sitelogix-digest-writer",
    POWERTOOLS_METRICS_NAMESPACE: "SiteLogixMigrator",
  });

  kms.on(SignCommand).callsFake(async (input: SignCommandInput) => {
    if (input.KeyId !== KEY_ARN) throw Object.assign(new Error("not this key"), { name: "NotFoundException" });
    if (refuseToSign)
      throw Object.assign(new Error("not authorized to perform kms:Sign"), { name: "AccessDeniedException" });
    if (input.MessageType !== "RAW") throw new Error("this test's KMS signs whole messages only");
    return { KeyId: KEY_ARN, Signature: sign("sha256", input.Message!, privateKey), SigningAlgorithm: "ECDSA_SHA_256" };
  });
  kms
    .on(GetPublicKeyCommand)
    .resolves({ KeyId: KEY_ARN, PublicKey: publicKey.export({ type: "spki", format: "der" }) });
  s3.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
    if (input.Bucket !== BUCKET) throw Object.assign(new Error("no such bucket"), { name: "NoSuchBucket" });
    if (objects.has(input.Key!)) throw Object.assign(new Error("exists"), { name: "PreconditionFailed" });
    objects.set(input.Key!, input.Body as Uint8Array);
    return {};
  });
  s3.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
    const bytes = objects.get(input.Key!);
    if (!bytes) throw Object.assign(new Error("no such key"), { name: "NoSuchKey" });
    return { Body: { transformToByteArray: async () => bytes } };
  });
  s3.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => ({
    Contents: [...objects.keys()]
      .filter((k) => k.startsWith(input.Prefix ?? ""))
      .sort()
      .map((Key) => ({ Key })),
  }));

  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
});
afterEach(() => {
  stdout = "";
  stderr = "";
});
afterAll(async () => {
  vi.restoreAllMocks();
  kms.restore();
  s3.restore();
  await t?.dispose();
});

/**
 * The handler as the stack deploys it, loaded after the environment is set as Lambda loads it; only
 * the settling time is 0 instead of 30 s (sealing leaves the last 30 s to the next digest).
 */
async function loadHandler() {
  const { createDigestWriterHandler, defaultSealDeps } = await import("@sitelogix/functions/digest-writer");
  return createDigestWriterHandler({ seal: async () => ({ ...(await defaultSealDeps()), settleSeconds: 0 }) });
}
/** EventBridge's scheduled event: the handler ignores it. */
const scheduled = { source: "aws.events", "detail-type": "Scheduled Event", detail: {} };

describe("digest writer", () => {
  it("seals the changed heads with the stack's key into its bucket, each digest chained to the last", async () => {
    const handler = await loadHandler();
    const first = await handler(scheduled);
    expect(first).toMatchObject({
      digest: "digest-0000000001.json",
      sequence: 1,
      heads: 3,
      location: `s3://${BUCKET}/digests/`,
    });
    expect(kms.commandCalls(SignCommand).map((c) => c.args[0].input.KeyId)).toEqual([KEY_ARN]);
    expect([...objects.keys()].every((k) => k.startsWith("digests/"))).toBe(true);
    expect(objects.has("digests/digest-0000000001.json")).toBe(true);

    // One more change: the next run seals that head alone, linked to the first digest (whose
    // signature it checks with the key's public half first).
    await trail.append(change("REPORT#w2", "fog"));
    const second = await handler(scheduled);
    expect(second).toMatchObject({ digest: "digest-0000000002.json", sequence: 2, heads: 1 });
    const body = JSON.parse(Buffer.from(objects.get("digests/digest-0000000002.json")!).toString("utf8"));
    expect(body.digest.previous.name).toBe("digest-0000000001.json");
    expect(body.digest.signer).toEqual({ keyId: KEY_ARN, algorithm: "ECDSA_SHA_256" });

    // The audit trail verifies against what the writer stored: intact, everything sealed.
    const store = s3DigestStore({ s3: new S3Client({}), bucket: BUCKET, prefix: "digests/" });
    const report = await trail.verify({
      digests: { store, publicKeyPem: async () => publicKey.export({ type: "spki", format: "pem" }).toString() },
    });
    expect(report).toMatchObject({ intact: true, chains: 3, entries: 4, digests: { count: 2 } });
    expect(report.unsealed.entries).toBe(0);
    // Never a delete: the writer has no such permission, and Object Lock would refuse it anyway.
    expect(s3.commandCalls(DeleteObjectCommand)).toEqual([]);
    expect(s3.commandCalls(DeleteObjectsCommand)).toEqual([]);
  });

  it("emits AuditDigestsSealed (the missing-digest alarm's metric); logs counts, never keys or values", async () => {
    const handler = await loadHandler();
    await trail.append(change("REPORT#w3", SECRET_WEATHER));
    await handler(scheduled);
    const [emf] = emitted();
    expect(emf).toMatchObject({ service: "sitelogix-digest-writer", AuditDigestsSealed: 1, AuditHeadsSealed: 1 });
    expect(JSON.stringify((emf!._aws as { CloudWatchMetrics: unknown }).CloudWatchMetrics)).toContain(
      '"Namespace":"SiteLogixMigrator"',
    );
    expect(stdout).toContain('"message":"audit digest sealed"');
    expect(stdout).toContain("digest-0000000003.json");
    for (const secret of [SECRET_WEATHER, "REPORT#w3", "fog"]) expect(stdout + stderr).not.toContain(secret);
  });

  it("fails when KMS refuses to sign: no digest, no metric, the error logged; the next run seals", async () => {
    const handler = await loadHandler();
    await trail.append(change("REPORT#w1", "snow"));
    const before = new Set(objects.keys());
    refuseToSign = true;
    await expect(handler(scheduled)).rejects.toThrow(/kms:Sign/);
    refuseToSign = false;
    expect([...objects.keys()].filter((k) => !before.has(k) && /digest-\d+\.json$/.test(k))).toEqual([]);
    expect(emitted().some((emf) => "AuditDigestsSealed" in emf)).toBe(false);
    expect(stderr).toContain("audit digest not sealed");
    expect(stderr).toContain("AccessDeniedException");
    expect(stdout + stderr).not.toContain("snow");

    stdout = "";
    const retried = await handler(scheduled);
    expect(retried).toMatchObject({ digest: "digest-0000000004.json", heads: 1 });
    expect(emitted()[0]).toMatchObject({ AuditDigestsSealed: 1 });
  });
});
