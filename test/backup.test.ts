// `backup`: DynamoDB Local has no backup API, so the backup calls go to a client mocked with
// aws-sdk-client-mock (the one place a mock is the right tool); the ledger is real.
import {
  CreateBackupCommand,
  DescribeBackupCommand,
  DynamoDBClient,
  TableNotFoundException,
} from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { backupName, backupTables, Ledger } from "@sitelogix/core";
import { createTestTables, runCli, type TestTables } from "@sitelogix/testkit";

let t: TestTables;
let ledger: Ledger;
const control = new DynamoDBClient({});
const aws = mockClient(control);

beforeAll(async () => {
  t = await createTestTables("legacy");
  ledger = new Ledger(t.clients.doc, t.names.ledger);
});
afterAll(async () => {
  control.destroy();
  await t?.dispose();
});
beforeEach(() => aws.reset());

const arn = (table: string) => `arn:aws:dynamodb:us-east-1:123456789012:table/${table}/backup/01700000000000-abcdef`;
const run = (tables: ("reports" | "personnel")[], maxWaitMs = 5_000) =>
  backupTables({
    dynamodb: control,
    ledger,
    names: t.names,
    tables,
    phaseOf: async () => "legacy",
    maxWaitMs,
    pollMs: 10,
  });

describe("backup", () => {
  it("names backups <table>-<phase>-<time> within DynamoDB's rules", () => {
    expect(backupName("sitelogix-reports", "legacy", new Date("2025-11-26T12:34:56.789Z"))).toBe(
      "sitelogix-reports-legacy-20251126T123456Z",
    );
  });

  it("waits until AVAILABLE and records the ARN in the ledger", async () => {
    aws.on(CreateBackupCommand).callsFake((input: { TableName: string }) => ({
      BackupDetails: { BackupArn: arn(input.TableName), BackupStatus: "CREATING" },
    }));
    aws
      .on(DescribeBackupCommand)
      .resolvesOnce({
        BackupDescription: {
          BackupDetails: {
            BackupArn: "x",
            BackupName: "x",
            BackupStatus: "CREATING",
            BackupCreationDateTime: new Date(),
            BackupType: "USER",
          },
        },
      })
      .resolves({
        BackupDescription: {
          BackupDetails: {
            BackupArn: "x",
            BackupName: "x",
            BackupStatus: "AVAILABLE",
            BackupSizeBytes: 1234,
            BackupCreationDateTime: new Date(),
            BackupType: "USER",
          },
        },
      });

    const results = await run(["reports", "personnel"]);
    expect(results.map((r) => [r.table, r.status, r.backupArn])).toEqual([
      ["reports", "AVAILABLE", arn(t.names.reports)],
      ["personnel", "AVAILABLE", arn(t.names.personnel)],
    ]);
    expect(aws.commandCalls(CreateBackupCommand)[0]!.args[0].input.BackupName).toMatch(
      new RegExp(`^${t.names.reports}-legacy-\\d{8}T\\d{6}Z$`),
    );
    expect((await ledger.latestBackup("reports"))?.backupArn).toBe(arn(t.names.reports));
    expect((await ledger.latestBackup("personnel"))?.sizeBytes).toBe(1234);
  });

  it("a backup that does not complete is recorded as failed and never reported as taken", async () => {
    const before = await ledger.latestBackup("reports");
    aws.on(CreateBackupCommand).resolves({
      BackupDetails: {
        BackupArn: "arn:failed",
        BackupName: "n",
        BackupStatus: "CREATING",
        BackupCreationDateTime: new Date(),
        BackupType: "USER",
      },
    });
    aws.on(DescribeBackupCommand).resolves({
      BackupDescription: {
        BackupDetails: {
          BackupArn: "arn:failed",
          BackupName: "n",
          BackupStatus: "DELETED",
          BackupCreationDateTime: new Date(),
          BackupType: "USER",
        },
      },
    });
    const [result] = await run(["reports"]);
    expect(result).toMatchObject({ status: "FAILED", error: "backup ended DELETED", backupArn: "arn:failed" });
    // The latest restore point is still the previous one.
    expect(await ledger.latestBackup("reports")).toEqual(before);
  });

  it("a backup still CREATING when the wait ends is failed (timed out)", async () => {
    aws.on(CreateBackupCommand).resolves({
      BackupDetails: {
        BackupArn: "arn:slow",
        BackupName: "n",
        BackupStatus: "CREATING",
        BackupCreationDateTime: new Date(),
        BackupType: "USER",
      },
    });
    aws.on(DescribeBackupCommand).resolves({
      BackupDescription: {
        BackupDetails: {
          BackupArn: "arn:slow",
          BackupName: "n",
          BackupStatus: "CREATING",
          BackupCreationDateTime: new Date(),
          BackupType: "USER",
        },
      },
    });
    const [result] = await run(["reports"], 50);
    expect(result).toMatchObject({ status: "FAILED", error: "backup ended TIMED_OUT" });
  });

  it("a CreateBackup error fails that table only and is recorded", async () => {
    aws
      .on(CreateBackupCommand, { TableName: t.names.reports })
      .rejects(new TableNotFoundException({ message: "Table not found", $metadata: {} }))
      .on(CreateBackupCommand, { TableName: t.names.personnel })
      .resolves({
        BackupDetails: {
          BackupArn: "arn:ok",
          BackupName: "n",
          BackupStatus: "CREATING",
          BackupCreationDateTime: new Date(),
          BackupType: "USER",
        },
      });
    aws.on(DescribeBackupCommand).resolves({
      BackupDescription: {
        BackupDetails: {
          BackupArn: "arn:ok",
          BackupName: "n",
          BackupStatus: "AVAILABLE",
          BackupCreationDateTime: new Date(),
          BackupType: "USER",
        },
      },
    });
    const results = await run(["reports", "personnel"]);
    expect(results.map((r) => r.status)).toEqual(["FAILED", "AVAILABLE"]);
    expect(results[0]!.error).toMatch(/Table not found/);
  });

  it("on an endpoint without a backup API (DynamoDB Local) the command fails with a clear message", async () => {
    const cli = await runCli(["backup", "--table", "reports"], { SITELOGIX_TABLE_PREFIX: t.prefix });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/does not support on-demand backups \(DynamoDB Local has no backup API\)/);
  });
});
