// `status` through the phases of a rehearsal on DynamoDB Local: legacy → expand → swept → red gate →
// gated → indexing (a CREATING index) → indexed → contracted, asserting what it reports at each step.
import { UpdateTableCommand, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  defaultTableNames,
  gsisIn,
  Ledger,
  migrationStatus,
  type MigrationStatus,
  type SiteLogixTable,
  type SweepRun,
} from "@sitelogix/core";
import { createTestTables, runCli, uniquePrefix, type TestTables } from "@sitelogix/testkit";

let t: TestTables;
let ledger: Ledger;
const view = (tables: SiteLogixTable[] = ["reports"]) => migrationStatus(t.clients.dynamodb, ledger, t.names, tables);
const of = (status: MigrationStatus, table: SiteLogixTable) => status.tables.find((x) => x.table === table)!;

beforeAll(async () => {
  t = await createTestTables("legacy");
  ledger = new Ledger(t.clients.doc, t.names.ledger);
});
afterAll(async () => {
  await t?.dispose();
});

async function addIndex(table: SiteLogixTable, name: string) {
  const gsi = gsisIn(table, "contract").find((g) => g.name === name)!;
  await t.clients.dynamodb.send(
    new UpdateTableCommand({
      TableName: t.names[table],
      AttributeDefinitions: [gsi.hashKey, gsi.rangeKey]
        .filter((a): a is string => !!a)
        .map((AttributeName) => ({ AttributeName, AttributeType: "S" })),
      GlobalSecondaryIndexUpdates: [
        {
          Create: {
            IndexName: gsi.name,
            KeySchema: [
              { AttributeName: gsi.hashKey, KeyType: "HASH" },
              ...(gsi.rangeKey ? [{ AttributeName: gsi.rangeKey, KeyType: "RANGE" as const }] : []),
            ],
            Projection: { ProjectionType: "ALL" },
          },
        },
      ],
    }),
  );
}

async function untilActive(table: SiteLogixTable) {
  for (let i = 0; i < 100; i++) {
    const s = of(await view([table]), table);
    if (s.gsis.every((g) => g.state === "ACTIVE")) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("index never became ACTIVE");
}

describe("status through a rehearsal", () => {
  it("walks the phases of the reports table and names the next step at each", async () => {
    let s = await view();
    expect(of(s, "reports")).toMatchObject({
      exists: true,
      phase: "legacy",
      stream: "NEW_AND_OLD_IMAGES",
      pitr: "not supported by this endpoint",
      deletionProtection: false,
      missingGsis: ["GSI3-StatusIndex"],
    });
    expect(s.next.action).toBe("sitelogix-migrate backup");

    await ledger.recordBackup({
      table: "reports",
      tableName: t.names.reports,
      backupName: "b",
      backupArn: "arn:backup",
      createdAt: "2025-11-01T00:00:00.000Z",
      status: "AVAILABLE",
    });
    s = await view();
    expect(of(s, "reports").latestBackup?.backupArn).toBe("arn:backup");
    expect(s.next).toMatchObject({
      table: "reports",
      action: "deploy the expand phase (streams, normalizer, audit logger)",
    });

    await ledger.markNormalizerLive("reports", "2025-11-02T00:00:00.000Z");
    s = await view();
    expect(of(s, "reports").phase).toBe("expand");
    expect(s.next).toMatchObject({
      action: "sitelogix-migrate sweep --table reports",
      why: "no finished sweep since the normalizer went live",
    });

    const sweep: SweepRun = {
      table: "reports",
      sweepId: "2025-11-03T00:00:00.000Z-a",
      startedAt: "2025-11-03T00:00:00.000Z",
      status: "running",
      totalSegments: 4,
    };
    await ledger.put({ PK: "TABLE#reports", SK: `SWEEP#${sweep.sweepId}` }, sweep);
    s = await view();
    expect(s.next.why).toBe("its last sweep is running (resume it with --resume)");

    await ledger.put(
      { PK: "TABLE#reports", SK: `SWEEP#${sweep.sweepId}` },
      { ...sweep, status: "finished", finishedAt: "2025-11-03T01:00:00.000Z" },
    );
    s = await view();
    expect(of(s, "reports").phase).toBe("swept");
    expect(s.next.action).toBe("sitelogix-migrate verify --table reports");

    await ledger.recordGate({ table: "reports", at: "2025-11-03T02:00:00.000Z", green: false, gaps: 3, violations: 1 });
    s = await view();
    expect(of(s, "reports")).toMatchObject({ phase: "swept", lastGate: { green: false, gaps: 3 } });
    expect(s.next.why).toBe("its last gate is red (3 gaps, 1 violations)");

    await ledger.recordGate({ table: "reports", at: "2025-11-03T03:00:00.000Z", green: true, gaps: 0, violations: 0 });
    s = await view();
    expect(of(s, "reports").phase).toBe("gated");
    expect(s.next).toMatchObject({
      action: "deploy the index phase",
      why: `${t.names.reports} is gated green but lacks GSI3-StatusIndex`,
    });

    await addIndex("reports", "GSI3-StatusIndex");
    s = await view();
    expect(of(s, "reports").gsis.find((g) => g.name === "GSI3-StatusIndex")).toMatchObject({
      state: "CREATING",
      role: "target",
    });
    expect(of(s, "reports").phase).toBe("indexing");
    expect(s.next.action).toBe("wait for the new GSIs to become ACTIVE");

    const done = await untilActive("reports");
    expect(done).toMatchObject({ phase: "contracted", missingGsis: [] });
  });

  it("personnel stays indexed, not contracted, until GSI2-ProjectIndex is dropped", async () => {
    await addIndex("personnel", "GSI2-StatusIndex");
    await untilActive("personnel");
    let s = await view(["personnel"]);
    expect(of(s, "personnel")).toMatchObject({ phase: "indexed" });
    expect(of(s, "personnel").gsis.find((g) => g.name === "GSI2-ProjectIndex")?.role).toBe("retiring");
    expect(s.next.action).toMatch(/contract phase/);
    await t.clients.dynamodb.send(
      new UpdateTableCommand({
        TableName: t.names.personnel,
        GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: "GSI2-ProjectIndex" } }],
      }),
    );
    await waitUntilTableExists({ client: t.clients.dynamodb, maxWaitTime: 60 }, { TableName: t.names.personnel });
    for (let i = 0; i < 50 && of(s, "personnel").phase !== "contracted"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      s = await view(["personnel"]);
    }
    expect(of(s, "personnel").phase).toBe("contracted");
  });

  it("a missing table and a missing ledger are reported in the view, not as a crash", async () => {
    const prefix = uniquePrefix();
    const run = await runCli(["status", "--json", "--table", "vendors"], { SITELOGIX_TABLE_PREFIX: prefix });
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as MigrationStatus;
    expect(out.ledgerError).toMatch(/ResourceNotFoundException/);
    expect(out.tables[0]).toMatchObject({
      exists: false,
      phase: "absent",
      tableName: defaultTableNames(prefix).vendors,
    });
    expect(out.next.action).toBe("deploy the expand phase");
  });

  it("an unreachable endpoint is reported per table, exit 0", async () => {
    const run = await runCli(["status", "--table", "reports"], {
      AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
      AWS_MAX_ATTEMPTS: "1",
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/error: .*ECONNREFUSED/);
    expect(run.stdout).toMatch(/next: fix access to sitelogix-reports/);
  });

  it("prints a readable view", async () => {
    const run = await runCli(["status", "--table", "reports"], { SITELOGIX_TABLE_PREFIX: t.prefix });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${t.names.reports} [reports]  phase: contracted`);
    expect(run.stdout).toContain("GSI GSI3-StatusIndex: ACTIVE");
    expect(run.stdout).toContain("last gate: green at 2025-11-03T03:00:00.000Z (0 gaps, 0 violations)");
    expect(run.stdout).toContain("latest backup: arn:backup");
  });
});
