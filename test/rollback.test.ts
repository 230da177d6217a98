// `rollback index` on DynamoDB Local (a real GSI deleted, refusals, confirmation, the ledger record),
// and `rollback restore` against client mocks: DynamoDB Local has no PITR or backup restore.
import {
  DescribeBackupCommand,
  DescribeContinuousBackupsCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  RestoreTableFromBackupCommand,
  RestoreTableToPointInTimeCommand,
} from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyIndexPhase,
  Ledger,
  planIndexRollback,
  planRestore,
  restoreTable,
  rollbacksOf,
  RollbackRefusedError,
} from "@sitelogix/core";
import { createTestTables, runCli, type TestTables } from "@sitelogix/testkit";

let t: TestTables;
let env: Record<string, string>;
const gsis = async (tableName: string) =>
  (
    (await t.clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.GlobalSecondaryIndexes ??
    []
  ).map((g) => g.IndexName);

beforeAll(async () => {
  t = await createTestTables("legacy");
  env = { SITELOGIX_TABLE_PREFIX: t.prefix };
});
afterAll(async () => {
  await t?.dispose();
});

describe("rollback index (DynamoDB Local)", () => {
  it(
    "deletes the GSI the index phase built, " + "after a dry run and a refusal without confirmation, and records it",
    async () => {
      await applyIndexPhase(t.clients.dynamodb, t.names, "reports", "index");
      expect(await gsis(t.names.reports)).toContain("GSI3-StatusIndex");

      const dry = await runCli(["rollback", "index", "--table", "reports", "--dry-run", "--json"], env);
      expect(dry.code, dry.stderr).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({
        dryRun: true,
        plan: { index: "GSI3-StatusIndex", state: "ACTIVE" },
      });
      expect(dry.stderr).toContain(`plan: delete GSI GSI3-StatusIndex (ACTIVE`);

      const unconfirmed = await runCli(["rollback", "index", "--table", "reports"], env);
      expect(unconfirmed.code).toBe(2);
      expect(unconfirmed.stderr).toMatch(/without confirmation: run it in a terminal, or add --yes/);
      expect(await gsis(t.names.reports)).toContain("GSI3-StatusIndex");

      const run = await runCli(["rollback", "index", "--table", t.names.reports, "--yes", "--json"], env);
      expect(run.code, run.stderr).toBe(0);
      const doc = JSON.parse(run.stdout);
      expect(doc.record).toMatchObject({ kind: "index", index: "GSI3-StatusIndex", status: "done", table: "reports" });
      expect(doc.followUp.join("\n")).toMatch(/sst refresh --stage/);
      expect(await gsis(t.names.reports)).toEqual(["GSI1-ProjectIndex", "GSI2-ManagerIndex"]);
      const [record] = await rollbacksOf(new Ledger(t.clients.doc, t.names.ledger), "reports");
      expect(record).toMatchObject({ kind: "index", index: "GSI3-StatusIndex", status: "done" });
      expect(record!.finishedAt! >= record!.startedAt).toBe(true);

      const again = await runCli(["rollback", "index", "--table", "reports", "--yes"], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/refused: .*no GSI built by the index phase: nothing to roll back/);
    },
  );

  it(
    "refuses a legacy index the application queries, " + "an index of a new table, and one the schema does not know",
    async () => {
      const legacy = await runCli(
        ["rollback", "index", "--table", "reports", "--index", "GSI1-ProjectIndex", "--yes"],
        env,
      );
      expect(legacy.code).toBe(1);
      expect(legacy.stderr).toMatch(/legacy index .* the application still queries/);
      const personnel = await runCli(
        ["rollback", "index", "--table", "personnel", "--index", "GSI2-ProjectIndex", "--yes"],
        env,
      );
      expect(personnel.code).toBe(1);
      const newTable = await runCli(
        ["rollback", "index", "--table", "work-logs", "--index", "GSI1-ProjectDateIndex", "--yes"],
        env,
      );
      expect(newTable.code).toBe(1);
      expect(newTable.stderr).toMatch(/created with the new table/);
      const unknown = await runCli(["rollback", "index", "--table", "vendors", "--index", "NoSuchIndex", "--yes"], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/has no GSI NoSuchIndex/);
      expect(await gsis(t.names.reports)).toEqual(expect.arrayContaining(["GSI1-ProjectIndex", "GSI2-ManagerIndex"]));
      expect(await gsis(t.names.personnel)).toContain("GSI2-ProjectIndex");
    },
  );

  it(
    "refuses an index DynamoDB cannot delete now (CREATING past its backfill) " + "and one while another index changes",
    async () => {
      const dynamodb = new DynamoDBClient({});
      const mock = mockClient(dynamodb);
      const table = (gsi: object[]) =>
        ({ Table: { TableName: "r", TableStatus: "ACTIVE", GlobalSecondaryIndexes: gsi } }) as never;
      const base = [
        { IndexName: "GSI1-ProjectIndex", IndexStatus: "ACTIVE" },
        { IndexName: "GSI2-ManagerIndex", IndexStatus: "ACTIVE" },
      ];
      try {
        mock
          .on(DescribeTableCommand)
          .resolves(table([...base, { IndexName: "GSI3-StatusIndex", IndexStatus: "CREATING", Backfilling: false }]));
        await expect(planIndexRollback(dynamodb, "reports", "r")).rejects.toThrow(/CREATING past its backfill/);
        mock
          .on(DescribeTableCommand)
          .resolves(table([...base, { IndexName: "GSI3-StatusIndex", IndexStatus: "CREATING", Backfilling: true }]));
        await expect(planIndexRollback(dynamodb, "reports", "r")).resolves.toMatchObject({
          index: "GSI3-StatusIndex",
          state: "CREATING",
        });
        mock
          .on(DescribeTableCommand)
          .resolves(
            table([
              base[0]!,
              { IndexName: "GSI2-ManagerIndex", IndexStatus: "UPDATING" },
              { IndexName: "GSI3-StatusIndex", IndexStatus: "ACTIVE" },
            ]),
          );
        await expect(planIndexRollback(dynamodb, "reports", "r")).rejects.toThrow(/one index change at a time/);
      } finally {
        mock.restore();
        dynamodb.destroy();
      }
    },
  );
});

describe("rollback restore (client mocks: no local engine restores)", () => {
  const earliest = new Date("2025-10-20T00:00:00Z");
  const latest = new Date("2025-11-20T12:00:00Z");
  const notFound = () => new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} });

  /** The target table does not exist until the restore starts; then it is CREATING once, then ACTIVE. */
  function targetAbsent(mock: ReturnType<typeof mockClient>) {
    mock
      .on(DescribeTableCommand, { TableName: "sitelogix-reports-restored" })
      .rejectsOnce(notFound())
      .resolvesOnce({
        Table: {
          TableStatus: "CREATING",
          RestoreSummary: { RestoreInProgress: true, RestoreDateTime: new Date(), SourceTableArn: "arn" },
        },
      } as never)
      .resolves({
        Table: {
          TableStatus: "ACTIVE",
          RestoreSummary: { RestoreInProgress: false, RestoreDateTime: new Date(), SourceTableArn: "arn" },
        },
      } as never);
  }

  function restoringClient(options: { pitr?: boolean } = {}) {
    const dynamodb = new DynamoDBClient({});
    const mock = mockClient(dynamodb);
    mock
      .on(DescribeTableCommand, { TableName: "sitelogix-reports" })
      .resolves({ Table: { TableName: "sitelogix-reports", TableStatus: "ACTIVE" } } as never);
    targetAbsent(mock);
    mock.on(DescribeContinuousBackupsCommand).resolves({
      ContinuousBackupsDescription: {
        ContinuousBackupsStatus: "ENABLED",
        PointInTimeRecoveryDescription:
          options.pitr === false
            ? { PointInTimeRecoveryStatus: "DISABLED" }
            : {
                PointInTimeRecoveryStatus: "ENABLED",
                EarliestRestorableDateTime: earliest,
                LatestRestorableDateTime: latest,
              },
      },
    });
    mock.on(RestoreTableToPointInTimeCommand).resolves({});
    mock.on(RestoreTableFromBackupCommand).resolves({});
    return { dynamodb, mock };
  }
  const input = {
    table: "reports" as const,
    tableName: "sitelogix-reports",
    targetTableName: "sitelogix-reports-restored",
  };

  it("restores to a point in time into a new table, waits until ACTIVE and records it", async () => {
    const { dynamodb, mock } = restoringClient();
    try {
      const plan = await planRestore(dynamodb, { ...input, to: "2025-11-20T09:00:00Z" });
      expect(plan).toMatchObject({
        to: "2025-11-20T09:00:00.000Z",
        targetTableName: "sitelogix-reports-restored",
        window: { earliest: earliest.toISOString() },
      });
      const ledger = new Ledger(t.clients.doc, t.names.ledger);
      const result = await restoreTable(dynamodb, ledger, plan, { pollMs: 1 });
      expect(result.record).toMatchObject({
        kind: "restore",
        status: "done",
        targetTableName: "sitelogix-reports-restored",
        restoredTo: "2025-11-20T09:00:00.000Z",
      });
      expect(mock.commandCalls(RestoreTableToPointInTimeCommand)[0]!.args[0].input).toEqual({
        SourceTableName: "sitelogix-reports",
        TargetTableName: "sitelogix-reports-restored",
        RestoreDateTime: new Date("2025-11-20T09:00:00Z"),
      });
      expect((await rollbacksOf(ledger, "reports")).find((r) => r.kind === "restore")).toMatchObject({
        status: "done",
        restoredTo: "2025-11-20T09:00:00.000Z",
      });
    } finally {
      mock.restore();
      dynamodb.destroy();
    }
  });

  it("refuses a time outside the PITR window, a table without PITR, and an existing target", async () => {
    const { dynamodb, mock } = restoringClient();
    try {
      await expect(planRestore(dynamodb, { ...input, to: "2025-09-01T00:00:00Z" })).rejects.toThrow(
        /outside sitelogix-reports's restorable window \(2025-10-20T00:00:00.000Z to 2025-11-20T12:00:00.000Z\)/,
      );
      await expect(planRestore(dynamodb, { ...input, to: "yesterday" })).rejects.toBeInstanceOf(RollbackRefusedError);
      mock
        .on(DescribeTableCommand, { TableName: "sitelogix-reports-restored" })
        .resolves({ Table: { TableStatus: "ACTIVE" } });
      await expect(planRestore(dynamodb, { ...input, to: "2025-11-20T09:00:00Z" })).rejects.toThrow(/already exists/);
      expect(mock.commandCalls(RestoreTableToPointInTimeCommand)).toHaveLength(0);
    } finally {
      mock.restore();
      dynamodb.destroy();
    }
    const off = restoringClient({ pitr: false });
    try {
      await expect(planRestore(off.dynamodb, { ...input, to: "2025-11-20T09:00:00Z" })).rejects.toThrow(
        /point-in-time recovery is not enabled/,
      );
    } finally {
      off.mock.restore();
      off.dynamodb.destroy();
    }
  });

  it("restores from a backup of this table only, once it is AVAILABLE", async () => {
    const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/sitelogix-reports/backup/01";
    const withBackup = async (
      tableName: string,
      status: "AVAILABLE" | "CREATING",
      work: (c: ReturnType<typeof restoringClient>) => Promise<void>,
    ) => {
      const client = restoringClient();
      client.mock.on(DescribeBackupCommand).resolves({
        BackupDescription: { SourceTableDetails: { TableName: tableName }, BackupDetails: { BackupStatus: status } },
      } as never);
      try {
        await work(client);
      } finally {
        client.mock.restore();
        client.dynamodb.destroy();
      }
    };
    await withBackup("sitelogix-vendors", "AVAILABLE", ({ dynamodb }) =>
      expect(planRestore(dynamodb, { ...input, backupArn: arn })).rejects.toThrow(
        /is of table sitelogix-vendors, not sitelogix-reports/,
      ),
    );
    await withBackup("sitelogix-reports", "CREATING", ({ dynamodb }) =>
      expect(planRestore(dynamodb, { ...input, backupArn: arn })).rejects.toThrow(/is CREATING, not AVAILABLE/),
    );
    await withBackup("sitelogix-reports", "AVAILABLE", async ({ dynamodb, mock }) => {
      const plan = await planRestore(dynamodb, { ...input, backupArn: arn });
      const result = await restoreTable(dynamodb, new Ledger(t.clients.doc, t.names.ledger), plan, { pollMs: 1 });
      expect(result.record).toMatchObject({ status: "done", backupArn: arn });
      expect(mock.commandCalls(RestoreTableFromBackupCommand)[0]!.args[0].input).toEqual({
        TargetTableName: "sitelogix-reports-restored",
        BackupArn: arn,
      });
    });
  });

  it("an endpoint without PITR (DynamoDB Local) is one clear line; --to with --backup is a usage error", async () => {
    const dynamodb = new DynamoDBClient({});
    const mock = mockClient(dynamodb);
    try {
      mock.on(DescribeTableCommand, { TableName: "sitelogix-reports" }).resolves({ Table: { TableStatus: "ACTIVE" } });
      mock.on(DescribeTableCommand, { TableName: "sitelogix-reports-restored" }).rejects(notFound());
      mock
        .on(DescribeContinuousBackupsCommand)
        .rejects(
          Object.assign(new Error("An unknown operation was requested."), { name: "UnknownOperationException" }),
        );
      await expect(planRestore(dynamodb, { ...input, to: "2025-11-20T09:00:00Z" })).rejects.toThrow(
        /does not support point-in-time recovery/,
      );
    } finally {
      mock.restore();
      dynamodb.destroy();
    }
    const local = await runCli(
      ["rollback", "restore", "--table", "reports", "--to", "2025-11-20T09:00:00Z", "--yes"],
      env,
    );
    expect(local.code).toBe(1);
    expect(local.stderr.trim()).toMatch(/^sitelogix-migrate: refused: /);
    const both = await runCli(
      ["rollback", "restore", "--table", "reports", "--to", "2025-11-20T09:00:00Z", "--backup", "arn:x"],
      env,
    );
    expect(both.code).toBe(2);
  });
});
