// `verify`, the index gate, on DynamoDB Local: planted gaps and violations are found and named by
// key and index (without building any index: DynamoDB Local's backfill cannot be relied on), the
// result is recorded in the ledger with the scan's start time, exit codes 0/3.
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyPatch,
  createClients,
  derivePatch,
  destroyClients,
  verifyTable,
  type IndexCheck,
  type Item,
  type SiteLogixTable,
} from "@sitelogix/core";
import { createTestTables, runCli, type TestTables, ledgerOf, sweepTable } from "@sitelogix/testkit";

let t: TestTables;
let env: Record<string, string>;
const put = (table: SiteLogixTable, item: Item) =>
  t.clients.doc.send(new PutCommand({ TableName: t.names[table], Item: item }));
const audit = {
  createdAt: "2025-03-01T08:00:00.000Z",
  updatedAt: "2025-03-02T08:00:00.000Z",
  version: 1,
  lastModifiedBy: "user_1",
};
const normalizedReport = {
  projectId: "proj_001",
  project_id: "proj_001",
  managerId: "mgr_01",
  manager_id: "mgr_01",
  reportDate: "2025-03-01",
  report_date: "2025-03-01",
};

const KEYS = {
  reportEmptyStatus: { PK: "REPORT#empty-status", SK: "METADATA" },
  reportDone: { PK: "REPORT#done", SK: "METADATA" },
  numericDateLastSeen: { PK: "PERSON#num-date", SK: "PROFILE" },
  numericFullName: { PK: "PERSON#num-name", SK: "PROFILE" },
  emptyStatusNoRule: { PK: "PERSON#empty-status", SK: "PROFILE" },
  appDateLastSeen: { PK: "PERSON#app-date", SK: "PROFILE" },
  missingDateLastSeen: { PK: "PERSON#no-date", SK: "PROFILE" },
  emptyProjectId: { PK: "PROJECT#proj_001", SK: "CONSTRAINT#empty-project" },
  noProject: { PK: "PROJECT#none", SK: "CONSTRAINT#no-project" },
};

beforeAll(async () => {
  t = await createTestTables("legacy");
  env = { SITELOGIX_TABLE_PREFIX: t.prefix };
  await put("reports", {
    ...KEYS.reportEmptyStatus,
    ...audit,
    ...normalizedReport,
    status: "",
    timestamp: audit.createdAt,
  });
  await put("reports", {
    ...KEYS.reportDone,
    ...audit,
    ...normalizedReport,
    status: "draft",
    timestamp: audit.createdAt,
  });
  const person = {
    ...audit,
    fullName: "Ada Lovelace",
    full_name: "Ada Lovelace",
    employmentStatus: "active",
    status: "active",
  };
  await put("personnel", { ...KEYS.numericDateLastSeen, ...person, dateLastSeen: 20250101 });
  await put("personnel", {
    ...KEYS.numericFullName,
    ...person,
    fullName: 4242,
    full_name: undefined,
    dateLastSeen: audit.updatedAt,
  });
  // The rule cannot fill this empty status: the employment status it would map from is unknown.
  await put("personnel", {
    ...KEYS.emptyStatusNoRule,
    ...person,
    employmentStatus: "seasonal",
    status: "",
    dateLastSeen: audit.updatedAt,
  });
  // The application's own dateLastSeen, older than the latest visit: a disagreement, never a gap.
  await put("personnel", { ...KEYS.appDateLastSeen, ...person, dateLastSeen: "2025-01-01" });
  await put("personnel", {
    PK: KEYS.appDateLastSeen.PK,
    SK: "HISTORY#2025-06-30#r1",
    reportDate: "2025-06-30",
    hoursWorked: 8,
  });
  await put("personnel", { ...KEYS.missingDateLastSeen, ...person });
  await put("constraints", {
    ...KEYS.emptyProjectId,
    ...audit,
    project_id: "",
    reportDate: "2025-03-01",
    report_date: "2025-03-01",
    category: "labor",
    dateIdentified: "2025-03-01",
    status: "open",
    severity: "low",
  });
  await put("constraints", {
    ...KEYS.noProject,
    ...audit,
    reportDate: "2025-03-01",
    report_date: "2025-03-01",
    category: "labor",
    dateIdentified: "2025-03-01",
    status: "open",
    severity: "low",
  });
});
afterAll(async () => {
  await t?.dispose();
});

const index = (result: { indexes?: IndexCheck[] }, name: string) => result.indexes!.find((i) => i.index === name)!;

describe("verify", () => {
  it("finds the planted gaps and violations, names their keys per index, records a red gate and exits 3", async () => {
    const before = new Date().toISOString();
    const run = await runCli(["verify", "--json"], env);
    const after = new Date().toISOString();
    expect(run.code, run.stderr).toBe(3);
    const doc = JSON.parse(run.stdout);
    expect(doc.green).toBe(false);
    const { reports, personnel, vendors, constraints } = doc.tables;

    expect(reports).toMatchObject({ green: false, scanned: 2, gaps: 1, violations: 0 });
    expect(index(reports, "GSI3-StatusIndex").sampleGaps).toEqual([
      { key: KEYS.reportEmptyStatus, attributes: ["status"] },
    ]);
    expect(index(reports, "GSI1-ProjectIndex")).toMatchObject({ gaps: 0, violations: 0 });

    expect(personnel).toMatchObject({ green: false, gaps: 1, violations: 3, disagreements: 1 });
    expect(index(personnel, "GSI2-StatusIndex").sampleGaps).toEqual([
      { key: KEYS.missingDateLastSeen, attributes: ["dateLastSeen"] },
    ]);
    expect(index(personnel, "GSI2-StatusIndex").sampleDisagreements).toEqual([
      { key: KEYS.appDateLastSeen, attributes: ["dateLastSeen"] },
    ]);
    expect(index(personnel, "GSI2-StatusIndex").sampleViolations).toEqual(
      expect.arrayContaining([
        {
          key: KEYS.numericDateLastSeen,
          violations: [{ attribute: "dateLastSeen", problem: "key-not-string", at: "dateLastSeen", type: "N" }],
        },
        {
          key: KEYS.emptyStatusNoRule,
          violations: [
            { attribute: "status", problem: "key-empty", at: "status", type: "S" },
            { attribute: "status", problem: "unmapped-value", at: "employmentStatus", type: "S" },
          ],
        },
      ]),
    );
    expect(index(personnel, "GSI2-StatusIndex").violations).toBe(2);
    expect(index(personnel, "GSI1-NameIndex").sampleViolations).toEqual([
      {
        key: KEYS.numericFullName,
        violations: [{ attribute: "full_name", problem: "source-not-string", at: "fullName", type: "N" }],
      },
    ]);

    // A constraint without projectId is legitimately absent from the project-date index; an empty project_id is not.
    expect(constraints).toMatchObject({ green: false, gaps: 0, violations: 1 });
    expect(index(constraints, "GSI3-ProjectDateIndex").sampleViolations).toEqual([
      {
        key: KEYS.emptyProjectId,
        violations: [{ attribute: "project_id", problem: "key-empty", at: "project_id", type: "S" }],
      },
    ]);
    expect(vendors).toMatchObject({ green: true, scanned: 0 });
    expect(doc.tables["work-logs"].green).toBe(true);
    expect(doc.tables["ai-analysis-cache"].green).toBe(true);

    // The operator's view names the keys too.
    expect(run.stderr).toContain("personnel (");
    expect(run.stderr).toContain("PK=PERSON#num-date SK=PROFILE: dateLastSeen key-not-string (dateLastSeen: N)");
    expect(run.stderr).toContain("PK=REPORT#empty-status SK=METADATA: status missing or stale");
    expect(run.stderr).toContain(
      "PK=PERSON#app-date SK=PROFILE: dateLastSeen set by the application, not what the rules derive",
    );
    expect(run.stderr).not.toMatch(/2025-01-01|2025-06-30/);

    const gate = (await ledgerOf(t).latestGate("personnel"))!;
    expect(gate).toMatchObject({
      table: "personnel",
      green: false,
      gaps: 1,
      violations: 3,
      disagreements: 1,
      scanned: 6,
    });
    expect(gate.at >= before && gate.at <= after).toBe(true);
    expect(gate.at).toBe(personnel.at);
    expect(index(gate, "GSI2-StatusIndex").sampleViolations).toHaveLength(2);
    expect((await ledgerOf(t).latestGate("vendors"))!.green).toBe(true);
  });

  it("turns green (exit 0, green gates) once the sweep fixed the gaps and the application its data", async () => {
    // The application corrects what no rule may touch; the sweep does the rest.
    const app = (
      table: SiteLogixTable,
      key: Record<string, string>,
      update: string,
      values?: Record<string, unknown>,
    ) =>
      t.clients.doc.send(
        new UpdateCommand({
          TableName: t.names[table],
          Key: key,
          UpdateExpression: update,
          ...(values ? { ExpressionAttributeValues: values } : {}),
        }),
      );
    await app("personnel", KEYS.numericDateLastSeen, "REMOVE dateLastSeen");
    await app("personnel", KEYS.numericFullName, "SET fullName = :n", { ":n": "Grace Hopper" });
    await app("personnel", KEYS.emptyStatusNoRule, "SET employmentStatus = :s", { ":s": "on_leave" });
    await app("constraints", KEYS.emptyProjectId, "SET projectId = :p", { ":p": "proj_001" });
    for (const table of ["reports", "personnel", "constraints"] as const) await sweepTable(t, table);

    const run = await runCli(["verify", "--json"], env);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.green).toBe(true);
    // The application's dateLastSeen was left as it was: reported, and not in the gate's way.
    expect(doc.tables.personnel).toMatchObject({ green: true, gaps: 0, violations: 0, disagreements: 1 });
    expect(
      (await t.clients.doc.send(new GetCommand({ TableName: t.names.personnel, Key: KEYS.appDateLastSeen }))).Item
        ?.dateLastSeen,
    ).toBe("2025-01-01");
    for (const table of ["reports", "personnel", "vendors", "constraints", "work-logs", "ai-analysis-cache"] as const) {
      expect((await ledgerOf(t).latestGate(table))!.green, table).toBe(true);
    }
    const only = await runCli(["verify", "--table", "vendors"], env);
    expect(only.code).toBe(0);
    expect(only.stdout).toBe("");
    expect(only.stderr).toMatch(/^vendors \(.*\): GREEN/m);
  });

  it("re-reads flagged items: one the normalizer fixed after the scan read it is not a gap", async () => {
    await put("reports", {
      PK: "REPORT#in-flight",
      SK: "METADATA",
      ...audit,
      projectId: "proj_009",
      managerId: "mgr_02",
      reportDate: "2025-04-01",
    });
    const clients = createClients();
    try {
      // Right before the re-read, the item gets normalized (as the normalizer would, a moment late).
      let fixed = 0;
      const fixBeforeReread =
        (next: (args: { input: unknown }) => Promise<unknown>) => async (args: { input: unknown }) => {
          const input = args.input as { ConsistentRead?: boolean; Key?: { PK?: { S?: string } }; Segment?: number };
          if (
            input.ConsistentRead &&
            input.Segment === undefined &&
            input.Key?.PK?.S === "REPORT#in-flight" &&
            fixed++ === 0
          ) {
            const item = {
              PK: "REPORT#in-flight",
              SK: "METADATA",
              ...audit,
              projectId: "proj_009",
              managerId: "mgr_02",
              reportDate: "2025-04-01",
            };
            await applyPatch(
              t.clients.doc,
              t.names.reports,
              derivePatch("reports", item, { mode: "normalizer", writeTime: audit.createdAt }),
              "normalizer",
            );
          }
          return next(args);
        };
      clients.dynamodb.middlewareStack.add(fixBeforeReread as never, { step: "build", name: "fixBeforeReread" });
      const result = await verifyTable({ doc: clients.doc, table: "reports", tableName: t.names.reports });
      expect(fixed).toBe(1);
      expect(result).toMatchObject({ green: true, gaps: 0, rechecked: 1 });
    } finally {
      destroyClients(clients);
    }
    await t.clients.doc.send(
      new DeleteCommand({ TableName: t.names.reports, Key: { PK: "REPORT#in-flight", SK: "METADATA" } }),
    );
  });

  it("exits 1 with one line when a table is missing, 2 on an unknown table", async () => {
    const missing = await runCli(["verify", "--table", "reports"], { SITELOGIX_TABLE_PREFIX: "absent-" });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^sitelogix-migrate: table absent-sitelogix-reports not found/);
    const unknown = await runCli(["verify", "--table", "nope"], env);
    expect(unknown.code).toBe(2);
  });
});
