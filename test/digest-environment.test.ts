// Which signer and digest store the CLI and the writer use, from the environment and, under
// `sst shell`, from the stage's AuditDigests link (stacks/digests.ts). SST reads the links from
// SST_RESOURCE_* variables, as `sst shell` sets them, when the module is first loaded.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KMSClient } from "@aws-sdk/client-kms";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const LINKED_KEY = "arn:aws:kms:us-east-1:123456789012:key/linked-by-sst-shell";
const LINKED_BUCKET = "sitelogix-prod-digests-linked";
process.env.SST_RESOURCE_AuditDigests = JSON.stringify({
  keyId: LINKED_KEY,
  bucket: LINKED_BUCKET,
  writer: "sitelogix-migrator-prod-AuditDigestWriterHandlerFunction",
  type: "sst.sst.Linkable",
});
const { signerFromEnvironment, storeFromEnvironment } = await import("@sitelogix/core/audit");

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "digest-env-"));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});
const clients = { kms: new KMSClient({ region: "us-east-1" }), s3: new S3Client({ region: "us-east-1" }) };

describe("signer and store from the environment", () => {
  it("under sst shell, without the variables: the stage's key and bucket from the AuditDigests link", async () => {
    const env = { SITELOGIX_AUDIT_HOME: home };
    const signer = await signerFromEnvironment({ env, auditTableName: "sitelogix-audit-log", ...clients });
    expect(signer).toMatchObject({ keyId: LINKED_KEY, algorithm: "ECDSA_SHA_256" });
    const store = storeFromEnvironment({ env, auditTableName: "sitelogix-audit-log", ...clients });
    expect(store.location).toBe(`s3://${LINKED_BUCKET}/digests/`);
  });

  it("the variables win over the link (the writer's, or an operator's override)", async () => {
    const env = {
      SITELOGIX_AUDIT_HOME: home,
      SITELOGIX_AUDIT_KMS_KEY_ID: "alias/sitelogix-dev-audit-digests",
      SITELOGIX_AUDIT_DIGEST_BUCKET: "sitelogix-dev-digests-x",
      SITELOGIX_AUDIT_DIGEST_PREFIX: "d/",
    };
    const signer = await signerFromEnvironment({ env, auditTableName: "sitelogix-audit-log", ...clients });
    expect(signer.keyId).toBe("alias/sitelogix-dev-audit-digests");
    expect(storeFromEnvironment({ env, ...clients }).location).toBe("s3://sitelogix-dev-digests-x/d/");
  });
});
