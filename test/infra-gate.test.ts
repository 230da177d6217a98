// The index gate and the deploy plan against DynamoDB Local: the ledger records that open (or keep
// closed) a table's gate, and what `sst deploy` of each phase would do to live tables, read through
// the same code the deploy runs (stacks/deploy-plan.ts), with real DescribeTable answers.
import {
  CreateTableCommand,
  DeleteTableCommand,
  UpdateTableCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyIndexPhase,
  defaultTableNames,
  Ledger,
  ledgerKeys,
  tablesIn,
  waitForIndexes,
  type LogicalTable,
  type Phase,
  type SweepRun,
} from "@sitelogix/core";
import { stageContext } from "../stacks/config.js";
import { awsLiveTables, deployerClients, DeployRefusedError, planDeploy } from "../stacks/deploy-plan.js";
import { createTestTables, uniquePrefix, type TestTables } from "@sitelogix/testkit";

const at = (minute: number) => new Date(Date.UTC(2025, 10, 20, 9, minute)).toISOString();

async function recordSweep(ledger: Ledger, table: LogicalTable, run: Omit<SweepRun, "table" | "totalSegments">) {
  await ledger.put(ledgerKeys.sweep(table, run.sweepId), { table, totalSegments: 4, ...run });
}

/** Everything that opens a table's gate: normalizer live, a finished sweep, then a green verify. */
async function openGate(ledger: Ledger, table: LogicalTable) {
  await ledger.markNormalizerLive(table, at(0));
  await recordSweep(ledger, table, { sweepId: `${at(1)}-a`, startedAt: at(1), finishedAt: at(20), status: "finished" });
  await ledger.recordGate({ table, at: at(30), green: true, gaps: 0, violations: 0 });
}

describe("the index gate in the ledger", () => {
  let t: TestTables;
  let ledger: Ledger;
  beforeAll(async () => {
    t = await createTestTables("legacy");
    ledger = new Ledger(t.clients.doc, t.names.ledger);
  });
  afterAll(() => t.dispose());

  it(
    "invariant 8: gated indexes — closed until the normalizer is live, " +
      "a sweep finished and a later verify is green",
    async () => {
      const table = "vendors";
      const reasons = async () => (await ledger.indexGate(table)).reasons.join("\n");

      expect(await ledger.indexGate(table)).toMatchObject({ table, allowed: false });
      expect(await reasons()).toMatch(/normalizer/);
      expect(await reasons()).toMatch(/no sweep has run \(run `sitelogix-migrate sweep --table vendors`\)/);
      expect(await reasons()).toMatch(/no verify result/);

      await ledger.markNormalizerLive(table, at(5));
      await recordSweep(ledger, table, { sweepId: `${at(6)}-a`, startedAt: at(6), status: "running" });
      expect(await reasons()).not.toMatch(/normalizer/);
      expect(await reasons()).toMatch(/the latest sweep .* has not finished \(running\) .*--resume/);

      // A green verify taken while the sweep was still running proves nothing about the items after it.
      await ledger.recordGate({ table, at: at(10), green: true, gaps: 0, violations: 0 });
      await recordSweep(ledger, table, {
        sweepId: `${at(6)}-a`,
        startedAt: at(6),
        finishedAt: at(20),
        status: "finished",
      });
      expect((await ledger.indexGate(table)).reasons).toEqual([
        `the latest verify (${at(10)}) started before the latest sweep finished (${at(20)}): run verify again`,
      ]);

      await ledger.recordGate({ table, at: at(25), green: false, gaps: 3, violations: 1 });
      expect((await ledger.indexGate(table)).reasons).toEqual([
        `the latest verify (${at(25)}) is not green: 3 gaps, 1 violations`,
      ]);

      await ledger.recordGate({ table, at: at(30), green: true, gaps: 0, violations: 0 });
      expect(await ledger.indexGate(table)).toEqual({ table, allowed: true, reasons: [] });

      // A newer sweep closes the gate until it has finished and a verify has followed it.
      await recordSweep(ledger, table, { sweepId: `${at(40)}-b`, startedAt: at(40), status: "running" });
      expect(await reasons()).toMatch(/has not finished \(running\)/);
    },
  );

  it("a verify taken before the normalizer went live does not open the gate", async () => {
    const table = "constraints";
    await recordSweep(ledger, table, {
      sweepId: `${at(1)}-a`,
      startedAt: at(1),
      finishedAt: at(2),
      status: "finished",
    });
    await ledger.recordGate({ table, at: at(3), green: true, gaps: 0, violations: 0 });
    await ledger.markNormalizerLive(table, at(4));
    expect((await ledger.indexGate(table)).reasons).toEqual([
      `the latest verify (${at(3)}) started before the normalizer went live (${at(4)}): run verify again`,
    ]);
  });

  it("gates are per table: an open gate on one table opens no other", async () => {
    await openGate(ledger, "reports");
    expect((await ledger.indexGate("reports")).allowed).toBe(true);
    expect((await ledger.indexGate("personnel")).allowed).toBe(false);
  });
});

describe("the deploy plan against live tables", () => {
  let t: TestTables;
  const plan = (phase: Phase, options: { adopt?: boolean; names?: TestTables["names"] } = {}) => {
    const names = options.names ?? t.names;
    return planDeploy({ phase, names, adopt: options.adopt ?? false, live: awsLiveTables(names, t.clients) });
  };
  const refusal = async (promise: Promise<unknown>) => {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeployRefusedError);
    return (err as DeployRefusedError).problems;
  };
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(() => t.dispose());

  it("expand on the expanded tables changes no index", async () => {
    const expanded = await plan("expand");
    expect(expanded).toMatchObject({ phase: "expand", newTables: [], indexChanges: [] });
    // DynamoDB Local reports no SSE: the AWS-owned default, which adopted tables keep.
    expect(expanded.live.reports).toEqual({ encryption: { kind: "owned" } });
  });

  it(
    "invariant 8: gated indexes — the index phase refuses every table whose gate is closed, " +
      "naming the index and why",
    async () => {
      const problems = await refusal(plan("index"));
      expect(problems).toHaveLength(4);
      expect(problems[0]).toBe(
        `${t.names.reports}: the index gate is closed, so GSI3-StatusIndex cannot be built: ` +
          "the ledger has no record of the normalizer going live on this table (deploy the expand phase first); " +
          "no sweep has run (run `sitelogix-migrate sweep --table reports`); " +
          "no verify result is recorded (run `sitelogix-migrate verify --table reports`)",
      );
      expect(problems.join("\n")).toMatch(new RegExp(`${t.names.personnel}: .*GSI2-StatusIndex`));

      // One table's gate open: the others still refuse the deploy as a whole.
      const ledger = new Ledger(t.clients.doc, t.names.ledger);
      await openGate(ledger, "reports");
      expect(await refusal(plan("index"))).toHaveLength(3);

      for (const table of ["personnel", "vendors", "constraints"] as const) await openGate(ledger, table);
      expect((await plan("index")).indexChanges).toEqual([
        { table: "reports", tableName: t.names.reports, action: "create", index: "GSI3-StatusIndex" },
        { table: "personnel", tableName: t.names.personnel, action: "create", index: "GSI2-StatusIndex" },
        { table: "vendors", tableName: t.names.vendors, action: "create", index: "GSI2-TypeIndex" },
        { table: "constraints", tableName: t.names.constraints, action: "create", index: "GSI3-ProjectDateIndex" },
      ]);
    },
  );

  it("contract straight from expand is refused: personnel would need two index changes in one update", async () => {
    const problems = await refusal(plan("contract"));
    expect(problems).toEqual([
      `${t.names.personnel} would need 2 index changes in one deploy ` +
        "(create GSI2-StatusIndex, delete GSI2-ProjectIndex); " +
        "DynamoDB makes one per update: deploy the phases in order",
      `${t.names.personnel}: the index phase has not finished (GSI2-StatusIndex is missing); ` +
        "deploy the index phase first",
    ]);
  });

  it("contract after index deletes only personnel's GSI2-ProjectIndex", async () => {
    // Bring the live tables to the index phase the way the deploy would: one GSI per table.
    for (const table of ["reports", "personnel", "vendors", "constraints"] as const)
      await applyIndexPhase(t.clients.dynamodb, t.names, table, "index");
    expect((await plan("index")).indexChanges).toEqual([]);
    expect((await plan("contract")).indexChanges).toEqual([
      { table: "personnel", tableName: t.names.personnel, action: "delete", index: "GSI2-ProjectIndex" },
    ]);
  });

  it("a live GSI the schema does not know is never deleted", async () => {
    await t.clients.dynamodb.send(
      new UpdateTableCommand({
        TableName: t.names.vendors,
        AttributeDefinitions: [{ AttributeName: "region", AttributeType: "S" }],
        GlobalSecondaryIndexUpdates: [
          {
            Create: {
              IndexName: "GSI9-Adhoc",
              KeySchema: [{ AttributeName: "region", KeyType: "HASH" }],
              Projection: { ProjectionType: "KEYS_ONLY" },
            },
          },
        ],
      }),
    );
    await waitForIndexes(t.clients.dynamodb, t.names.vendors);
    expect(await refusal(plan("index"))).toEqual([
      `${t.names.vendors}: has GSI GSI9-Adhoc, which the schema does not know: the deploy would delete it. ` +
        "Add it to the schema (packages/core/src/schema.ts) or delete it deliberately first",
    ]);
    await t.clients.dynamodb.send(
      new UpdateTableCommand({
        TableName: t.names.vendors,
        GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: "GSI9-Adhoc" } }],
      }),
    );
  });

  it("an adopting stage refuses when an existing table is missing, and never plans to create it", async () => {
    const names = defaultTableNames(uniquePrefix());
    const problems = await refusal(plan("expand", { adopt: true, names }));
    expect(problems).toEqual(
      (["reports", "personnel", "vendors", "constraints"] as const).map(
        (table) => `${names[table]} does not exist: this stage adopts the existing table and never creates it`,
      ),
    );
    // A stage that creates its tables plans all nine.
    expect((await plan("expand", { names })).newTables).toEqual(tablesIn("expand").map((def) => names[def.logical]));
  });

  it("a table whose keys or capacity mode differ is refused with every difference", async () => {
    const odd = `${uniquePrefix()}odd-reports`;
    await t.clients.dynamodb.send(
      new CreateTableCommand({
        TableName: odd,
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        BillingMode: "PROVISIONED",
        ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
      }),
    );
    await waitUntilTableExists({ client: t.clients.dynamodb, maxWaitTime: 60 }, { TableName: odd });
    try {
      const problems = await refusal(plan("expand", { names: { ...t.names, reports: odd } }));
      expect(problems.slice(0, 2)).toEqual([
        `${odd}: key schema is (id HASH), the schema says (PK HASH, SK RANGE): the deploy would replace the table. ` +
          "The table cannot be adopted as it is: check that the right table is named",
        `${odd}: capacity mode is PROVISIONED, the stacks declare PAY_PER_REQUEST: the deploy would switch it. ` +
          "Switch it deliberately first (aws dynamodb update-table --billing-mode PAY_PER_REQUEST), then deploy",
      ]);
    } finally {
      await t.clients.dynamodb.send(new DeleteTableCommand({ TableName: odd }));
    }
  });

  it("the gate reports a missing ledger table instead of failing", async () => {
    const names = { ...t.names, ledger: `${uniquePrefix()}no-ledger` };
    const gate = await awsLiveTables(names, t.clients).indexGate("reports");
    expect(gate).toEqual({
      table: "reports",
      allowed: false,
      reasons: [`the ledger table ${names.ledger} does not exist (deploy the expand phase first)`],
    });
  });
});

describe("the deployer's credentials", () => {
  it("come from the SST_AWS_* variables the SST CLI hands the program", async () => {
    const clients = deployerClients({
      SST_AWS_REGION: "eu-central-1",
      SST_AWS_ACCESS_KEY_ID: "AKIDEPLOYER",
      SST_AWS_SECRET_ACCESS_KEY: "secret",
      SST_AWS_SESSION_TOKEN: "token",
    });
    expect(await clients.dynamodb.config.region()).toBe("eu-central-1");
    expect(await clients.dynamodb.config.credentials()).toMatchObject({
      accessKeyId: "AKIDEPLOYER",
      secretAccessKey: "secret",
      sessionToken: "token",
    });
    clients.dynamodb.destroy();
    clients.streams.destroy();
  });
});

describe("stage settings", () => {
  const config = {
    stages: {
      prod: {
        phase: "index" as const,
        existingTables: "adopt" as const,
        alarms: { email: ["oncall@sitelogix.example"] },
      },
      audit: { phase: "expand" as const, auditTableName: "compliance-audit" },
    },
    otherStages: { phase: "expand" as const },
  };

  it("an adopting stage uses the live tables' own names; every other stage prefixes its own", () => {
    expect(stageContext(config, "prod", true, "us-east-1")).toMatchObject({
      phase: "index",
      adopt: true,
      protect: true,
      region: "us-east-1",
      names: defaultTableNames(),
    });
    expect(stageContext(config, "alice", false, "us-east-1")).toMatchObject({
      phase: "expand",
      adopt: false,
      protect: false,
      names: defaultTableNames("alice-"),
    });
    expect(stageContext(config, "audit", false, "us-east-1").names.audit).toBe("compliance-audit");
  });

  it("refuses a phase a stage cannot be deployed at", () => {
    expect(() =>
      stageContext({ ...config, otherStages: { phase: "legacy" as never } }, "dev", false, "us-east-1"),
    ).toThrow('migration.config.ts: stage "dev" has phase "legacy"; expected one of expand, index, contract');
  });
});
