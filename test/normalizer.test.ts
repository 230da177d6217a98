// The normalizer end to end: application writes on DynamoDB Local, real streams read by the local
// event-source mapping, the Lambda handler module applying the rules. Invariants 1, 2, 4, 5 and 7.
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  derivePatch,
  derivedAttributes,
  isMigratorWrite,
  Ledger,
  MIGRATOR_ACTORS,
  MIGRATOR_MARKER,
  ownsValue,
  SUBSCRIPTIONS,
  targetAttributes,
  type DecodedRecord,
  type Item,
  type NormalizeResult,
  type SiteLogixTable,
} from "@sitelogix/core";
import { StreamRunner, type LambdaStreamHandler, type StreamRunnerOptions } from "@sitelogix/core/local-esm";
import {
  ApplicationTraffic,
  generateDataset,
  loadDataset,
  createTestTables,
  lastApplicationWrites,
  type TestTables,
  readStreamRecords,
  waitFor,
} from "@sitelogix/testkit";

// The handler module's Logger and Metrics read these when it is imported.
process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
process.env.POWERTOOLS_METRICS_DISABLED = "true";
const { createNormalizerHandler } = await import("@sitelogix/functions/normalizer");

interface Seen {
  result: NormalizeResult;
  record: DynamoDBRecord;
}

/** A runner with the real normalizer handler; `wrap` sits between the runner and the handler. */
function startRunner(
  t: TestTables,
  options: Partial<StreamRunnerOptions> & {
    wrap?: (
      event: DynamoDBStreamEvent,
      next: (event: DynamoDBStreamEvent) => ReturnType<LambdaStreamHandler>,
    ) => ReturnType<LambdaStreamHandler>;
  } = {},
) {
  const seen: Seen[] = [];
  const ledger = new Ledger(t.clients.doc, t.names.ledger);
  const real = createNormalizerHandler({
    deps: { doc: t.clients.doc, names: t.names, ledger },
    onResult: (result, record) => seen.push({ result, record }),
  });
  const { wrap, ...rest } = options;
  const runner = new StreamRunner({
    clients: t.clients,
    names: t.names,
    ledger,
    subscribers: ["normalizer"],
    tables: ["reports", "personnel", "vendors", "constraints"],
    pollIntervalMs: 100,
    handlers: { normalizer: wrap ? (event, context) => wrap(event, (e) => real(e, context)) : real },
    ...rest,
  });
  const done = runner.run();
  return {
    runner,
    ledger,
    seen,
    async stop() {
      runner.stop();
      await done;
    },
  };
}

const keyOf = (record: DynamoDBRecord) => `${record.dynamodb?.Keys?.PK?.S}|${record.dynamodb?.Keys?.SK?.S}`;

describe("normalizer on live streams", () => {
  let t: TestTables;
  let run: ReturnType<typeof startRunner>;
  /** Tests may hold an invocation back (invariant 2) through this hook. */
  let beforeInvoke: ((event: DynamoDBStreamEvent) => Promise<void>) | undefined;

  const put = (table: SiteLogixTable, item: Item) =>
    t.clients.doc.send(new PutCommand({ TableName: t.names[table], Item: item }));
  const get = async (table: SiteLogixTable, key: Record<string, string>) =>
    (await t.clients.doc.send(new GetCommand({ TableName: t.names[table], Key: key, ConsistentRead: true }))).Item;
  const update = (table: SiteLogixTable, key: Record<string, string>, set: Record<string, unknown>) =>
    t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names[table],
        Key: key,
        UpdateExpression: `SET ${Object.keys(set)
          .map((_, i) => `#a${i} = :v${i}`)
          .join(", ")}`,
        ExpressionAttributeNames: Object.fromEntries(Object.keys(set).map((k, i) => [`#a${i}`, k])),
        ExpressionAttributeValues: Object.fromEntries(Object.values(set).map((v, i) => [`:v${i}`, v])),
      }),
    );
  /** Waits until the item's attributes match (the normalizer has caught up with it). */
  const eventually = (table: SiteLogixTable, key: Record<string, string>, expected: Item) =>
    waitFor(
      async () => {
        const item = await get(table, key);
        return item && Object.entries(expected).every(([k, v]) => item[k] === v) ? item : undefined;
      },
      `${table} ${key.PK} to become ${JSON.stringify(expected)}`,
    );

  beforeAll(async () => {
    t = await createTestTables("legacy");
    run = startRunner(t, {
      wrap: async (event, next) => {
        await beforeInvoke?.(event);
        return next(event);
      },
    });
  });
  afterAll(async () => {
    await run?.stop();
    await t?.dispose();
  });

  it("new writes converge: every target attribute of every table is right", async () => {
    const before = Date.now();
    await put("reports", {
      PK: "REPORT#n1",
      SK: "METADATA",
      projectId: "proj_001",
      managerId: "mgr_01",
      reportDate: "2025-11-02",
      createdAt: "2025-11-02T07:00:00.000Z",
      version: 1,
    });
    await put("reports", {
      PK: "REPORT#n2",
      SK: "METADATA",
      projectId: "proj_002",
      managerId: "mgr_02",
      reportDate: "2025-11-03",
      version: 1,
    });
    await put("personnel", {
      PK: "PERSON#n1",
      SK: "PROFILE",
      fullName: "Ada Lovelace",
      employmentStatus: "on_leave",
      createdAt: "2025-01-01T00:00:00.000Z",
      updatedAt: "2025-02-01T00:00:00.000Z",
    });
    await put("personnel", {
      PK: "PERSON#n2",
      SK: "PROFILE",
      fullName: "Alan Turing",
      createdAt: "2025-01-05T00:00:00.000Z",
    });
    await put("vendors", {
      PK: "VENDOR#n1",
      SK: "PROFILE",
      companyName: "Hopper Steel",
      createdAt: "2025-03-01T00:00:00.000Z",
    });
    await put("vendors", {
      PK: "VENDOR#n2",
      SK: "PROFILE",
      companyName: "Liskov Rentals",
      vendorType: "rental",
      vendor_type: "",
      updatedAt: "2025-03-02T00:00:00.000Z",
    });
    await put("constraints", {
      PK: "PROJECT#proj_001",
      SK: "CONSTRAINT#n1",
      projectId: "proj_001",
      reportDate: "2025-11-04",
      category: "labor",
      status: "open",
    });

    await eventually(
      "reports",
      { PK: "REPORT#n1", SK: "METADATA" },
      {
        project_id: "proj_001",
        manager_id: "mgr_01",
        report_date: "2025-11-02",
        status: "published",
        timestamp: "2025-11-02T07:00:00.000Z",
      },
    );
    // No createdAt: the normalizer uses the write's stream time (to the minute on DynamoDB Local).
    const n2 = await eventually(
      "reports",
      { PK: "REPORT#n2", SK: "METADATA" },
      { project_id: "proj_002", manager_id: "mgr_02", report_date: "2025-11-03", status: "published" },
    );
    const written = Date.parse(n2.timestamp as string);
    expect(written).toBeGreaterThan(before - 61_000);
    expect(written).toBeLessThanOrEqual(Date.now());
    await eventually(
      "personnel",
      { PK: "PERSON#n1", SK: "PROFILE" },
      { full_name: "Ada Lovelace", status: "inactive", dateLastSeen: "2025-02-01T00:00:00.000Z" },
    );
    await eventually(
      "personnel",
      { PK: "PERSON#n2", SK: "PROFILE" },
      { full_name: "Alan Turing", status: "active", dateLastSeen: "2025-01-05T00:00:00.000Z" },
    );
    await eventually(
      "vendors",
      { PK: "VENDOR#n1", SK: "PROFILE" },
      { company_name: "Hopper Steel", vendor_type: "supplier", dateLastSeen: "2025-03-01T00:00:00.000Z" },
    );
    await eventually(
      "vendors",
      { PK: "VENDOR#n2", SK: "PROFILE" },
      { company_name: "Liskov Rentals", vendor_type: "rental", dateLastSeen: "2025-03-02T00:00:00.000Z" },
    );
    const c = await eventually(
      "constraints",
      { PK: "PROJECT#proj_001", SK: "CONSTRAINT#n1" },
      { project_id: "proj_001", report_date: "2025-11-04" },
    );
    expect(c[MIGRATOR_MARKER.by]).toBe(MIGRATOR_ACTORS.normalizer);

    // A visit (HISTORY#) moves the person's dateLastSeen to its reportDate.
    await put("personnel", {
      PK: "PERSON#n1",
      SK: "HISTORY#2025-10-30#r00001",
      reportDate: "2025-10-30",
      hoursWorked: 8,
    });
    await eventually("personnel", { PK: "PERSON#n1", SK: "PROFILE" }, { dateLastSeen: "2025-10-30" });
    expect(await get("personnel", { PK: "PERSON#n1", SK: "HISTORY#2025-10-30#r00001" })).not.toHaveProperty(
      MIGRATOR_MARKER.by,
    );
  });

  it(
    "a deleted visit moves dateLastSeen back to the latest remaining one " +
      "(the REMOVE passes the normalizer's filter)",
    async () => {
      const person = { PK: "PERSON#v1", SK: "PROFILE" };
      await put("personnel", {
        ...person,
        fullName: "Edsger Dijkstra",
        employmentStatus: "active",
        updatedAt: "2025-01-01T00:00:00.000Z",
      });
      await put("personnel", { PK: "PERSON#v1", SK: "HISTORY#a", reportDate: "2025-10-01" });
      await put("personnel", { PK: "PERSON#v1", SK: "HISTORY#b", reportDate: "2025-10-20" });
      await eventually("personnel", person, { dateLastSeen: "2025-10-20" });
      await t.clients.doc.send(
        new DeleteCommand({ TableName: t.names.personnel, Key: { PK: "PERSON#v1", SK: "HISTORY#b" } }),
      );
      await eventually("personnel", person, { dateLastSeen: "2025-10-01" });
    },
  );

  it("a derived copy follows its source when the application changes projectId or fullName", async () => {
    const report = { PK: "REPORT#f1", SK: "METADATA" };
    const person = { PK: "PERSON#f1", SK: "PROFILE" };
    await put("reports", {
      ...report,
      projectId: "proj_010",
      managerId: "mgr_01",
      reportDate: "2025-11-05",
      createdAt: "2025-11-05T08:00:00.000Z",
      version: 1,
    });
    await put("personnel", {
      ...person,
      fullName: "Grace Hopper",
      employmentStatus: "active",
      createdAt: "2025-01-01T00:00:00.000Z",
    });
    await eventually("reports", report, { project_id: "proj_010" });
    await eventually("personnel", person, { full_name: "Grace Hopper" });

    await update("reports", report, { projectId: "proj_011", version: 2 });
    await update("personnel", person, { fullName: "Grace Brewster Hopper", employmentStatus: "terminated" });
    const r = await eventually("reports", report, { project_id: "proj_011" });
    await eventually("personnel", person, { full_name: "Grace Brewster Hopper", status: "archived" });
    // Invariant 5: the application's own fields are as it left them.
    expect(Number(r.version)).toBe(2);
  });

  it(
    "owned values follow: " +
      "status follows employmentStatus, dateLastSeen a newer visit, timestamp an edited createdAt",
    async () => {
      const person = { PK: "PERSON#own1", SK: "PROFILE" };
      await put("personnel", {
        ...person,
        fullName: "Mary Jackson",
        employmentStatus: "active",
        createdAt: "2025-01-01T00:00:00.000Z",
        updatedAt: "2025-01-02T00:00:00.000Z",
      });
      await eventually("personnel", person, { status: "active", dateLastSeen: "2025-01-02T00:00:00.000Z" });
      // Old code updates only employmentStatus (and updatedAt): the migrator's status and dateLastSeen follow.
      await update("personnel", person, { employmentStatus: "on_leave", updatedAt: "2025-02-01T00:00:00.000Z" });
      await eventually("personnel", person, { status: "inactive", dateLastSeen: "2025-02-01T00:00:00.000Z" });
      await put("personnel", { PK: person.PK, SK: "HISTORY#2025-09-01#r1", reportDate: "2025-09-01", hoursWorked: 8 });
      await eventually("personnel", person, { dateLastSeen: "2025-09-01" });

      const report = { PK: "REPORT#own1", SK: "METADATA" };
      await put("reports", {
        ...report,
        projectId: "proj_070",
        managerId: "mgr_07",
        reportDate: "2025-11-06",
        createdAt: "2025-11-06T08:00:00.000Z",
        version: 1,
      });
      await eventually("reports", report, { timestamp: "2025-11-06T08:00:00.000Z" });
      await update("reports", report, { createdAt: "2025-11-05T08:00:00.000Z" });
      await eventually("reports", report, { timestamp: "2025-11-05T08:00:00.000Z" });
    },
  );

  it(
    "no lost update: " +
      "a status or dateLastSeen the application set after the migrator did stays when their inputs change",
    async () => {
      const person = { PK: "PERSON#own2", SK: "PROFILE" };
      await put("personnel", {
        ...person,
        fullName: "Dorothy Vaughan",
        employmentStatus: "active",
        createdAt: "2025-01-01T00:00:00.000Z",
      });
      await eventually("personnel", person, { status: "active", dateLastSeen: "2025-01-01T00:00:00.000Z" });
      await update("personnel", person, { status: "archived", dateLastSeen: "2025-03-03" });
      await update("personnel", person, { employmentStatus: "on_leave" });
      await put("personnel", { PK: person.PK, SK: "HISTORY#2025-10-01#r2", reportDate: "2025-10-01", hoursWorked: 8 });
      // The visit's record is handled after every earlier record of the person (one item's records run in order).
      await waitFor(
        () => run.seen.find((s) => keyOf(s.record) === `${person.PK}|HISTORY#2025-10-01#r2`),
        "the visit to be normalized",
      );
      expect(await get("personnel", person)).toMatchObject({
        status: "archived",
        dateLastSeen: "2025-03-03",
        employmentStatus: "on_leave",
      });

      const report = { PK: "REPORT#own2", SK: "METADATA" };
      await put("reports", {
        ...report,
        projectId: "proj_071",
        managerId: "mgr_07",
        reportDate: "2025-11-06",
        createdAt: "2025-11-06T08:00:00.000Z",
      });
      await eventually("reports", report, { timestamp: "2025-11-06T08:00:00.000Z" });
      await update("reports", report, { timestamp: "2025-11-06T09:15:00.000Z" });
      await update("reports", report, { createdAt: "2025-11-04T08:00:00.000Z", projectId: "proj_072" });
      await eventually("reports", report, { project_id: "proj_072" });
      expect((await get("reports", report))?.timestamp).toBe("2025-11-06T09:15:00.000Z");
    },
  );

  it("a full-item put by old code drops the ownership record and the value: the migrator derives again", async () => {
    const person = { PK: "PERSON#own3", SK: "PROFILE" };
    const profile = {
      ...person,
      fullName: "Katherine Goble",
      employmentStatus: "active",
      createdAt: "2025-01-01T00:00:00.000Z",
    };
    await put("personnel", profile);
    await eventually("personnel", person, { status: "active" });
    await put("personnel", { ...profile, employmentStatus: "terminated" });
    const after = await eventually("personnel", person, {
      status: "archived",
      dateLastSeen: "2025-01-01T00:00:00.000Z",
    });
    expect(ownsValue(after, "status")).toBe(true);
  });

  it("a status set by the application is never overwritten", async () => {
    const draft = { PK: "REPORT#s1", SK: "METADATA" };
    const later = { PK: "REPORT#s2", SK: "METADATA" };
    await put("reports", {
      ...draft,
      projectId: "proj_020",
      managerId: "mgr_01",
      reportDate: "2025-11-06",
      status: "draft",
      createdAt: "2025-11-06T08:00:00.000Z",
    });
    await put("reports", {
      ...later,
      projectId: "proj_021",
      managerId: "mgr_01",
      reportDate: "2025-11-06",
      createdAt: "2025-11-06T09:00:00.000Z",
    });
    await eventually("reports", draft, { project_id: "proj_020", status: "draft" });
    await eventually("reports", later, { status: "published" });
    await update("reports", later, { status: "archived", projectId: "proj_022" });
    await eventually("reports", later, { project_id: "proj_022", status: "archived" });
  });

  it(
    "invariant 4: no loops — " + "one application write yields exactly two stream records, the second needing no work",
    async () => {
      const key = { PK: "REPORT#loop1", SK: "METADATA" };
      await put("reports", {
        ...key,
        projectId: "proj_030",
        managerId: "mgr_03",
        reportDate: "2025-11-07",
        createdAt: "2025-11-07T08:00:00.000Z",
        version: 1,
        updatedAt: "2025-11-07T08:00:00.000Z",
        lastModifiedBy: "user_1",
      });
      // Wait until the runner has handled the normalizer's own record (delivery implies its invocation is over).
      const own = await waitFor(
        () => run.seen.find((s) => keyOf(s.record) === "REPORT#loop1|METADATA" && s.record.eventName === "MODIFY"),
        "the normalizer's own record",
      );
      const records = (await readStreamRecords(t.clients, t.names.reports)).filter((r) => r.keys.PK === key.PK);
      expect(records.map((r) => r.eventName)).toEqual(["INSERT", "MODIFY"]);
      const [app, migrator] = records as [DecodedRecord, DecodedRecord];
      expect(run.seen.find((s) => s.record.dynamodb?.SequenceNumber === app.sequenceNumber)?.result.outcome).toBe(
        "applied",
      );
      expect(own.record.dynamodb?.SequenceNumber).toBe(migrator.sequenceNumber);
      expect(own.result.outcome).toBe("alreadyNormalized");
      expect(isMigratorWrite(migrator)).toBe(true);
      // The second record needs no work: the rules derive nothing from it.
      expect(
        derivePatch("reports", migrator.newImage!, { mode: "normalizer", writeTime: migrator.approximateCreationTime })
          .set,
      ).toEqual([]);
      // Invariant 5: the normalizer's write changed only target attributes and its own markers.
      const changed = Object.keys({ ...migrator.oldImage, ...migrator.newImage }).filter(
        (k) => JSON.stringify(migrator.oldImage?.[k]) !== JSON.stringify(migrator.newImage?.[k]),
      );
      expect(changed.sort()).toEqual([...targetAttributes("reports"), ...Object.values(MIGRATOR_MARKER)].sort());
    },
  );

  it("invariant 2: no resurrection — an item deleted while its record is pending stays deleted", async () => {
    const key = { PK: "REPORT#gone1", SK: "METADATA" };
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held = false;
    beforeInvoke = async (event) => {
      if (event.Records.some((r) => keyOf(r) === "REPORT#gone1|METADATA" && r.eventName === "INSERT")) {
        held = true;
        await released;
      }
    };
    try {
      await put("reports", { ...key, projectId: "proj_040", managerId: "mgr_04", reportDate: "2025-11-08" });
      await waitFor(() => held, "the INSERT to be delivered");
      await t.clients.doc.send(new DeleteCommand({ TableName: t.names.reports, Key: key }));
      release();
      const seen = await waitFor(
        () => run.seen.find((s) => keyOf(s.record) === "REPORT#gone1|METADATA"),
        "the INSERT to be normalized",
      );
      expect(seen.result.outcome).toBe("gone");
    } finally {
      beforeInvoke = undefined;
    }
    expect(await get("reports", key)).toBeUndefined();
    const records = (await readStreamRecords(t.clients, t.names.reports)).filter((r) => r.keys.PK === key.PK);
    expect(records.map((r) => r.eventName)).toEqual(["INSERT", "REMOVE"]);
  });

  it(
    "data the rules cannot fix is recorded in the ledger with keys and reasons only, " + "and the rest is written",
    async () => {
      const person = { PK: "PERSON#bad1", SK: "PROFILE" };
      await put("personnel", {
        ...person,
        fullName: 4242,
        employmentStatus: "seasonal",
        phone: "+1-555-0100",
        createdAt: "2025-01-01T00:00:00.000Z",
      });
      // Too big to take the targets: DynamoDB refuses the write (400 KB item limit).
      const big = {
        PK: "REPORT#big1",
        SK: "METADATA",
        projectId: "proj_050",
        managerId: "mgr_05",
        reportDate: "2025-11-09",
        createdAt: "2025-11-09T08:00:00.000Z",
      };
      const used = Object.entries(big).reduce((n, [k, v]) => n + k.length + v.length, 0) + "transcript".length;
      await put("reports", { ...big, transcript: "x".repeat(400 * 1024 - used - 8) });

      await eventually("personnel", person, { dateLastSeen: "2025-01-01T00:00:00.000Z" });
      const personnel = await waitFor(async () => {
        const v = await run.ledger.normalizerViolations("personnel");
        return v.some((e) => e.key.PK === person.PK) ? v : undefined;
      }, "the personnel violation");
      const entry = personnel.find((e) => e.key.PK === person.PK)!;
      expect(entry.key).toEqual(person);
      expect(entry.violations.map((v) => `${v.attribute}:${v.problem}`).sort()).toEqual([
        "full_name:source-not-string",
        "status:unmapped-value",
      ]);
      expect(JSON.stringify(entry)).not.toMatch(/4242|seasonal|555-0100/);

      const reports = await waitFor(async () => {
        const v = await run.ledger.normalizerViolations("reports");
        return v.some((e) => e.key.PK === big.PK) ? v : undefined;
      }, "the rejected report");
      const rejected = reports.find((e) => e.key.PK === big.PK)!;
      expect(rejected.outcome).toBe("rejected");
      expect(rejected.reason).toMatch(/size/i);
      expect((await get("reports", { PK: big.PK, SK: big.SK }))?.project_id).toBeUndefined();
      // Recorded, not retried: nothing went to the on-failure sink.
      expect(await run.ledger.streamFailures("normalizer", "reports")).toEqual([]);
    },
  );

  it("records the normalizer as live for each table it serves", async () => {
    for (const table of ["reports", "personnel", "vendors", "constraints"] as const) {
      const state = await run.ledger.tableState(table);
      expect(Date.parse(state.normalizerLiveAt!)).toBeLessThanOrEqual(Date.now());
    }
  });
});

describe("invariant 1: no lost update", () => {
  it("under concurrent application traffic, every normalizer write is exactly what the state it landed on " +
    "needed, and everything converges", async () => {
    const t = await createTestTables("legacy");
    const run = startRunner(t);
    try {
      const rows = [...generateDataset({ items: 150, seed: 11, transcriptBytes: 100 })];
      await loadDataset(t.clients.doc, t.names, rows);
      const traffic = new ApplicationTraffic(t.clients.doc, t.names, {
        opsPerSecond: 40,
        seed: 5,
        journal: true,
        derivedWrites: true,
      });
      for (const row of rows) traffic.know(row.table, { PK: row.item.PK as string, SK: row.item.SK as string });
      traffic.start();
      await new Promise((r) => setTimeout(r, 4000));
      const stats = await traffic.stop();
      expect(stats.update + stats.fullPut).toBeGreaterThan(20);
      expect(stats.errors).toBe(0);

      const tables = ["reports", "personnel", "vendors", "constraints"] as const;
      // Converged: the rules derive nothing more for any item that exists.
      await waitFor(
        async () => {
          for (const table of tables) {
            const { Items = [] } = await t.clients.doc.send(
              new ScanCommand({ TableName: t.names[table], ConsistentRead: true }),
            );
            for (const item of Items) {
              const history = table === "personnel" ? (item.dateLastSeen as string | undefined) : undefined;
              const patch = derivePatch(table, item, {
                mode: "normalizer",
                writeTime: "2025-01-01T00:00:00.000Z",
                ...(history ? { latestHistoryReportDate: history } : {}),
              });
              if (patch.set.length > 0) return false;
            }
          }
          return true;
        },
        "every item to converge",
        90_000,
      );

      let migratorWrites = 0;
      for (const table of tables) {
        for (const r of await readStreamRecords(t.clients, t.names[table])) {
          if (!isMigratorWrite(r)) continue;
          migratorWrites++;
          const before = r.oldImage!;
          const after = r.newImage!;
          // The write is the patch derived from the very state it landed on (context values as written).
          const patch = derivePatch(table, before, {
            mode: "normalizer",
            writeTime: String(after.timestamp ?? ""),
            ...(typeof after.dateLastSeen === "string" ? { latestHistoryReportDate: after.dateLastSeen } : {}),
          });
          // (A subset: the patch came from an earlier image, and an old-code full put may have removed more since.)
          const changed = Object.keys({ ...before, ...after }).filter(
            (k) =>
              JSON.stringify(before[k]) !== JSON.stringify(after[k]) &&
              !Object.values(MIGRATOR_MARKER).includes(k as never),
          );
          expect(changed.length, `${table} ${r.keys.PK}`).toBeGreaterThan(0);
          for (const attribute of changed) {
            expect(after[attribute], `${table} ${r.keys.PK} ${attribute}`).toBe(
              patch.set.find((a) => a.attribute === attribute)?.value,
            );
          }
        }
      }
      expect(migratorWrites).toBeGreaterThan(60);
      // Zero lost writes: every attribute holds what the application wrote last, derived ones included.
      // One exception, by definition (DESIGN.md section 4): an application write of the very value the
      // migrator owned changes nothing on the item, so the value stays the migrator's and follows its inputs.
      const records = new Map<string, DecodedRecord[]>();
      for (const table of tables)
        for (const r of await readStreamRecords(t.clients, t.names[table]))
          records.set(`${table}|${r.keys.PK}|${r.keys.SK}`, [
            ...(records.get(`${table}|${r.keys.PK}|${r.keys.SK}`) ?? []),
            r,
          ]);
      const rewroteOwnedValue = (id: string, attribute: string, value: unknown, version: number) =>
        (records.get(id) ?? []).some(
          (r) =>
            Number(r.newImage?.version) === version &&
            Number(r.oldImage?.version) === version - 1 &&
            r.oldImage?.[attribute] === value &&
            ownsValue(r.oldImage ?? {}, attribute),
        );
      let derived = 0;
      for (const [id, { table, key, values, versions }] of lastApplicationWrites(traffic.journal)) {
        const now = (
          await t.clients.doc.send(new GetCommand({ TableName: t.names[table], Key: key, ConsistentRead: true }))
        ).Item;
        for (const [attribute, value] of Object.entries(values)) {
          if (value === "" && targetAttributes(table).includes(attribute)) continue;
          if (derivedAttributes(table).includes(attribute)) {
            if (rewroteOwnedValue(id, attribute, value, versions[attribute]!)) continue;
            derived++;
          }
          expect(now?.[attribute], `${id} ${attribute}`).toEqual(value);
        }
      }
      expect(derived).toBeGreaterThan(5);
      // The application's own statuses survived the normalizer
      // (dataset rows with status "draft" the traffic left alone).
      const touched = new Set(traffic.journal.map((w) => `${w.table}|${w.key.PK}|${w.key.SK}`));
      for (const row of rows.filter(
        (r) => r.table === "reports" && r.item.status === "draft" && !touched.has(`reports|${r.item.PK}|${r.item.SK}`),
      )) {
        const item = (
          await t.clients.doc.send(
            new GetCommand({ TableName: t.names.reports, Key: { PK: row.item.PK, SK: row.item.SK } }),
          )
        ).Item;
        if (item) expect(item.status).toBe("draft");
      }
    } finally {
      await run.stop();
      await t.dispose();
    }
  }, 180_000);
});

describe("invariant 7: bad input is contained", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(async () => {
    await t?.dispose();
  });

  const poisonSubscriptions = SUBSCRIPTIONS.map((s) =>
    s.name === "normalizer" ? { ...s, maximumRetryAttempts: 2 } : s,
  );
  const report = (id: string) => ({
    PK: `REPORT#${id}`,
    SK: "METADATA",
    projectId: "proj_060",
    managerId: "mgr_06",
    reportDate: "2025-11-10",
    createdAt: "2025-11-10T08:00:00.000Z",
  });
  const normalized = (table: SiteLogixTable, key: Record<string, string>, attribute: string) =>
    waitFor(
      async () =>
        (await t.clients.doc.send(new GetCommand({ TableName: t.names[table], Key: key, ConsistentRead: true })))
          .Item?.[attribute],
      `${key.PK} to be normalized`,
    );

  it("a record the handler fails is retried, then lands in the on-failure sink with its sequence number; its " +
    "neighbours and other tables flow", async () => {
    let poisonDeliveries = 0;
    const run = startRunner(t, {
      subscriptions: poisonSubscriptions,
      // The poison item fails on its own (a per-record failure, as the handler reports it); the rest is normalized.
      wrap: async (event, next) => {
        const poison = event.Records.filter((r) => r.dynamodb?.Keys?.PK?.S === "REPORT#poison1");
        poisonDeliveries += poison.length;
        const response = await next({ Records: event.Records.filter((r) => !poison.includes(r)) });
        return {
          batchItemFailures: [
            ...(response?.batchItemFailures ?? []),
            ...poison.map((r) => ({ itemIdentifier: r.dynamodb!.SequenceNumber! })),
          ],
        };
      },
    });
    try {
      for (const id of ["before1", "poison1", "after1"])
        await t.clients.doc.send(new PutCommand({ TableName: t.names.reports, Item: report(id) }));
      await t.clients.doc.send(
        new PutCommand({
          TableName: t.names.vendors,
          Item: {
            PK: "VENDOR#p1",
            SK: "PROFILE",
            companyName: "Ritchie Electric",
            createdAt: "2025-01-01T00:00:00.000Z",
          },
        }),
      );
      await normalized("reports", { PK: "REPORT#before1", SK: "METADATA" }, "project_id");
      await normalized("reports", { PK: "REPORT#after1", SK: "METADATA" }, "project_id");
      await normalized("vendors", { PK: "VENDOR#p1", SK: "PROFILE" }, "vendor_type");

      const [failure] = await waitFor(async () => {
        const f = await run.ledger.streamFailures("normalizer", "reports");
        return f.length > 0 ? f : undefined;
      }, "the on-failure entry");
      const poisonRecord = (await readStreamRecords(t.clients, t.names.reports)).find(
        (r) => r.keys.PK === "REPORT#poison1",
      )!;
      expect(failure).toMatchObject({
        condition: "RetryAttemptsExhausted",
        attempts: 3,
        startSequenceNumber: poisonRecord.sequenceNumber,
      });
      expect(failure!.records.map((r) => r.sequenceNumber)).toContain(poisonRecord.sequenceNumber);
      expect(failure!.records.find((r) => r.sequenceNumber === poisonRecord.sequenceNumber)?.keys).toEqual({
        PK: "REPORT#poison1",
        SK: "METADATA",
      });
      expect(poisonDeliveries).toBe(3);
      // The shard moved on: a later write is normalized.
      await t.clients.doc.send(new PutCommand({ TableName: t.names.reports, Item: report("later1") }));
      await normalized("reports", { PK: "REPORT#later1", SK: "METADATA" }, "project_id");
      expect(
        (
          await t.clients.doc.send(
            new GetCommand({ TableName: t.names.reports, Key: { PK: "REPORT#poison1", SK: "METADATA" } }),
          )
        ).Item?.project_id,
      ).toBeUndefined();
    } finally {
      await run.stop();
    }
  }, 120_000);
});
