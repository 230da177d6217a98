// The applier against DynamoDB Local: invariants 1, 2 and 5 of DESIGN.md section 5 at the level of
// one write, reserved words, and DynamoDB's refusals reported as `rejected`.
import {
  CreateTableCommand,
  DeleteTableCommand,
  GetItemCommand,
  waitUntilTableExists,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyPatch,
  buildUpdate,
  derivePatch,
  MIGRATOR_ACTORS,
  MIGRATOR_MARKER,
  OWNERSHIP_ATTRIBUTE,
  ownershipHash,
  ownsValue,
  targetAttributes,
  type Item,
  type SiteLogixTable,
} from "@sitelogix/core";
import { createTestTables, type TestTables } from "@sitelogix/testkit";

let t: TestTables;
beforeAll(async () => {
  t = await createTestTables("legacy");
});
afterAll(async () => {
  await t?.dispose();
});

const put = (table: SiteLogixTable, item: Item) =>
  t.clients.doc.send(new PutCommand({ TableName: t.names[table], Item: item }));
const get = async (table: SiteLogixTable, key: Record<string, string>) =>
  (await t.clients.doc.send(new GetCommand({ TableName: t.names[table], Key: key, ConsistentRead: true }))).Item;
const getRaw = async (table: SiteLogixTable, key: Record<string, string>) =>
  (
    await t.clients.dynamodb.send(
      new GetItemCommand({
        TableName: t.names[table],
        Key: { PK: { S: key.PK! }, SK: { S: key.SK! } },
        ConsistentRead: true,
      }),
    )
  ).Item;

/** Reads the item as stored, derives its patch and returns both (the applier's view of "before"). */
async function readAndDerive(table: SiteLogixTable, key: Record<string, string>) {
  const item = (await get(table, key))!;
  return { item, patch: derivePatch(table, item, { mode: "sweep" }) };
}

const report = (id: string, extra: Item = {}): Item => ({
  PK: `REPORT#${id}`,
  SK: "METADATA",
  projectId: "proj_001",
  managerId: "mgr_7",
  reportDate: "2025-11-01",
  createdAt: "2025-11-01T08:00:00.000Z",
  version: 3,
  updatedAt: "2025-11-01T09:00:00.000Z",
  lastModifiedBy: "user_42",
  ...extra,
});

describe("applier", () => {
  it("applies a patch: every target written, reserved words status and timestamp included", async () => {
    await put("reports", report("a1"));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#a1", SK: "METADATA" });
    const result = await applyPatch(t.clients.doc, t.names.reports, patch, "sweep");
    expect(result.outcome).toBe("applied");
    expect(result.consumedWcu).toBeGreaterThan(0);
    const after = await get("reports", patch.key);
    expect(after).toMatchObject({
      project_id: "proj_001",
      manager_id: "mgr_7",
      report_date: "2025-11-01",
      status: "published",
      timestamp: "2025-11-01T08:00:00.000Z",
      [MIGRATOR_MARKER.by]: MIGRATOR_ACTORS.sweep,
    });
    expect(Number(after?.[MIGRATOR_MARKER.rev])).toBe(1);
  });

  it("fills an empty-string default and replaces a stale copy in one write", async () => {
    await put("reports", report("a3", { status: "", project_id: "proj_old", timestamp: "" }));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#a3", SK: "METADATA" });
    expect(patch.set.map((a) => [a.attribute, a.current])).toEqual(
      expect.arrayContaining([
        ["status", ""],
        ["project_id", "proj_old"],
        ["timestamp", ""],
      ]),
    );
    expect((await applyPatch(t.clients.doc, t.names.reports, patch, "sweep")).outcome).toBe("applied");
    expect(await get("reports", patch.key)).toMatchObject({
      status: "published",
      project_id: "proj_001",
      timestamp: "2025-11-01T08:00:00.000Z",
    });
  });

  it("names every attribute through ExpressionAttributeNames (no reserved word in the expressions)", () => {
    const patch = derivePatch("reports", report("x"), { mode: "sweep" });
    const update = buildUpdate("tbl", patch, "normalizer");
    for (const expression of [update.UpdateExpression, update.ConditionExpression]) {
      expect(expression).not.toMatch(/\b(status|timestamp|PK|project_id|projectId)\b/);
    }
    expect(Object.values(update.ExpressionAttributeNames)).toEqual(
      expect.arrayContaining(["status", "timestamp", "PK"]),
    );
  });

  it("reports alreadyNormalized and writes nothing for a normalized item", async () => {
    await put("reports", report("a2"));
    const first = await readAndDerive("reports", { PK: "REPORT#a2", SK: "METADATA" });
    await applyPatch(t.clients.doc, t.names.reports, first.patch, "sweep");
    const again = await readAndDerive("reports", first.patch.key);
    expect(again.patch.set).toEqual([]);
    expect(await applyPatch(t.clients.doc, t.names.reports, again.patch, "sweep")).toEqual({
      outcome: "alreadyNormalized",
      key: first.patch.key,
      consumedWcu: 0,
    });
    expect(Number((await get("reports", first.patch.key))?.[MIGRATOR_MARKER.rev])).toBe(1);
  });
});

describe("invariant 1: no lost update", () => {
  it("the application changes the source between read and write: conflict, the application's value kept", async () => {
    await put("reports", report("c1"));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#c1", SK: "METADATA" });
    // The application moves the report to another project after the migrator read it.
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.reports,
        Key: patch.key,
        UpdateExpression: "SET projectId = :p, version = version + :one",
        ExpressionAttributeValues: { ":p": "proj_002", ":one": 1 },
      }),
    );
    const result = await applyPatch(t.clients.doc, t.names.reports, patch, "sweep");
    expect(result.outcome).toBe("conflict");
    const after = await get("reports", patch.key);
    expect(after?.projectId).toBe("proj_002");
    expect(after?.project_id).toBeUndefined();
    // Re-deriving from the new state converges on the application's value.
    const retry = await readAndDerive("reports", patch.key);
    expect((await applyPatch(t.clients.doc, t.names.reports, retry.patch, "sweep")).outcome).toBe("applied");
    expect((await get("reports", patch.key))?.project_id).toBe("proj_002");
  });

  it("the application sets status between read and write: the default is not written over it", async () => {
    await put("reports", report("c2"));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#c2", SK: "METADATA" });
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.reports,
        Key: patch.key,
        UpdateExpression: "SET #s = :s",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: { ":s": "draft" },
      }),
    );
    expect((await applyPatch(t.clients.doc, t.names.reports, patch, "sweep")).outcome).toBe("conflict");
    expect((await get("reports", patch.key))?.status).toBe("draft");
  });

  it("the application writes the target itself between read and write: its value is kept", async () => {
    await put("reports", report("c3"));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#c3", SK: "METADATA" });
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.reports,
        Key: patch.key,
        UpdateExpression: "SET project_id = :p",
        ExpressionAttributeValues: { ":p": "proj_new" },
      }),
    );
    expect((await applyPatch(t.clients.doc, t.names.reports, patch, "sweep")).outcome).toBe("conflict");
    expect((await get("reports", patch.key))?.project_id).toBe("proj_new");
  });

  it("the application sets a preferred source between read and write: the fallback is not written", async () => {
    // No employmentStatus when read: the rule's fallback is status 'active'.
    await put("personnel", { PK: "PERSON#f1", SK: "PROFILE", fullName: "Barbara Liskov", updatedAt: "2025-01-01" });
    const { patch } = await readAndDerive("personnel", { PK: "PERSON#f1", SK: "PROFILE" });
    expect(patch.set.find((a) => a.attribute === "status")).toMatchObject({
      value: "active",
      absentSources: ["employmentStatus"],
    });
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.personnel,
        Key: patch.key,
        UpdateExpression: "SET employmentStatus = :s",
        ExpressionAttributeValues: { ":s": "on_leave" },
      }),
    );
    expect((await applyPatch(t.clients.doc, t.names.personnel, patch, "sweep")).outcome).toBe("conflict");
    const retry = await readAndDerive("personnel", patch.key);
    expect((await applyPatch(t.clients.doc, t.names.personnel, retry.patch, "sweep")).outcome).toBe("applied");
    expect((await get("personnel", patch.key))?.status).toBe("inactive");
  });

  it("a stale copy is replaced only while it still holds what was read", async () => {
    await put("personnel", {
      PK: "PERSON#p1",
      SK: "PROFILE",
      fullName: "Grace Hopper",
      full_name: "Grace Murray",
      employmentStatus: "active",
      updatedAt: "2025-01-01",
    });
    const { patch } = await readAndDerive("personnel", { PK: "PERSON#p1", SK: "PROFILE" });
    expect(patch.set.find((a) => a.attribute === "full_name")).toMatchObject({
      value: "Grace Hopper",
      current: "Grace Murray",
    });
    expect((await applyPatch(t.clients.doc, t.names.personnel, patch, "normalizer")).outcome).toBe("applied");
    expect((await get("personnel", patch.key))?.full_name).toBe("Grace Hopper");
  });
});

describe("ownership of derived values", () => {
  const setStatus = (key: Record<string, string>, status: string) =>
    t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.personnel,
        Key: key,
        UpdateExpression: "SET #s = :s",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: { ":s": status },
      }),
    );
  const setEmployment = (key: Record<string, string>, employmentStatus: string) =>
    t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.personnel,
        Key: key,
        UpdateExpression: "SET employmentStatus = :e",
        ExpressionAttributeValues: { ":e": employmentStatus },
      }),
    );
  const person = (id: string): Item => ({
    PK: `PERSON#${id}`,
    SK: "PROFILE",
    fullName: "Frances Allen",
    employmentStatus: "active",
    createdAt: "2024-01-01",
    updatedAt: "2025-01-01",
  });
  const apply = async (key: Record<string, string>) => {
    const { patch } = await readAndDerive("personnel", key);
    return { patch, result: await applyPatch(t.clients.doc, t.names.personnel, patch, "sweep") };
  };

  it("records what it wrote, in the same write: derived values only, as hashes", async () => {
    await put("personnel", person("w1"));
    const key = { PK: "PERSON#w1", SK: "PROFILE" };
    expect((await apply(key)).result.outcome).toBe("applied");
    const after = (await get("personnel", key))!;
    expect(after[OWNERSHIP_ATTRIBUTE]).toEqual({
      status: ownershipHash("active"),
      dateLastSeen: ownershipHash("2025-01-01"),
    });
    expect(ownsValue(after, "status")).toBe(true);
    // A later write adds to the record instead of replacing it.
    await t.clients.doc.send(
      new UpdateCommand({ TableName: t.names.personnel, Key: key, UpdateExpression: "REMOVE dateLastSeen" }),
    );
    expect((await apply(key)).result.outcome).toBe("applied");
    expect((await get("personnel", key))![OWNERSHIP_ATTRIBUTE]).toEqual({
      status: ownershipHash("active"),
      dateLastSeen: ownershipHash("2025-01-01"),
    });
  });

  it("owned values follow: an owned status follows employmentStatus", async () => {
    await put("personnel", person("w2"));
    const key = { PK: "PERSON#w2", SK: "PROFILE" };
    await apply(key);
    await setEmployment(key, "terminated");
    const { patch, result } = await apply(key);
    expect(patch.set.map((a) => a.attribute)).toEqual(["status"]);
    expect(result.outcome).toBe("applied");
    const after = (await get("personnel", key))!;
    expect(after.status).toBe("archived");
    expect(ownsValue(after, "status")).toBe(true);
  });

  it(
    "no lost update: " +
      "the application sets status after the migrator did; a later employmentStatus change leaves it",
    async () => {
      await put("personnel", person("w3"));
      const key = { PK: "PERSON#w3", SK: "PROFILE" };
      await apply(key);
      await setStatus(key, "inactive");
      await setEmployment(key, "terminated");
      const { patch, result } = await apply(key);
      expect(patch.set).toEqual([]);
      expect(patch.disagreements).toEqual(["status"]);
      expect(result.outcome).toBe("alreadyNormalized");
      expect((await get("personnel", key))?.status).toBe("inactive");
    },
  );

  it(
    "no lost update: " +
      "the application writes an owned attribute between the migrator's read and its write → conflict, its value kept",
    async () => {
      await put("personnel", person("w4"));
      const key = { PK: "PERSON#w4", SK: "PROFILE" };
      await apply(key);
      await setEmployment(key, "on_leave");
      const { patch } = await readAndDerive("personnel", key);
      expect(patch.set.find((a) => a.attribute === "status")).toMatchObject({ value: "inactive", current: "active" });
      await setStatus(key, "active-pending-review");
      expect((await applyPatch(t.clients.doc, t.names.personnel, patch, "sweep")).outcome).toBe("conflict");
      expect((await get("personnel", key))?.status).toBe("active-pending-review");
    },
  );

  it("no lost update: the ownership record changed under the migrator → conflict, nothing rewritten", async () => {
    await put("personnel", person("w5"));
    const key = { PK: "PERSON#w5", SK: "PROFILE" };
    await apply(key);
    await setEmployment(key, "terminated");
    const { patch } = await readAndDerive("personnel", key);
    // The record changes under the migrator (another writer's record): the rewrite must not land.
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.personnel,
        Key: key,
        UpdateExpression: "SET #o.#s = :h",
        ExpressionAttributeNames: { "#o": OWNERSHIP_ATTRIBUTE, "#s": "status" },
        ExpressionAttributeValues: { ":h": "other" },
      }),
    );
    expect((await applyPatch(t.clients.doc, t.names.personnel, patch, "sweep")).outcome).toBe("conflict");
    expect((await get("personnel", key))?.status).toBe("active");
  });

  it("a full-item put by old code drops the record: the migrator derives again", async () => {
    await put("personnel", person("w6"));
    const key = { PK: "PERSON#w6", SK: "PROFILE" };
    await apply(key);
    await put("personnel", { ...person("w6"), employmentStatus: "on_leave" });
    const { result } = await apply(key);
    expect(result.outcome).toBe("applied");
    const after = (await get("personnel", key))!;
    expect(after.status).toBe("inactive");
    expect(ownsValue(after, "status")).toBe(true);
  });
});

describe("invariant 2: no resurrection", () => {
  it("an item deleted between read and write is gone and stays deleted", async () => {
    await put("reports", report("d1"));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#d1", SK: "METADATA" });
    await t.clients.doc.send(new DeleteCommand({ TableName: t.names.reports, Key: patch.key }));
    const result = await applyPatch(t.clients.doc, t.names.reports, patch, "sweep");
    expect(result.outcome).toBe("gone");
    expect(await get("reports", patch.key)).toBeUndefined();
  });

  it("a default-only patch on a missing item creates nothing", async () => {
    const patch = derivePatch(
      "reports",
      { PK: "REPORT#never", SK: "METADATA", createdAt: "2025-01-01" },
      { mode: "sweep" },
    );
    expect((await applyPatch(t.clients.doc, t.names.reports, patch, "normalizer")).outcome).toBe("gone");
    expect(await get("reports", patch.key)).toBeUndefined();
  });
});

describe("invariant 5: business fields untouched", () => {
  it("every attribute outside the rule's targets is byte-for-byte what it was", async () => {
    const key = { PK: "PERSON#b1", SK: "PROFILE" };
    await put("personnel", {
      ...key,
      fullName: "Katherine Johnson",
      employmentStatus: "terminated",
      createdAt: "2020-01-01",
      updatedAt: "2025-03-03",
      version: 17,
      lastModifiedBy: "hr_admin",
      phone: "+1-555-0100",
      email: "kj@example.com",
      certifications: new Set(["OSHA-30", "First Aid"]),
      hoursByMonth: { "2025-01": 160, "2025-02": 152.5 },
      badge: new Uint8Array([1, 2, 3]),
      notes: ["a", { nested: true }, null],
      bigNumber: 12345678901234567890n,
    });
    const before = (await getRaw("personnel", key))!;
    const { patch } = await readAndDerive("personnel", key);
    expect((await applyPatch(t.clients.doc, t.names.personnel, patch, "sweep")).outcome).toBe("applied");
    const after = (await getRaw("personnel", key))!;

    const owned = new Set([...targetAttributes("personnel"), ...Object.values(MIGRATOR_MARKER)]);
    const untouched = (item: Record<string, AttributeValue>) =>
      Object.fromEntries(Object.entries(item).filter(([k]) => !owned.has(k)));
    expect(untouched(after)).toEqual(untouched(before));
    expect(after.status).toEqual({ S: "archived" });
    expect(after.version).toEqual({ N: "17" });
    expect(after.updatedAt).toEqual({ S: "2025-03-03" });
    expect(after.lastModifiedBy).toEqual({ S: "hr_admin" });
  });
});

describe("rejected", () => {
  const tableName = () => `${t.prefix}rejecting`;
  beforeAll(async () => {
    // A table whose existing GSI keys project_id as a number: DynamoDB refuses a string there.
    await t.clients.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName(),
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: "PK", KeyType: "HASH" },
          { AttributeName: "SK", KeyType: "RANGE" },
        ],
        AttributeDefinitions: [
          { AttributeName: "PK", AttributeType: "S" },
          { AttributeName: "SK", AttributeType: "S" },
          { AttributeName: "project_id", AttributeType: "N" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: "ById",
            KeySchema: [{ AttributeName: "project_id", KeyType: "HASH" }],
            Projection: { ProjectionType: "ALL" },
          },
        ],
      }),
    );
    await waitUntilTableExists({ client: t.clients.dynamodb, maxWaitTime: 60 }, { TableName: tableName() });
  });
  afterAll(async () => {
    await t.clients.dynamodb.send(new DeleteTableCommand({ TableName: tableName() }));
  });

  it("a value an existing GSI refuses is rejected with the keys and a reason, not thrown", async () => {
    const item = report("r1");
    await t.clients.doc.send(new PutCommand({ TableName: tableName(), Item: item }));
    const patch = derivePatch("reports", item, { mode: "sweep" });
    const result = await applyPatch(t.clients.doc, tableName(), patch, "sweep");
    expect(result.outcome).toBe("rejected");
    expect(result.key).toEqual({ PK: "REPORT#r1", SK: "METADATA" });
    expect(result.reason).toMatch(/project_id|index/i);
    const after = (await t.clients.doc.send(new GetCommand({ TableName: tableName(), Key: patch.key }))).Item;
    expect(after?.status).toBeUndefined();
  });

  it("a write that would take the item over 400 KB is rejected", async () => {
    // About 70 bytes below the limit before the write, about 90 above it after.
    await put("reports", report("big", { transcript: "x".repeat(409_600 - 179 - 70) }));
    const { patch } = await readAndDerive("reports", { PK: "REPORT#big", SK: "METADATA" });
    const result = await applyPatch(t.clients.doc, t.names.reports, patch, "sweep");
    expect(result.outcome).toBe("rejected");
    expect(result.reason).toMatch(/size/i);
  });
});
