// The full adoption check: each way a live table can differ from its declaration, in the shape
// DynamoDB's DescribeTable reports it, refused with what the deploy would do and what to do — or,
// for encryption, taken over by the declaration. The deploy plan runs these before declaring anything.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { defaultTableNames, liveEncryption, liveTableProblems, type LogicalTable } from "@sitelogix/core";
import { DeployRefusedError, planDeploy } from "../stacks/deploy-plan.js";
import { describeAt, fakeLiveTables, type LiveState } from "./infra/live.js";

const legacy = (table: LogicalTable) => describeAt(table, `sitelogix-${table}`, "legacy");
const problemsOf = (table: LogicalTable, described: TableDescription, phase: "expand" | "index" = "expand") =>
  liveTableProblems(table, phase, described);

describe("liveTableProblems: production's tables as they are today", () => {
  it("finds nothing on the legacy tables the schema describes (no stream yet, owned key, on-demand)", () => {
    for (const table of ["reports", "personnel", "vendors", "constraints"] as const)
      expect(problemsOf(table, legacy(table)), table).toEqual([]);
  });

  it("a live stream with NEW_AND_OLD_IMAGES is what the stacks declare", () => {
    const described = {
      ...legacy("reports"),
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" as const },
    };
    expect(problemsOf("reports", described)).toEqual([]);
  });
});

describe("liveTableProblems: each difference, refused with its consequence and what to do", () => {
  it("a GSI with the same name but other keys would be deleted and re-created", () => {
    const d = legacy("reports");
    d.GlobalSecondaryIndexes = d.GlobalSecondaryIndexes!.map((g) =>
      g.IndexName === "GSI2-ManagerIndex" ? { ...g, KeySchema: [{ AttributeName: "manager_id", KeyType: "HASH" }] } : g,
    );
    expect(problemsOf("reports", d)).toEqual([
      "sitelogix-reports: GSI GSI2-ManagerIndex is (manager_id HASH; ALL), the schema declares (manager_id HASH, " +
        "report_date RANGE; ALL): " +
        "the deploy would delete and re-create it: queries on it fail for the whole backfill. " +
        "Make the schema (packages/core/src/schema.ts) declare the index as it is live, or rebuild the index " +
        "deliberately first",
    ]);
  });

  it("a GSI with another projection would be re-created too", () => {
    const d = legacy("vendors");
    d.GlobalSecondaryIndexes = [
      {
        ...d.GlobalSecondaryIndexes![0]!,
        Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["vendorType", "phone"] },
      },
    ];
    expect(problemsOf("vendors", d)).toEqual([
      expect.stringContaining(
        "sitelogix-vendors: GSI GSI1-CompanyIndex is (company_name HASH; INCLUDE vendorType, phone), the schema " +
          "declares (company_name HASH; ALL)",
      ),
    ]);
  });

  it("a key attribute of type N where the schema says S", () => {
    const d = legacy("constraints");
    d.AttributeDefinitions = d.AttributeDefinitions!.map((a) =>
      a.AttributeName === "severity" ? { ...a, AttributeType: "N" as const } : a,
    );
    expect(problemsOf("constraints", d)).toEqual([
      "sitelogix-constraints: key attribute severity is of type N, the schema declares S: the deploy would " +
        "re-declare its type, which re-creates the indexes keyed on it " +
        "or fails the update (and a target GSI keyed on it could never be built). Find out with the application " +
        "team which type severity really holds; " +
        "the schema (packages/core/src/schema.ts) must match the live table before anything is deployed",
    ]);
  });

  it("a target GSI built by hand on a number fails the index phase: refused before it", () => {
    // Same name, keys and projection as the schema's GSI3-StatusIndex, but `status` defined as N.
    const d = legacy("reports");
    d.AttributeDefinitions = [
      ...d.AttributeDefinitions!,
      { AttributeName: "status", AttributeType: "N" },
      { AttributeName: "timestamp", AttributeType: "S" },
    ];
    d.GlobalSecondaryIndexes = [
      ...d.GlobalSecondaryIndexes!,
      {
        IndexName: "GSI3-StatusIndex",
        KeySchema: [
          { AttributeName: "status", KeyType: "HASH" },
          { AttributeName: "timestamp", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ];
    expect(problemsOf("reports", d, "index")).toEqual([
      expect.stringMatching(/^sitelogix-reports: key attribute status is of type N, the schema declares S: /),
    ]);
  });

  it("a local secondary index would force a replacement", () => {
    const d = {
      ...legacy("personnel"),
      LocalSecondaryIndexes: [
        {
          IndexName: "LSI1",
          KeySchema: [
            { AttributeName: "PK", KeyType: "HASH" as const },
            { AttributeName: "updatedAt", KeyType: "RANGE" as const },
          ],
        },
      ],
    };
    expect(problemsOf("personnel", d)).toEqual([
      "sitelogix-personnel: has local secondary index LSI1 (PK HASH, updatedAt RANGE): the stacks declare no LSI " +
        "and an LSI exists only from a table's creation, " +
        "so Pulumi would replace the table (refused by protect: the deploy fails half way). Do not deploy: the " +
        "LSI must be declared in stacks/tables.ts first",
    ]);
  });

  it("the Infrequent Access table class would be switched to Standard", () => {
    const d = { ...legacy("vendors"), TableClassSummary: { TableClass: "STANDARD_INFREQUENT_ACCESS" as const } };
    expect(problemsOf("vendors", d)).toEqual([
      "sitelogix-vendors: is in table class STANDARD_INFREQUENT_ACCESS, the stacks declare STANDARD: the deploy " +
        "would switch its class (and its storage and request prices). " +
        "Switch it deliberately (aws dynamodb update-table --table-class STANDARD) or declare the class in " +
        "stacks/tables.ts, then deploy",
    ]);
    expect(problemsOf("vendors", { ...legacy("vendors"), TableClassSummary: { TableClass: "STANDARD" } })).toEqual([]);
  });

  it("a stream with another view type would be turned off and on: a new stream ARN for its consumers", () => {
    const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/sitelogix-reports/stream/2024-03-01T00:00:00.000";
    const d = {
      ...legacy("reports"),
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" as const },
      LatestStreamArn: arn,
    };
    expect(problemsOf("reports", d)).toEqual([
      "sitelogix-reports: has a stream of view type NEW_IMAGE, the stacks declare NEW_AND_OLD_IMAGES: the deploy " +
        "would turn it off and on again with the new view: " +
        `a new stream ARN, and every consumer of the current stream (${arn}) stops receiving records. ` +
        "Agree the change with the owners of its consumers (aws lambda list-event-source-mappings " +
        "--event-source-arn <stream ARN>) and make it deliberately first: the migrator needs NEW_AND_OLD_IMAGES",
    ]);
  });

  it("a stream on a table the stacks declare without one would be turned off", () => {
    const d = {
      ...describeAt("ledger", "sitelogix-migration-ledger", "expand"),
      StreamSpecification: { StreamEnabled: true, StreamViewType: "KEYS_ONLY" as const },
    };
    expect(problemsOf("ledger", d)).toEqual([
      expect.stringContaining("the stacks declare no stream: the deploy would turn it off:"),
    ]);
  });

  it("provisioned capacity, another key schema, a replica and an unknown GSI", () => {
    const d: TableDescription = {
      ...legacy("personnel"),
      BillingModeSummary: { BillingMode: "PROVISIONED" },
      KeySchema: [{ AttributeName: "PK", KeyType: "HASH" }],
      Replicas: [{ RegionName: "us-west-2" }],
    };
    d.GlobalSecondaryIndexes = [
      ...d.GlobalSecondaryIndexes!,
      {
        IndexName: "EmailIndex",
        KeySchema: [{ AttributeName: "email", KeyType: "HASH" }],
        Projection: { ProjectionType: "KEYS_ONLY" },
      },
    ];
    const problems = problemsOf("personnel", d);
    expect(problems.map((p) => p.split(": ").slice(0, 2).join(": "))).toEqual([
      "sitelogix-personnel: key schema is (PK HASH), the schema says (PK HASH, SK RANGE)",
      "sitelogix-personnel: capacity mode is PROVISIONED, the stacks declare PAY_PER_REQUEST",
      "sitelogix-personnel: has GSI EmailIndex, which the schema does not know",
      "sitelogix-personnel: is a global table with a replica in us-west-2",
    ]);
  });

  it("a KMS key that is inaccessible, or encryption being changed", () => {
    const inaccessible = {
      ...legacy("reports"),
      SSEDescription: {
        Status: "ENABLED" as const,
        SSEType: "KMS" as const,
        KMSMasterKeyArn: "arn:aws:kms:us-east-1:1:key/k",
        InaccessibleEncryptionDateTime: new Date("2026-05-01T10:00:00Z"),
      },
    };
    expect(problemsOf("reports", inaccessible)).toEqual([
      "sitelogix-reports: its KMS key has been inaccessible since 2026-05-01T10:00:00.000Z: the table cannot be " +
        "read or updated. Restore access to arn:aws:kms:us-east-1:1:key/k first",
    ]);
    const updating = {
      ...legacy("reports"),
      SSEDescription: {
        Status: "UPDATING" as const,
        SSEType: "KMS" as const,
        KMSMasterKeyArn: "arn:aws:kms:us-east-1:1:key/k",
      },
    };
    expect(problemsOf("reports", updating)).toEqual([
      "sitelogix-reports: encryption at rest is UPDATING: the deploy would race the change in progress. Wait " +
        "until it is ENABLED, then deploy",
    ]);
  });
});

describe("liveEncryption: what an adopted table keeps", () => {
  const kms = (keyArn: string) => ({
    ...legacy("reports"),
    SSEDescription: { Status: "ENABLED" as const, SSEType: "KMS" as const, KMSMasterKeyArn: keyArn },
  });
  const managers = async (arn: string) => (arn.endsWith("/cmk") ? ("CUSTOMER" as const) : ("AWS" as const));

  it("tells the AWS-owned default, the AWS-managed key and a customer-managed key apart", async () => {
    expect(await liveEncryption(legacy("reports"), managers)).toEqual({ kind: "owned" });
    expect(await liveEncryption(kms("arn:aws:kms:us-east-1:1:key/aws"), managers)).toEqual({
      kind: "aws-managed",
      keyArn: "arn:aws:kms:us-east-1:1:key/aws",
    });
    expect(await liveEncryption(kms("arn:aws:kms:us-east-1:1:key/cmk"), managers)).toEqual({
      kind: "customer-managed",
      keyArn: "arn:aws:kms:us-east-1:1:key/cmk",
    });
  });
});

describe("planDeploy: the adoption check before anything is declared", () => {
  const names = defaultTableNames();
  const plan = (state: LiveState, phase: "expand" | "index" = "expand") =>
    planDeploy({ phase, names, adopt: true, live: fakeLiveTables(state)(names) });

  it("lists every difference of every table in one refusal, not just the first", async () => {
    const err = await plan({
      phase: "legacy",
      change: {
        reports: (d) => ({ ...d, TableClassSummary: { TableClass: "STANDARD_INFREQUENT_ACCESS" } }),
        vendors: (d) => ({
          ...d,
          BillingModeSummary: { BillingMode: "PROVISIONED" },
          StreamSpecification: { StreamEnabled: true, StreamViewType: "KEYS_ONLY" },
        }),
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployRefusedError);
    expect((err as DeployRefusedError).problems.map((p) => p.split(":")[0])).toEqual([
      "sitelogix-reports",
      "sitelogix-vendors",
      "sitelogix-vendors",
    ]);
  });

  it("records each live table's encryption for the declaration", async () => {
    const cmk = "arn:aws:kms:us-east-1:123456789012:key/cmk";
    const result = await plan({
      phase: "legacy",
      keys: { [cmk]: "CUSTOMER" },
      change: {
        constraints: (d) => ({ ...d, SSEDescription: { Status: "ENABLED", SSEType: "KMS", KMSMasterKeyArn: cmk } }),
      },
    });
    expect(result.live.constraints).toEqual({ encryption: { kind: "customer-managed", keyArn: cmk } });
    expect(result.live.reports).toEqual({ encryption: { kind: "owned" } });
    // The new tables do not exist yet: created, nothing to keep.
    expect(result.live["work-logs"]).toBeUndefined();
    expect(result.newTables).toContain("sitelogix-work-logs");
  });
});
