// The compliance CLI as an officer runs it: `audit query` (selectors, time ranges, every format),
// `audit export` (file + SHA-256 digest), `audit verify` (exit 0 intact, 4 altered — editing,
// deleting a middle or the newest entry, inserting a forged one, deleting a chain head — and 0
// again once restored).
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeleteItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditTrail, entityId, entryHash, type AuditEntry } from "@sitelogix/core";
import { createAuditLoggerHandler } from "@sitelogix/functions/audit-logger";
import { createTestTables, runCli, type TestTables, deliver, readStream } from "@sitelogix/testkit";

process.env.POWERTOOLS_METRICS_DISABLED = "true";

let t: TestTables;
let dir: string;
let trail: AuditTrail;
/** Every delivered record with the time it was given (one day apart from 2025-01-01). */
const delivered: { record: DynamoDBRecord; at: string }[] = [];
const REPORT = { PK: "REPORT#q1", SK: "METADATA" };
const cli = (...args: string[]) =>
  runCli(["audit", ...args], { SITELOGIX_TABLE_PREFIX: t.prefix, POWERTOOLS_METRICS_DISABLED: "true" });
const json = async (...args: string[]) => {
  const run = await cli(...args);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown>[];
};

beforeAll(async () => {
  t = await createTestTables("legacy");
  dir = await mkdtemp(join(tmpdir(), "audit-cli-"));
  const reports = t.names.reports;
  const personnel = t.names.personnel;
  const person = (id: string) => ({ PK: `PERSON#${id}`, SK: "PROFILE" });
  // The report's changes interleaved with the people's, as live traffic would: its stream sequence
  // numbers are not consecutive.
  const writes = [
    () =>
      t.clients.doc.send(
        new PutCommand({
          TableName: reports,
          Item: { ...REPORT, projectId: "proj_1", weather: "sun", lastModifiedBy: "user_1" },
        }),
      ),
    ...["p1", "p2"].flatMap((id) => [
      () =>
        t.clients.doc.send(
          new PutCommand({
            TableName: personnel,
            Item: { ...person(id), fullName: `Person ${id}`, lastModifiedBy: "user_1" },
          }),
        ),
      () =>
        t.clients.doc.send(
          new UpdateCommand({
            TableName: personnel,
            Key: person(id),
            UpdateExpression: "SET fullName = :f, lastModifiedBy = :u",
            ExpressionAttributeValues: { ":f": `Renamed ${id}`, ":u": "user_2" },
          }),
        ),
    ]),
    () => t.clients.doc.send(new DeleteCommand({ TableName: personnel, Key: person("p2") })),
  ];
  const reportUpdates = (
    [
      [2, "rain"],
      [3, "wind"],
      [2, "snow"],
    ] as const
  ).map(
    ([n, weather]) =>
      () =>
        t.clients.doc.send(
          new UpdateCommand({
            TableName: reports,
            Key: REPORT,
            UpdateExpression: "SET weather = :w, lastModifiedBy = :u",
            ExpressionAttributeValues: { ":w": weather, ":u": `user_${n}` },
          }),
        ),
  );
  for (const [i, write] of writes.entries()) {
    await write();
    if (i > 0) await reportUpdates[i - 1]?.();
  }
  const records = [...(await readStream(t.clients, reports)), ...(await readStream(t.clients, personnel))];
  records.forEach((record, day) => {
    record.dynamodb!.ApproximateCreationDateTime = Date.UTC(2025, 0, 1 + day, 8) / 1000;
    delivered.push({ record, at: new Date(Date.UTC(2025, 0, 1 + day, 8)).toISOString() });
  });
  trail = new AuditTrail(t.clients.dynamodb, t.names);
  const { onFailure } = await deliver(
    records,
    createAuditLoggerHandler({ trail, logger: new Logger({ logLevel: "SILENT" }) }),
  );
  expect(onFailure).toEqual([]);
  expect(delivered).toHaveLength(4 + 5);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await t?.dispose();
});

const ats = (entries: Record<string, unknown>[]) => entries.map((e) => e.at);
const expectedAts = (filter: (d: (typeof delivered)[number]) => boolean) => delivered.filter(filter).map((d) => d.at);

describe("audit query", () => {
  it("gives one record's history, oldest first, with the audit contract's fields, as one JSON array", async () => {
    const entries = await json("query", "--entity", "reports:REPORT#q1:METADATA", "--format", "json");
    expect(entries.map((e) => [e.position, e.eventName, e.actor])).toEqual([
      [1, "INSERT", "user_1"],
      [2, "MODIFY", "user_2"],
      [3, "MODIFY", "user_3"],
      [4, "MODIFY", "user_2"],
    ]);
    expect(entries[1]).toMatchObject({
      table: "reports",
      keys: REPORT,
      eventName: "MODIFY",
      eventId: delivered[1]!.record.eventID,
      sequenceNumber: delivered[1]!.record.dynamodb!.SequenceNumber,
      at: "2025-01-02T08:00:00.000Z",
      actor: "user_2",
      changed: ["lastModifiedBy", "weather"],
      old: { weather: "sun", lastModifiedBy: "user_1" },
      new: { weather: "rain", lastModifiedBy: "user_2" },
    });
    expect(entries[0]!.new).toMatchObject({ ...REPORT, projectId: "proj_1", weather: "sun" });
  });

  it(
    "selects by actor across tables and by table within a time range; a bare --to date includes " + "that day",
    async () => {
      expect(ats(await json("query", "--actor", "user_2", "--format", "json"))).toEqual(
        // Changes whose new image names user_2, and the deletion of a record user_2 changed last.
        expectedAts(
          (d) =>
            (d.record.eventName === "REMOVE" ? d.record.dynamodb!.OldImage : d.record.dynamodb!.NewImage)
              ?.lastModifiedBy?.S === "user_2",
        ),
      );
      const personnel = await json(
        "query",
        "--table",
        "sitelogix-personnel".replace(/^/, t.prefix),
        "--from",
        "2025-01-06",
        "--to",
        "2025-01-08",
        "--format",
        "json",
      );
      expect(ats(personnel)).toEqual([
        "2025-01-06T08:00:00.000Z",
        "2025-01-07T08:00:00.000Z",
        "2025-01-08T08:00:00.000Z",
      ]);
      expect(new Set(personnel.map((e) => e.table))).toEqual(new Set(["personnel"]));
      expect(await json("query", "--table", "reports", "--from", "2026-01-01", "--format", "json")).toEqual([]);
      const window = await json(
        "query",
        "--entity",
        "reports:REPORT#q1:METADATA",
        "--from",
        "2025-01-02T08:00:00Z",
        "--to",
        "2025-01-03T07:59:59Z",
        "--format",
        "json",
      );
      expect(ats(window)).toEqual(["2025-01-02T08:00:00.000Z"]);
    },
  );

  it(
    "writes ndjson (one entry per line), csv (header + one row per entry) and a readable table " + "without values",
    async () => {
      const ndjson = await cli("query", "--table", "personnel", "--format", "ndjson");
      const lines = ndjson.stdout.trimEnd().split("\n");
      expect(lines.map((l) => JSON.parse(l).at)).toEqual(
        expectedAts((d) => d.record.eventSourceARN!.includes("personnel")),
      );

      const csv = await cli("query", "--table", "personnel", "--format", "csv");
      const rows = csv.stdout.trimEnd().split("\r\n");
      expect(rows[0]).toBe(
        "at,table,keys,eventName,actor,actorBasis,changed,old,new,sequenceNumber,eventId,position,hash,prevHash",
      );
      expect(rows).toHaveLength(1 + lines.length);
      expect(rows[1]).toMatch(
        /^2025-01-05T08:00:00.000Z,personnel,"{""PK"":""PERSON#p1"",""SK"":""PROFILE""}",INSERT,user_1,/,
      );

      const table = await cli("query", "--entity", "personnel:PERSON#p2:PROFILE");
      expect(table.code).toBe(0);
      const tableLines = table.stdout.trimEnd().split("\n");
      expect(tableLines[0]).toMatch(/^AT\s+TABLE\s+KEY\s+EVENT\s+ACTOR\s+CHANGED$/);
      expect(tableLines.slice(1).map((l) => l.split(/\s{2,}/).slice(3, 5))).toEqual([
        ["INSERT", "user_1"],
        ["MODIFY", "user_2"],
        ["REMOVE", "user_2"],
      ]);
      expect(table.stdout).toContain("fullName");
      expect(table.stdout).not.toContain("Renamed");
    },
  );

  it("refuses ambiguous or malformed requests with a usage error (exit 2)", async () => {
    for (const args of [
      ["query"],
      ["query", "--actor", "user_1", "--table", "reports"],
      ["query", "--entity", "reports:REPORT#q1"],
      ["query", "--table", "nope"],
      ["query", "--table", "reports", "--from", "last week"],
    ]) {
      const run = await cli(...args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim().split("\n")[0]).toMatch(/^sitelogix-migrate: /);
    }
  });
});

describe("audit export", () => {
  it("writes the entries of a table or an actor in a time range with a SHA-256 digest file beside it", async () => {
    const out = join(dir, "reports-2025.ndjson");
    const run = await cli(
      "export",
      "--table",
      "reports",
      "--from",
      "2025-01-01",
      "--to",
      "2025-01-03",
      "--out",
      out,
      "--json",
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    const content = await readFile(out);
    const sha256 = createHash("sha256").update(content).digest("hex");
    expect(result).toMatchObject({ file: out, entries: 3, bytes: content.length, sha256 });
    expect(await readFile(`${out}.sha256`, "utf8")).toBe(`${sha256}  reports-2025.ndjson\n`);
    expect(
      content
        .toString()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).at),
    ).toEqual(expectedAts((d) => d.record.eventSourceARN!.includes("reports")).slice(0, 3));

    const csvOut = join(dir, "user_1.csv");
    const csvRun = await cli(
      "export",
      "--actor",
      "user_1",
      "--from",
      "2025-01-01",
      "--to",
      "2025-12-31",
      "--out",
      csvOut,
      "--format",
      "csv",
    );
    expect(csvRun.code, csvRun.stderr).toBe(0);
    expect(csvRun.stdout).toBe("");
    const csv = await readFile(csvOut);
    expect(csv.toString().trimEnd().split("\r\n")).toHaveLength(1 + 3);
    expect((await readFile(`${csvOut}.sha256`, "utf8")).split(" ")[0]).toBe(
      createHash("sha256").update(csv).digest("hex"),
    );
  });
});

describe("audit verify", () => {
  const entity = () => entityId("reports", REPORT);
  async function rawEntries(): Promise<Record<string, AttributeValue>[]> {
    const out = await t.clients.dynamodb.send(
      new QueryCommand({
        TableName: t.names.audit,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: entity() } },
        ConsistentRead: true,
      }),
    );
    return out.Items ?? [];
  }
  const put = (item: Record<string, AttributeValue>) =>
    t.clients.dynamodb.send(new PutItemCommand({ TableName: t.names.audit, Item: item }));
  const remove = (item: Record<string, AttributeValue>) =>
    t.clients.dynamodb.send(new DeleteItemCommand({ TableName: t.names.audit, Key: { PK: item.PK!, SK: item.SK! } }));

  async function verify(expected: 0 | 4) {
    const run = await cli("verify", "--json");
    expect(run.code, run.stderr).toBe(expected);
    return JSON.parse(run.stdout) as {
      intact: boolean;
      chains: number;
      entries: number;
      problems: { table: string; keys: Record<string, string>; position?: number; problem: string }[];
    };
  }

  it("exits 0 when every chain is intact", async () => {
    expect(await verify(0)).toMatchObject({ intact: true, chains: 3, entries: 9, problems: [] });
  });

  it("exits 4 for an edited entry, naming the item and the position, and 0 once restored", async () => {
    const [, second] = await rawEntries();
    await t.clients.dynamodb.send(
      new UpdateItemCommand({
        TableName: t.names.audit,
        Key: { PK: second!.PK!, SK: second!.SK! },
        UpdateExpression: "SET actor = :a",
        ExpressionAttributeValues: { ":a": { S: "user_9" } },
      }),
    );
    const human = await cli("verify");
    expect(human.code).toBe(4);
    expect(human.stderr).toContain(`TAMPERED  reports {"PK":"REPORT#q1","SK":"METADATA"} position 2`);
    expect(human.stderr).toMatch(/ALTERED: 3 chains, 9 entries verified/);
    expect((await verify(4)).problems).toEqual([
      expect.objectContaining({
        table: "reports",
        keys: REPORT,
        position: 2,
        problem: expect.stringMatching(/altered/),
      }),
    ]);
    await put(second!);
    await verify(0);
  });

  it("exits 4 for a deleted middle entry and for a deleted newest entry, 0 once restored", async () => {
    const entries = await rawEntries();
    const middle = entries[1]!;
    await remove(middle);
    expect((await verify(4)).problems).toEqual([
      expect.objectContaining({
        keys: REPORT,
        position: 3,
        problem: expect.stringMatching(/deleted \(positions 2–2\)/),
      }),
    ]);
    await put(middle);
    await verify(0);

    const newest = entries.filter((i) => i.SK!.S!.startsWith("E#")).at(-1)!;
    await remove(newest);
    expect((await verify(4)).problems).toEqual([
      expect.objectContaining({ keys: REPORT, position: 4, problem: expect.stringMatching(/newest 1 entry deleted/) }),
    ]);
    await put(newest);
    await verify(0);
  });

  it(
    "exits 4 for a forged entry inserted with a correct hash (in the middle, or after the newest), " +
      "and for a deleted chain head; 0 once removed or restored",
    async () => {
      const history = (await collect(trail.history("reports", REPORT))) as AuditEntry[];
      const raw = (await rawEntries())[1]!;
      // A forger who knows the format: a sequence number after entry `after`, linked to it, hashed correctly.
      const forge = (after: AuditEntry, gap: bigint) => {
        const sequenceNumber = (BigInt(after.sequenceNumber) + gap)
          .toString()
          .padStart(after.sequenceNumber.length, "0");
        const forged = {
          ...after,
          sequenceNumber,
          eventId: "forged",
          actor: "user_1",
          position: after.position + 1,
          prevHash: after.hash,
        };
        return {
          ...raw,
          SK: { S: `E#${sequenceNumber.padStart(40, "0")}` },
          sequenceNumber: { S: sequenceNumber },
          eventId: { S: "forged" },
          actor: { S: "user_1" },
          position: { N: String(forged.position) },
          prevHash: { S: after.hash },
          hash: { S: entryHash(forged) },
        };
      };
      const [second, third, newest] = [history[1]!, history[2]!, history.at(-1)!];
      expect(BigInt(third.sequenceNumber) - BigInt(second.sequenceNumber)).toBeGreaterThan(1n);
      for (const [forgedItem, position, problem] of [
        [forge(second, 1n), 3, /does not link|repeats/],
        [forge(newest, 1000n), 5, /does not match the chain head/],
      ] as const) {
        await put(forgedItem);
        expect((await verify(4)).problems).toContainEqual(
          expect.objectContaining({
            keys: REPORT,
            position: expect.any(Number),
            problem: expect.stringMatching(problem),
          }),
        );
        expect((await trail.verify()).problems.map((p) => p.position)).toContain(position);
        await remove(forgedItem);
        await verify(0);
      }

      const head = (await rawEntries()).find((i) => i.SK!.S === "H")!;
      await remove(head);
      expect((await verify(4)).problems).toEqual([
        expect.objectContaining({ keys: REPORT, problem: expect.stringMatching(/chain head is missing/) }),
      ]);
      // Limited to another table, the same check is clean.
      const personnelOnly = await cli("verify", "--table", "personnel", "--json");
      expect(personnelOnly.code).toBe(0);
      await put(head);
      await verify(0);
    },
  );
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
