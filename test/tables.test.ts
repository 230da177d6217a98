// `sitelogix-migrate tables create` against DynamoDB Local, checked against DESIGN.md section 4
// written out by hand here (not read from the schema module, which is what is under test).
import { DeleteTableCommand, DescribeTableCommand, DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import {
  createClients,
  defaultTableNames,
  destroyClients,
  enableStreams,
  ensureTables,
  SITELOGIX_TABLES,
} from "@sitelogix/core";
import { runCli, uniquePrefix } from "@sitelogix/testkit";

const clients = createClients();
const created: string[] = [];
afterAll(async () => {
  await Promise.all(
    created.map((name) => clients.dynamodb.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined)),
  );
  destroyClients(clients);
});

type Gsis = Record<string, string>;
const LEGACY: Record<string, Gsis> = {
  "sitelogix-reports": { "GSI1-ProjectIndex": "project_id,report_date", "GSI2-ManagerIndex": "manager_id,report_date" },
  "sitelogix-personnel": { "GSI1-NameIndex": "full_name", "GSI2-ProjectIndex": "project_id" },
  "sitelogix-vendors": { "GSI1-CompanyIndex": "company_name" },
  "sitelogix-constraints": { "GSI1-CategoryIndex": "category,dateIdentified", "GSI2-StatusIndex": "status,severity" },
  "sitelogix-work-logs": { "GSI1-ProjectDateIndex": "project_id,report_date", "GSI2-TeamIndex": "team_id,report_date" },
  "sitelogix-ai-analysis-cache": {
    "GSI1-TypeIndex": "analysisType,createdAt",
    "GSI2-ModelIndex": "modelUsed,createdAt",
  },
};
const TARGET: Record<string, Gsis> = {
  "sitelogix-reports": { ...LEGACY["sitelogix-reports"], "GSI3-StatusIndex": "status,timestamp" },
  "sitelogix-personnel": { "GSI1-NameIndex": "full_name", "GSI2-StatusIndex": "status,dateLastSeen" },
  "sitelogix-vendors": { ...LEGACY["sitelogix-vendors"], "GSI2-TypeIndex": "vendor_type,dateLastSeen" },
  "sitelogix-constraints": { ...LEGACY["sitelogix-constraints"], "GSI3-ProjectDateIndex": "project_id,report_date" },
  "sitelogix-work-logs": LEGACY["sitelogix-work-logs"]!,
  "sitelogix-ai-analysis-cache": LEGACY["sitelogix-ai-analysis-cache"]!,
};
const OWN: Record<string, { keys: string; gsis: Gsis; ttl?: string }> = {
  "sitelogix-audit-log": {
    keys: "PK,SK",
    gsis: { "GSI1-ActorIndex": "actorShard,atSeq", "GSI2-TableIndex": "tableShard,atSeq" },
    ttl: "expiresAt",
  },
  "sitelogix-migration-ledger": { keys: "PK,SK", gsis: {} },
};

async function describeAll(prefix: string, tables: string[]) {
  return Promise.all(
    tables.map(async (name) => {
      const table = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: `${prefix}${name}` }))).Table!;
      const ttl = (await clients.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: `${prefix}${name}` })))
        .TimeToLiveDescription;
      const attrTypes = Object.fromEntries(
        (table.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]),
      );
      return {
        name,
        status: table.TableStatus,
        keys: table.KeySchema!.map((k) => k.AttributeName).join(","),
        gsis: Object.fromEntries(
          (table.GlobalSecondaryIndexes ?? []).map((g) => [
            g.IndexName,
            g.KeySchema!.map((k) => k.AttributeName).join(","),
          ]),
        ),
        projections: [...new Set((table.GlobalSecondaryIndexes ?? []).map((g) => g.Projection?.ProjectionType))],
        keyTypes: [
          ...new Set(
            (table.GlobalSecondaryIndexes ?? []).flatMap((g) => g.KeySchema!.map((k) => attrTypes[k.AttributeName!])),
          ),
        ],
        stream: table.StreamSpecification?.StreamEnabled ? table.StreamSpecification.StreamViewType : undefined,
        ttl: ttl?.TimeToLiveStatus === "ENABLED" ? ttl.AttributeName : undefined,
      };
    }),
  );
}

describe.each([
  ["legacy", LEGACY],
  ["target", TARGET],
] as const)("tables create --schema %s", (schema, expected) => {
  const prefix = uniquePrefix();
  const env = { SITELOGIX_TABLE_PREFIX: prefix };

  it("creates every table with its keys, GSIs (projection ALL, keys S), streams and TTL", async () => {
    const run = await runCli(["tables", "create", "--schema", schema, "--json"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { tables: { name: string; action: string }[] };
    created.push(...out.tables.map((t) => t.name));
    expect(out.tables.map((t) => t.action)).toEqual(Array(8).fill("created"));

    const app = await describeAll(prefix, Object.keys(expected));
    for (const table of app) {
      expect(table, table.name).toMatchObject({
        status: "ACTIVE",
        keys: "PK,SK",
        gsis: expected[table.name],
        stream: "NEW_AND_OLD_IMAGES",
      });
      expect(table.projections).toEqual(["ALL"]);
      expect(table.keyTypes).toEqual(["S"]);
      expect(table.ttl).toBe(table.name === "sitelogix-ai-analysis-cache" ? "ttl" : undefined);
    }
    const gsiCount = app.reduce((n, t) => n + Object.keys(t.gsis).length, 0);
    expect(gsiCount).toBe(schema === "target" ? 14 : 11);

    for (const table of await describeAll(prefix, Object.keys(OWN))) {
      const own = OWN[table.name]!;
      expect(table, table.name).toMatchObject({
        status: "ACTIVE",
        keys: own.keys,
        gsis: own.gsis,
        stream: undefined,
        ttl: own.ttl,
      });
    }
  });

  it("is idempotent: a second run finds every table as it should be", async () => {
    const run = await runCli(["tables", "create", "--schema", schema], env);
    expect(run.code).toBe(0);
    expect(run.stderr.trim().split("\n")).toHaveLength(8);
    expect(run.stderr).not.toMatch(/created/);
  });
});

describe("tables create errors", () => {
  it("a table that exists with another schema is an error naming the difference", async () => {
    const prefix = uniquePrefix();
    const legacy = await runCli(["tables", "create", "--schema", "legacy", "--json"], {
      SITELOGIX_TABLE_PREFIX: prefix,
    });
    created.push(...(JSON.parse(legacy.stdout) as { tables: { name: string }[] }).tables.map((t) => t.name));
    const run = await runCli(["tables", "create", "--schema", "target"], { SITELOGIX_TABLE_PREFIX: prefix });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${prefix}sitelogix-reports (reports): missing GSI GSI3-StatusIndex`);
    expect(run.stderr).toContain(
      `${prefix}sitelogix-personnel (personnel): missing GSI GSI2-StatusIndex; unexpected GSI GSI2-ProjectIndex`,
    );
    expect(run.stderr).not.toContain("sitelogix-work-logs");
  });

  it("an unreachable endpoint is one clear line and exit 1", async () => {
    const run = await runCli(["tables", "create", "--schema", "legacy"], {
      AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
      AWS_MAX_ATTEMPTS: "1",
      SITELOGIX_TABLE_PREFIX: uniquePrefix(),
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe("sitelogix-migrate: cannot reach DynamoDB at http://127.0.0.1:9 (ECONNREFUSED)");
  });

  it("a missing or unknown --schema is a usage error (exit 2)", async () => {
    expect((await runCli(["tables", "create"])).code).toBe(2);
    const run = await runCli(["tables", "create", "--schema", "newest"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/Allowed choices are legacy, target/);
  });

  it("defaults to the sitelogix-* names", () => {
    expect(defaultTableNames().reports).toBe("sitelogix-reports");
    expect(defaultTableNames("x-").audit).toBe("x-sitelogix-audit-log");
  });
});

describe("rehearsing the expand phase", () => {
  it("tables created without streams get them from enableStreams, and match the legacy schema afterwards", async () => {
    const names = defaultTableNames(uniquePrefix());
    const made = await ensureTables(clients.dynamodb, names, "legacy", { streams: false });
    created.push(...made.map((t) => t.name));
    const before = await clients.dynamodb.send(new DescribeTableCommand({ TableName: names.reports }));
    expect(before.Table?.StreamSpecification?.StreamEnabled).toBeFalsy();
    await enableStreams(clients.dynamodb, names, SITELOGIX_TABLES);
    for (const table of SITELOGIX_TABLES) {
      const after = await clients.dynamodb.send(new DescribeTableCommand({ TableName: names[table] }));
      expect(after.Table?.StreamSpecification, table).toMatchObject({
        StreamEnabled: true,
        StreamViewType: "NEW_AND_OLD_IMAGES",
      });
      expect(after.Table?.LatestStreamArn).toBeTruthy();
    }
    // With their streams on they are exactly the legacy schema: a plain `tables create` accepts them.
    expect((await ensureTables(clients.dynamodb, names, "legacy")).every((r) => r.action === "exists")).toBe(true);
  });
});
