// Signed digests on DynamoDB Local (issue 15): `audit seal` and `audit verify` as a compliance
// officer runs them; the insider who rewrites an entry and recomputes its chain and head with the
// project's own hashing code; digests altered, deleted and reordered; unsealed entries; an export
// proved offline with the public key alone; expiries moved into the past. KMS and S3 (no local
// engine has them) through client-level mocks.
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutItemCommand, QueryCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { GetPublicKeyCommand, KMSClient, SignCommand } from "@aws-sdk/client-kms";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuditTrail,
  DigestExistsError,
  directoryDigestStore,
  entityId,
  entryHash,
  kmsSigner,
  localSigner,
  s3DigestStore,
  sealAuditDigest,
  type AuditEntry,
  type VerifyReport,
} from "@sitelogix/core";
import { createTestTables, reportChange, runCli, type TestTables } from "@sitelogix/testkit";

let t: TestTables;
let home: string;
let trail: AuditTrail;
const REPORTS = ["REPORT#d1", "REPORT#d2", "REPORT#d3"].map((PK) => ({ PK, SK: "METADATA" }));

const env = () => ({ SITELOGIX_TABLE_PREFIX: t.prefix, SITELOGIX_AUDIT_HOME: home });
const cli = (...args: string[]) => runCli(["audit", ...args], env());
async function verify(expected: 0 | 4, ...args: string[]): Promise<VerifyReport> {
  const run = await cli("verify", "--json", ...args);
  expect(run.code, run.stderr).toBe(expected);
  return JSON.parse(run.stdout) as VerifyReport;
}
async function seal(): Promise<{ digest: string; heads: number }> {
  const run = await cli("seal", "--settle", "0", "--json");
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

const change = (keys: Record<string, string>, weather: string) => reportChange(t.names.reports, keys, weather);

async function rawItems(keys: Record<string, string>): Promise<Record<string, AttributeValue>[]> {
  const out = await t.clients.dynamodb.send(
    new QueryCommand({
      TableName: t.names.audit,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": { S: entityId("reports", keys) } },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}
const put = (item: Record<string, AttributeValue>) =>
  t.clients.dynamodb.send(new PutItemCommand({ TableName: t.names.audit, Item: item }));
const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};
const digestDir = async () => {
  const base = join(home, "audit-digests");
  const [endpoint] = (await readdir(base)).filter((d) => d.endsWith(t.names.audit));
  return join(base, endpoint!);
};

beforeAll(async () => {
  t = await createTestTables("legacy");
  home = await mkdtemp(join(tmpdir(), "audit-digest-"));
  trail = new AuditTrail(t.clients.dynamodb, t.names);
  for (const keys of REPORTS) for (const w of ["sun", "rain", "wind"]) await trail.append(change(keys, w));
});
afterAll(async () => {
  await t?.dispose();
  await rm(home, { recursive: true, force: true });
});

describe("audit seal and verify", () => {
  it("seals every changed head, signed with a local key kept outside the repository; verify is intact", async () => {
    const before = await verify(0);
    expect(before).toMatchObject({ intact: true, entries: 9, digests: { count: 0 }, unsealed: { entries: 9 } });
    expect(await seal()).toMatchObject({ digest: "digest-0000000001.json", heads: 3 });
    const keyDir = join(home, "audit-keys", (await readdir(join(home, "audit-keys")))[0]!);
    const mode = (await import("node:fs")).statSync(join(keyDir, "digest-signing-key.pem")).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(await verify(0)).toMatchObject({
      intact: true,
      chains: 3,
      entries: 9,
      digests: { count: 1, latest: "digest-0000000001.json" },
      unsealed: { entries: 0, oldestRecordedAt: null },
    });
    const human = await cli("verify");
    expect(human.stderr).toMatch(/intact: 3 chains, 9 entries verified, 1 signed digests \(latest digest-0000000001/);
  });

  it("reports entries after the latest digest as not yet sealed (count and age), not as tampering", async () => {
    await trail.append(change(REPORTS[0]!, "snow"));
    await trail.append(change(REPORTS[0]!, "hail"));
    const report = await verify(0);
    expect(report.unsealed.entries).toBe(2);
    expect(report.unsealed.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(report.problems).toEqual([]);
    expect((await cli("verify")).stderr).toMatch(/2 entries not yet sealed \(oldest recorded .* s ago\)/);
    expect(await seal()).toMatchObject({ digest: "digest-0000000002.json", heads: 1 });
    expect((await verify(0)).unsealed.entries).toBe(0);
  });

  it("catches the insider: an entry rewritten, its chain and head recomputed: exit 4 citing the digest", async () => {
    const keys = REPORTS[1]!;
    const entries = (await collect(trail.history("reports", keys))) as AuditEntry[];
    const raw = (await rawItems(keys)).sort((a, b) => (a.SK!.S! < b.SK!.S! ? -1 : 1));
    // Rewrite the second entry's actor, then re-link the third and the head with the project's own hash.
    const second = { ...entries[1]!, actor: "user_9" };
    second.hash = entryHash(second);
    const third = { ...entries[2]!, prevHash: second.hash };
    third.hash = entryHash(third);
    const forged = [
      { ...raw[1]!, actor: { S: "user_9" }, hash: { S: second.hash } },
      { ...raw[2]!, prevHash: { S: second.hash }, hash: { S: third.hash } },
      { ...raw[3]!, lastHash: { S: third.hash } },
    ];
    expect(raw[3]!.SK!.S).toBe("H");
    for (const item of forged) await put(item);
    // Without the digests the rewrite is invisible: every hash, link and head agrees.
    expect((await trail.verify()).intact).toBe(true);
    const report = await verify(4);
    expect(report.problems).toEqual([
      expect.objectContaining({
        table: "reports",
        keys,
        position: 3,
        digest: "digest-0000000001.json",
        problem: expect.stringMatching(/does not match digest-0000000001\.json.*rewritten/),
      }),
    ]);
    const human = await cli("verify");
    expect(human.code).toBe(4);
    expect(human.stderr).toContain(`TAMPERED  reports ${JSON.stringify(keys)} position 3`);
    expect(human.stderr).toContain("[digest-0000000001.json]");
    for (const item of raw.slice(1, 4)) await put(item);
    await verify(0);
  });

  it("detects a digest altered, a digest deleted from the middle and digests reordered", async () => {
    await trail.append(change(REPORTS[2]!, "fog"));
    expect(await seal()).toMatchObject({ digest: "digest-0000000003.json" });
    const dir = await digestDir();
    const file = (n: number) => join(dir, `digest-000000000${n}.json`);
    const original = await readFile(file(2), "utf8");

    await writeFile(file(2), original.replace('"heads": 1', '"heads": 2'));
    expect((await verify(4)).problems).toContainEqual(
      expect.objectContaining({ digest: "digest-0000000002.json", problem: expect.stringMatching(/signature/) }),
    );
    await writeFile(file(2), original);
    await verify(0);

    await rm(file(2));
    expect((await verify(4)).problems).toContainEqual(
      expect.objectContaining({ digest: "digest-0000000003.json", problem: expect.stringMatching(/2 deleted/) }),
    );
    await writeFile(file(2), original);

    await rename(file(2), join(dir, "swap"));
    await rename(file(3), file(2));
    await rename(join(dir, "swap"), file(3));
    const swapped = await verify(4);
    expect(swapped.problems).toContainEqual(
      expect.objectContaining({ digest: "digest-0000000002.json", problem: expect.stringMatching(/reordered/) }),
    );
    await rename(file(2), join(dir, "swap"));
    await rename(file(3), file(2));
    await rename(join(dir, "swap"), file(3));
    await verify(0);
  });

  it("detects a chain a digest sealed that was deleted whole (head and every entry)", async () => {
    const raw = await rawItems(REPORTS[2]!);
    const { DeleteItemCommand } = await import("@aws-sdk/client-dynamodb");
    for (const item of raw)
      await t.clients.dynamodb.send(
        new DeleteItemCommand({ TableName: t.names.audit, Key: { PK: item.PK!, SK: item.SK! } }),
      );
    expect((await verify(4)).problems).toEqual([
      expect.objectContaining({ keys: REPORTS[2], problem: expect.stringMatching(/chain deleted/) }),
    ]);
    for (const item of raw) await put(item);
    await verify(0);
  });

  it("exports with a proof that verifies offline with the public key alone, and catches an edited export", async () => {
    await trail.append(change(REPORTS[1]!, "storm")); // exported, not yet sealed
    const out = join(home, "reports.ndjson");
    const exported = await cli("export", "--table", "reports", "--from", "2000-01-01", "--to", "2100-01-01");
    expect(exported.code).toBe(2); // --out is required
    const run = await cli(
      ...["export", "--table", "reports", "--from", "2000-01-01", "--to", "2100-01-01", "--out", out, "--json"],
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      entries: 13,
      proof: { digests: 3, sealedEntries: 12, unsealedEntries: 1 },
    });
    const key = join(home, "digest-key.pem");
    const pem = await cli("public-key");
    expect(pem.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await writeFile(key, pem.stdout);
    // No AWS access: the endpoint is a closed port and no table names resolve to anything real.
    const offline = (...args: string[]) =>
      runCli(["audit", "verify", "--export", out, "--public-key", key, "--json", ...args], {
        AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
        SITELOGIX_AUDIT_HOME: join(home, "nowhere"),
      });
    const ok = await offline();
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      intact: true,
      entries: 13,
      chains: 3,
      digests: { count: 3 },
      unsealed: { entries: 1 },
    });

    // Another key does not verify the digests.
    const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    await writeFile(key, other);
    expect((await offline()).code).toBe(4);
    await writeFile(key, pem.stdout);

    // An exported entry edited (its SHA-256 file rewritten to match): the proof still catches it.
    const text = await readFile(out, "utf8");
    const edited = text.replace('"actor":"user_1"', '"actor":"user_7"');
    expect(edited).not.toBe(text);
    await writeFile(out, edited);
    const { createHash } = await import("node:crypto");
    await writeFile(`${out}.sha256`, `${createHash("sha256").update(edited).digest("hex")}  reports.ndjson\n`);
    const caught = await offline();
    expect(caught.code).toBe(4);
    expect(JSON.parse(caught.stdout).problems).toEqual([
      expect.objectContaining({ problem: expect.stringMatching(/differs from the sealed entry/) }),
    ]);
  });

  it("reports an expiry moved before the end of retention, and a sealed entry removed early", async () => {
    const keys = { PK: "REPORT#d9", SK: "METADATA" };
    for (const w of ["a", "b", "c"]) await trail.append(change(keys, w));
    const entries = (await collect(trail.history("reports", keys))) as AuditEntry[];
    const raw = (await rawItems(keys)).sort((a, b) => (a.SK!.S! < b.SK!.S! ? -1 : 1));
    /** The insider moves the first entry's expiry to `at` and re-links the chain and head with the project's hash. */
    const moveExpiry = async (at: number) => {
      const first = { ...entries[0]!, expiresAt: at };
      first.hash = entryHash(first);
      const second = { ...entries[1]!, prevHash: first.hash, prevExpiresAt: at };
      second.hash = entryHash(second);
      const third = { ...entries[2]!, prevHash: second.hash };
      third.hash = entryHash(third);
      const moved = { N: String(at) };
      await put({ ...raw[0]!, expiresAt: moved, hash: { S: first.hash } });
      await put({ ...raw[1]!, prevHash: { S: first.hash }, prevExpiresAt: moved, hash: { S: second.hash } });
      await put({ ...raw[2]!, prevHash: { S: second.hash }, hash: { S: third.hash } });
      await put({ ...raw[3]!, lastHash: { S: third.hash } });
    };
    // Unsealed: tomorrow instead of in 7 years (TTL has not removed it yet): the retention check finds it.
    await moveExpiry(Math.floor(Date.now() / 1000) + 86_400);
    expect((await verify(4, "--table", "reports")).problems).toEqual([
      expect.objectContaining({ keys, position: 1, problem: expect.stringMatching(/before the end of its retention/) }),
    ]);
    for (const item of raw) await put(item);
    await verify(0);

    // Sealed, then moved into the past and removed as TTL would: the gap looks expired, the digest does not agree.
    const { digest } = await seal();
    await moveExpiry(Math.floor(Date.now() / 1000) - 86_400);
    const { DeleteItemCommand } = await import("@aws-sdk/client-dynamodb");
    await t.clients.dynamodb.send(
      new DeleteItemCommand({ TableName: t.names.audit, Key: { PK: raw[0]!.PK!, SK: raw[0]!.SK! } }),
    );
    expect((await verify(4)).problems).toEqual([
      expect.objectContaining({ keys, position: 3, digest, problem: expect.stringMatching(/rewritten/) }),
    ]);
    for (const item of raw) await put(item);
    await verify(0);
  });
});

describe("KMS signer and S3 digest store (client mocks: no local engine has them)", () => {
  it("seals with kms:Sign (ECDSA_SHA_256) into S3 and verifies with the key's public half", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const kms = mockClient(KMSClient);
    kms.on(SignCommand).callsFake((input: { Message: Uint8Array; MessageType: string }) => {
      expect(input.MessageType).toBe("RAW");
      return { Signature: sign("sha256", input.Message, privateKey), SigningAlgorithm: "ECDSA_SHA_256" };
    });
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: publicKey.export({ type: "spki", format: "der" }) });
    const s3 = mockClient(S3Client);
    const objects = new Map<string, Uint8Array>();
    s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
      if (objects.has(input.Key!)) throw Object.assign(new Error("exists"), { name: "PreconditionFailed" });
      objects.set(input.Key!, input.Body as Uint8Array);
      return {};
    });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      const bytes = objects.get(input.Key);
      if (!bytes) throw Object.assign(new Error("no such key"), { name: "NoSuchKey" });
      return { Body: { transformToByteArray: async () => bytes } };
    });
    s3.on(ListObjectsV2Command).callsFake((input: { Prefix: string }) => ({
      Contents: [...objects.keys()]
        .filter((k) => k.startsWith(input.Prefix))
        .sort()
        .map((Key) => ({ Key })),
    }));
    try {
      const signer = kmsSigner({ kms: new KMSClient({ region: "eu-west-1" }), keyId: "alias/audit-digests" });
      const store = s3DigestStore({ s3: new S3Client({ region: "eu-west-1" }), bucket: "digests", prefix: "d/" });
      const sealed = await sealAuditDigest({
        doc: t.clients.doc,
        auditTableName: t.names.audit,
        signer,
        store,
        settleSeconds: 0,
      });
      expect(sealed).toMatchObject({ digest: "digest-0000000001.json", heads: 4, location: "s3://digests/d/" });
      expect(kms.commandCalls(SignCommand)[0]!.args[0].input).toMatchObject({
        KeyId: "alias/audit-digests",
        SigningAlgorithm: "ECDSA_SHA_256",
      });
      const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
      expect(puts.map((p) => p.Key)).toContain("d/digest-0000000001.json");
      for (const p of puts)
        expect(p).toMatchObject({ Bucket: "digests", IfNoneMatch: "*", ChecksumAlgorithm: "SHA256" });
      await expect(store.put("digest-0000000001.json", new Uint8Array([1]))).rejects.toBeInstanceOf(DigestExistsError);
      expect(await store.get("digest-9999999999.json")).toBeUndefined();

      const report = await trail.verify({ digests: { store, publicKeyPem: () => signer.publicKeyPem() } });
      expect(report).toMatchObject({ intact: true, digests: { count: 1 }, unsealed: { entries: 0 } });
      // A local key cannot pass for the KMS key.
      const impostor = await localSigner(join(home, "impostor"));
      const forged = await trail.verify({ digests: { store, publicKeyPem: () => impostor.publicKeyPem() } });
      expect(forged.problems).toContainEqual(expect.objectContaining({ problem: expect.stringMatching(/signature/) }));
    } finally {
      kms.restore();
      s3.restore();
    }
  });

  it("a directory store never replaces a digest", async () => {
    const store = directoryDigestStore(join(home, "once"));
    await store.put("digest-0000000001.json", new Uint8Array([1]));
    await expect(store.put("digest-0000000001.json", new Uint8Array([2]))).rejects.toBeInstanceOf(DigestExistsError);
    expect(await store.get("digest-0000000001.json")).toEqual(new Uint8Array([1]));
    expect(await collect(store.list())).toEqual(["digest-0000000001.json"]);
  });
});
