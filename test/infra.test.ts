// The real sst.config.ts, run as `sst deploy` would for stages dev and prod at every phase, under
// Pulumi's mocks (test/infra/harness.ts). The expected tables, indexes, subscriptions and
// permissions are written out here by hand, from DESIGN.md and the issue, not read from the code
// under test. What this cannot prove: that importing a live table reconciles (`sst diff --stage prod`).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TABLES } from "@sitelogix/core";
import migrationConfig from "../migration.config.js";
import { DEPLOY_PHASES, type DeployPhase, type MigrationConfig } from "../stacks/config.js";
import { inputs } from "../stacks/inputs.js";
import { disposeHarness, ROOT, runProgram, type ProgramRun, type RecordedResource } from "./infra/harness.js";
import { fakeLiveTables, type LiveState } from "./infra/live.js";

const APP_TABLES = ["reports", "personnel", "vendors", "constraints", "work-logs", "ai-analysis-cache"];
const EXISTING = ["reports", "personnel", "vendors", "constraints"];
const NORMALIZED = ["reports", "personnel", "vendors", "constraints", "work-logs"];
const PHYSICAL: Record<string, string> = {
  reports: "sitelogix-reports",
  personnel: "sitelogix-personnel",
  vendors: "sitelogix-vendors",
  constraints: "sitelogix-constraints",
  "work-logs": "sitelogix-work-logs",
  "ai-analysis-cache": "sitelogix-ai-analysis-cache",
  audit: "sitelogix-audit-log",
  ledger: "sitelogix-migration-ledger",
};

const EXPAND_GSIS: Record<string, string[]> = {
  reports: ["GSI1-ProjectIndex=project_id,report_date", "GSI2-ManagerIndex=manager_id,report_date"],
  personnel: ["GSI1-NameIndex=full_name", "GSI2-ProjectIndex=project_id"],
  vendors: ["GSI1-CompanyIndex=company_name"],
  constraints: ["GSI1-CategoryIndex=category,dateIdentified", "GSI2-StatusIndex=status,severity"],
  "work-logs": ["GSI1-ProjectDateIndex=project_id,report_date", "GSI2-TeamIndex=team_id,report_date"],
  "ai-analysis-cache": ["GSI1-TypeIndex=analysisType,createdAt", "GSI2-ModelIndex=modelUsed,createdAt"],
  audit: ["GSI1-ActorIndex=actorShard,atSeq", "GSI2-TableIndex=tableShard,atSeq"],
  ledger: [],
};
const INDEX_GSIS = {
  ...EXPAND_GSIS,
  reports: [...EXPAND_GSIS.reports!, "GSI3-StatusIndex=status,timestamp"],
  personnel: [...EXPAND_GSIS.personnel!, "GSI2-StatusIndex=status,dateLastSeen"],
  vendors: [...EXPAND_GSIS.vendors!, "GSI2-TypeIndex=vendor_type,dateLastSeen"],
  constraints: [...EXPAND_GSIS.constraints!, "GSI3-ProjectDateIndex=project_id,report_date"],
};
const GSIS: Record<DeployPhase, Record<string, string[]>> = {
  expand: EXPAND_GSIS,
  index: INDEX_GSIS,
  contract: { ...INDEX_GSIS, personnel: ["GSI1-NameIndex=full_name", "GSI2-StatusIndex=status,dateLastSeen"] },
};
const TTL: Record<string, string> = { "ai-analysis-cache": "ttl", audit: "expiresAt" };
const LIVE_BEFORE: Record<DeployPhase, "legacy" | "expand" | "index"> = {
  expand: "legacy",
  index: "expand",
  contract: "index",
};

const ONCALL = "migration-oncall@sitelogix.example";

/** The checked-in config with every stage moved to `phase` (prod keeps adopting, and gets an alarm address). */
function atPhase(config: MigrationConfig, phase: DeployPhase): MigrationConfig {
  return {
    stages: Object.fromEntries(
      Object.entries(config.stages).map(([stage, c]) => [stage, { alarms: { email: [ONCALL] }, ...c, phase }]),
    ),
    otherStages: { ...config.otherStages, phase },
  };
}

async function deploy(
  stage: string,
  phase: DeployPhase,
  live: LiveState,
  config = atPhase(migrationConfig, phase),
): Promise<ProgramRun> {
  inputs.config = config;
  inputs.liveTables = fakeLiveTables(live);
  return runProgram(stage);
}

// The deploy's phase events (index ACTIVE) go to SNS with the deployer's credentials.
const sns = mockClient(SNSClient);
const runs = new Map<string, ProgramRun>();
const published = new Map<string, { Subject?: string; TopicArn?: string; event?: string }[]>();
const runOf = (stage: string, phase: DeployPhase) => runs.get(`${stage}/${phase}`)!;

beforeAll(async () => {
  sns.on(PublishCommand).resolves({ MessageId: "m-1" });
  for (const stage of ["dev", "prod"]) {
    for (const phase of DEPLOY_PHASES) {
      // Each phase deployed onto the tables the previous one left; dev starts from nothing.
      const live = stage === "dev" && phase === "expand" ? {} : { phase: LIVE_BEFORE[phase] };
      sns.resetHistory();
      runs.set(`${stage}/${phase}`, await deploy(stage, phase, live));
      published.set(
        `${stage}/${phase}`,
        sns.commandCalls(PublishCommand).map((c) => ({
          Subject: c.args[0].input.Subject,
          TopicArn: c.args[0].input.TopicArn,
          event: c.args[0].input.MessageAttributes?.event?.StringValue,
        })),
      );
    }
  }
}, 600_000);
afterAll(async () => {
  sns.restore();
  await disposeHarness();
});

const ofType = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type);
const one = (run: ProgramRun, type: string, pick: (r: RecordedResource) => boolean) => {
  const found = ofType(run, type).filter(pick);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};
const physical = (stage: string, logical: string) =>
  stage === "prod" ? PHYSICAL[logical]! : `${stage}-${PHYSICAL[logical]}`;
/** A GSI's key attributes, HASH first, whichever way it is declared. */
const gsiKeys = (g: any): string[] =>
  g.keySchemas ? g.keySchemas.map((k: any) => k.attributeName) : [g.hashKey, g.rangeKey].filter(Boolean);

describe.each(["dev", "prod"])("stage %s", (stage) => {
  const prod = stage === "prod";

  it("every phase deploys without refusal, reporting the index changes it makes", () => {
    expect(runOf(stage, "expand").error).toBeUndefined();
    expect(runOf(stage, "index").error).toBeUndefined();
    expect(runOf(stage, "contract").error).toBeUndefined();
    expect(runOf(stage, "expand").outputs.indexChanges).toEqual([]);
    expect(runOf(stage, "index").outputs.indexChanges).toEqual([
      `create GSI3-StatusIndex on ${physical(stage, "reports")}`,
      `create GSI2-StatusIndex on ${physical(stage, "personnel")}`,
      `create GSI2-TypeIndex on ${physical(stage, "vendors")}`,
      `create GSI3-ProjectDateIndex on ${physical(stage, "constraints")}`,
    ]);
    expect(runOf(stage, "contract").outputs.indexChanges).toEqual([
      `delete GSI2-ProjectIndex on ${physical(stage, "personnel")}`,
    ]);
  });

  it(
    "pins the region (us-east-1) for the provider, the outputs and the Migrator link the CLI checks " +
      "under sst shell",
    () => {
      for (const phase of DEPLOY_PHASES) {
        const run = runOf(stage, phase);
        expect(run.app.providers).toEqual({ aws: { region: "us-east-1" } });
        expect(run.outputs.region).toBe("us-east-1");
        const topic = one(run, "aws:sns/topic:Topic", () => true);
        expect(run.links.find((l) => l.name === "Migrator")?.properties).toEqual({
          stage,
          region: "us-east-1",
          topicArn: topic.outputs.arn,
        });
      }
    },
  );

  it("announces each index change to the stage's topic once the deploy has made it (gh-ost's on-success hook)", () => {
    const topicArn = one(runOf(stage, "index"), "aws:sns/topic:Topic", () => true).outputs.arn;
    expect(published.get(`${stage}/expand`)).toEqual([]);
    // Each as its table's update completes: in no particular order.
    const bySubject = (a: { Subject?: string }, b: { Subject?: string }) =>
      String(a.Subject).localeCompare(String(b.Subject));
    expect(published.get(`${stage}/index`)!.sort(bySubject)).toEqual(
      [
        "GSI3-StatusIndex on reports",
        "GSI2-StatusIndex on personnel",
        "GSI2-TypeIndex on vendors",
        "GSI3-ProjectDateIndex on constraints",
      ]
        .map((what) => {
          const [index, table] = what.split(" on ");
          return {
            Subject: `[sitelogix-migrator ${stage}] index ACTIVE: ${index} on ${physical(stage, table!)}`,
            TopicArn: topicArn,
            event: "index-active",
          };
        })
        .sort(bySubject),
    );
    expect(published.get(`${stage}/contract`)).toEqual([
      {
        Subject: `[sitelogix-migrator ${stage}] index deleted: GSI2-ProjectIndex on ${physical(stage, "personnel")}`,
        TopicArn: topicArn,
        event: "index-deleted",
      },
    ]);
    expect(runOf(stage, "index").outputs.phaseEvents).toHaveLength(4);
    for (const line of runOf(stage, "index").outputs.phaseEvents) expect(line).toMatch(/: notified$/);
  });

  describe.each(DEPLOY_PHASES)("phase %s", (phase) => {
    const table = (logical: string) =>
      one(runOf(stage, phase), "aws:dynamodb/table:Table", (r) => r.inputs.name === physical(stage, logical));

    it("declares the eight tables with their keys and this phase's GSIs (projection ALL, keys S)", () => {
      expect(ofType(runOf(stage, phase), "aws:dynamodb/table:Table")).toHaveLength(8);
      for (const logical of Object.keys(PHYSICAL)) {
        const t = table(logical).inputs;
        const gsis = (t.globalSecondaryIndexes ?? []).map((g: any) => `${g.name}=${gsiKeys(g).join(",")}`);
        expect(gsis, logical).toEqual(GSIS[phase][logical]);
        expect(new Set((t.globalSecondaryIndexes ?? []).map((g: any) => g.projectionType))).toEqual(
          new Set(gsis.length ? ["ALL"] : []),
        );
        const keys = ["PK", "SK"];
        expect([t.hashKey, t.rangeKey].filter(Boolean)).toEqual(keys);
        const keyAttributes = new Set([...keys, ...GSIS[phase][logical]!.flatMap((g) => g.split("=")[1]!.split(","))]);
        expect(t.attributes).toEqual([...keyAttributes].map((name) => ({ name, type: "S" })));
        expect(t.billingMode).toBe("PAY_PER_REQUEST");
      }
    });

    it(
      "declares GSIs of tables created with their indexes with keySchemas, and keeps hashKey/rangeKey " +
        "on the four existing tables",
      () => {
        for (const logical of Object.keys(PHYSICAL)) {
          for (const g of table(logical).inputs.globalSecondaryIndexes ?? []) {
            if (EXISTING.includes(logical)) {
              expect(g.keySchemas, `${logical} ${g.name}`).toBeUndefined();
              expect(g.hashKey, `${logical} ${g.name}`).toBeDefined();
            } else {
              expect(g.hashKey, `${logical} ${g.name}`).toBeUndefined();
              expect(g.rangeKey, `${logical} ${g.name}`).toBeUndefined();
              // HASH first, then RANGE: the declaration of today's hashKey/rangeKey, no other index.
              expect(g.keySchemas.map((k: any) => k.keyType)).toEqual(
                g.keySchemas.length === 2 ? ["HASH", "RANGE"] : ["HASH"],
              );
            }
          }
        }
      },
    );

    it("streams NEW_AND_OLD_IMAGES on the six SiteLogix tables; PITR, encryption and TTL where due", () => {
      for (const logical of Object.keys(PHYSICAL)) {
        const t = table(logical).inputs;
        if (APP_TABLES.includes(logical))
          expect(t, logical).toMatchObject({ streamEnabled: true, streamViewType: "NEW_AND_OLD_IMAGES" });
        else expect(t.streamEnabled, logical).toBe(false);
        expect(t.pointInTimeRecovery, logical).toEqual({ enabled: true });
        // Tables the stage creates: the AWS-managed KMS key. Adopted ones keep theirs (here: the AWS-owned default).
        expect(t.serverSideEncryption, logical).toEqual(
          prod && EXISTING.includes(logical) ? undefined : { enabled: true },
        );
        expect(t.ttl, logical).toEqual(TTL[logical] ? { attributeName: TTL[logical], enabled: true } : undefined);
      }
    });

    it(
      prod
        ? "adopts the four existing tables (import, never create) and protects every table"
        : "creates every table, unprotected",
      () => {
        for (const logical of Object.keys(PHYSICAL)) {
          const t = table(logical);
          const adopted = prod && EXISTING.includes(logical);
          expect(t.importId, logical).toBe(adopted ? PHYSICAL[logical] : undefined);
          expect(t.inputs.deletionProtectionEnabled, logical).toBe(prod);
          expect(t.protect ?? false, logical).toBe(prod);
          // prod's removal is "retain": even a table dropped from the code stays in the account.
          expect(t.retainOnDelete ?? false, logical).toBe(prod);
          expect(t.customTimeouts?.update, logical).toBe("12h");
          const tags = ofType(runOf(stage, phase), "aws:dynamodb/tag:Tag").filter(
            (tag) => tag.inputs.resourceArn === t.outputs.arn,
          );
          if (adopted) {
            // Added one by one, leaving the application team's own tags on the table alone.
            expect(t.inputs.tags).toBeUndefined();
            expect(t.ignoreChanges).toEqual(expect.arrayContaining(["tags", "tagsAll"]));
            expect(Object.fromEntries(tags.map((tag) => [tag.inputs.key, tag.inputs.value]))).toEqual({
              "sitelogix:table": logical,
              "sitelogix:managed-by": "sitelogix-migrator",
            });
          } else {
            expect(t.inputs.tags).toEqual({ "sitelogix:table": logical, "sitelogix:managed-by": "sitelogix-migrator" });
            expect(tags).toEqual([]);
          }
        }
      },
    );
  });

  describe("stream subscriptions (expand)", () => {
    const run = () => runOf(stage, "expand");
    const tableArn = (logical: string) =>
      one(run(), "aws:dynamodb/table:Table", (r) => r.inputs.name === physical(stage, logical)).outputs;
    const fnByArn = (arn: string) => one(run(), "aws:lambda/function:Function", (r) => r.outputs.arn === arn);
    const roleOf = (fn: RecordedResource) => one(run(), "aws:iam/role:Role", (r) => r.outputs.arn === fn.inputs.role);
    const statementsOf = (fn: RecordedResource): { Effect: string; Action: string[]; Resource: string[] }[] =>
      JSON.parse(roleOf(fn).inputs.inlinePolicies[0].policy).Statement;
    const mappings = () =>
      ofType(run(), "aws:lambda/eventSourceMapping:EventSourceMapping").map((esm) => {
        const fn = fnByArn(esm.inputs.functionName);
        const source = Object.keys(PHYSICAL).find(
          (logical) => esm.inputs.eventSourceArn === tableArn(logical).streamArn,
        )!;
        return { esm, fn, source, role: fn.inputs.environment.variables.POWERTOOLS_SERVICE_NAME as string };
      });

    it("normalizer on the five tables with rules, audit logger on all six; each its own function", () => {
      const subscriptions = mappings()
        .map((m) => `${m.role} <- ${m.source}`)
        .sort();
      expect(subscriptions).toEqual(
        [
          ...NORMALIZED.map((t) => `sitelogix-normalizer <- ${t}`),
          ...APP_TABLES.map((t) => `sitelogix-audit-logger <- ${t}`),
        ].sort(),
      );
      expect(new Set(mappings().map((m) => m.fn.outputs.arn)).size).toBe(11);
    });

    it("filters the normalizer to INSERT/MODIFY and a removed visit, and never filters the audit logger", () => {
      for (const { esm, role } of mappings()) {
        if (role === "sitelogix-normalizer") {
          expect(esm.inputs.filterCriteria).toEqual({
            filters: [
              { pattern: '{"eventName":["INSERT","MODIFY"]}' },
              { pattern: '{"eventName":["REMOVE"],"dynamodb":{"Keys":{"SK":{"S":[{"prefix":"HISTORY#"}]}}}}' },
            ],
          });
        } else expect(esm.inputs.filterCriteria).toBeUndefined();
      }
    });

    it(
      "maps with partial batch responses, bisect, finite retries and record age, from TRIM_HORIZON, " +
        "failures to the function's own DLQ",
      () => {
        const queues = ofType(run(), "aws:sqs/queue:Queue");
        expect(queues).toHaveLength(11);
        for (const { esm, role } of mappings()) {
          expect(esm.inputs).toMatchObject({
            startingPosition: "TRIM_HORIZON",
            batchSize: 100,
            maximumBatchingWindowInSeconds: 1,
            bisectBatchOnFunctionError: true,
            maximumRetryAttempts: 10,
            maximumRecordAgeInSeconds: role === "sitelogix-normalizer" ? 6 * 3600 : 24 * 3600,
            functionResponseTypes: ["ReportBatchItemFailures"],
          });
          expect(queues.map((q) => q.outputs.arn)).toContain(esm.inputs.destinationConfig.onFailure.destinationArn);
        }
        const destinations = mappings().map((m) => m.esm.inputs.destinationConfig.onFailure.destinationArn);
        expect(new Set(destinations).size).toBe(11);
        for (const q of queues)
          expect(q.inputs).toMatchObject({ messageRetentionSeconds: 14 * 24 * 3600, sqsManagedSseEnabled: true });
      },
    );

    it("builds the right handler for each function, with Powertools settings and every table's name linked", () => {
      for (const { fn, role } of mappings()) {
        expect(fn.inputs.runtime).toBe("nodejs22.x");
        expect(fn.inputs.environment.variables).toMatchObject({
          POWERTOOLS_SERVICE_NAME: role,
          POWERTOOLS_METRICS_NAMESPACE: "SiteLogixMigrator",
        });
      }
      const all = [...run().builds.values()];
      // The eleven stream functions, the digest writer (test/infra-digests.test.ts) and the sweep worker
      // (test/infra-sweep.test.ts).
      expect(all).toHaveLength(13);
      expect(all.filter((b) => b.handler === "packages/functions/src/digest-writer.handler")).toHaveLength(1);
      expect(all.filter((b) => b.handler.includes("sweep-worker"))).toHaveLength(1);
      const builds = all.filter(
        (b) => b.handler !== "packages/functions/src/digest-writer.handler" && !b.handler.includes("sweep-worker"),
      );
      expect(builds.filter((b) => b.handler === "packages/functions/src/normalizer.handler")).toHaveLength(5);
      expect(builds.filter((b) => b.handler === "packages/functions/src/audit-logger.handler")).toHaveLength(6);
      const linked = Object.fromEntries(
        Object.values(TABLES).map((def) => [
          def.linkName,
          { name: physical(stage, def.logical), type: "sst.sst.Linkable" },
        ]),
      );
      for (const b of builds) expect(b.links).toEqual(linked);
    });

    it(
      "grants least privilege: the normalizer its own table, its stream, the ledger and its DLQ; " + "never a wildcard",
      () => {
        for (const { fn, source, role, esm } of mappings().filter((m) => m.role === "sitelogix-normalizer")) {
          const statements = statementsOf(fn);
          const on = (resource: string) =>
            statements
              .filter((s) => s.Resource.includes(resource))
              .flatMap((s) => s.Action)
              .sort();
          expect(on(tableArn(source).arn), `${role} ${source}`).toEqual([
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
          ]);
          expect(on(tableArn(source).streamArn)).toEqual([
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
          ]);
          expect(on(tableArn("ledger").arn)).toEqual([
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
          ]);
          expect(on(esm.inputs.destinationConfig.onFailure.destinationArn)).toEqual(["sqs:SendMessage"]);
          const resources = new Set(statements.flatMap((s) => s.Resource));
          expect(resources).toEqual(
            new Set([
              tableArn(source).arn,
              tableArn(source).streamArn,
              tableArn("ledger").arn,
              esm.inputs.destinationConfig.onFailure.destinationArn,
            ]),
          );
        }
      },
    );

    it(
      "grants least privilege: the audit logger may only read and put items in the audit table " + "(no Update/Delete)",
      () => {
        for (const { fn, source, esm } of mappings().filter((m) => m.role === "sitelogix-audit-logger")) {
          const statements = statementsOf(fn);
          const on = (resource: string) =>
            statements
              .filter((s) => s.Resource.includes(resource))
              .flatMap((s) => s.Action)
              .sort();
          expect(on(tableArn("audit").arn), source).toEqual(["dynamodb:GetItem", "dynamodb:PutItem"]);
          expect(on(tableArn(source).streamArn)).toEqual([
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
          ]);
          expect(on(tableArn(source).arn)).toEqual([]);
          expect(on(esm.inputs.destinationConfig.onFailure.destinationArn)).toEqual(["sqs:SendMessage"]);
        }
      },
    );

    it("grants no wildcard action or resource to any function", () => {
      for (const { fn } of mappings()) {
        for (const s of statementsOf(fn)) {
          expect(s.Effect).toBe("Allow");
          for (const action of s.Action) expect(action).not.toMatch(/\*/);
          for (const resource of s.Resource) expect(resource).not.toBe("*");
        }
        expect(roleOf(fn).inputs.managedPolicyArns).toEqual([
          "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ]);
      }
    });

    it(
      "alarms on iterator age, errors and DLQ depth per function, per-record failures per role and " +
        "throttling per table and GSI, all to one topic",
      () => {
        const alarms = ofType(run(), "aws:cloudwatch/metricAlarm:MetricAlarm");
        const topic = one(run(), "aws:sns/topic:Topic", () => true);
        for (const a of alarms) expect(a.inputs.alarmActions).toEqual([topic.outputs.arn]);
        for (const a of alarms)
          expect((a.inputs.metricQueries ?? []).filter((q: any) => q.metric).length, a.name).toBeLessThanOrEqual(10);
        const subscriptions = ofType(run(), "aws:sns/topicSubscription:TopicSubscription").map((s) => s.inputs);
        expect(subscriptions).toEqual(
          prod ? [expect.objectContaining({ topic: topic.outputs.arn, protocol: "email", endpoint: ONCALL })] : [],
        );
        const byMetric = (metric: string, dimension: string, value: string) =>
          alarms.filter((a) => a.inputs.metricName === metric && a.inputs.dimensions?.[dimension] === value);
        for (const { fn, esm } of mappings()) {
          expect(byMetric("IteratorAge", "FunctionName", fn.inputs.name).map((a) => a.inputs)).toEqual([
            expect.objectContaining({
              namespace: "AWS/Lambda",
              statistic: "Maximum",
              threshold: 5 * 60_000,
              comparisonOperator: "GreaterThanThreshold",
            }),
          ]);
          expect(byMetric("Errors", "FunctionName", fn.inputs.name).map((a) => a.inputs)).toEqual([
            expect.objectContaining({ statistic: "Sum", threshold: 0 }),
          ]);
          const dlq = one(
            run(),
            "aws:sqs/queue:Queue",
            (q) => q.outputs.arn === esm.inputs.destinationConfig.onFailure.destinationArn,
          );
          expect(
            byMetric("ApproximateNumberOfMessagesVisible", "QueueName", dlq.outputs.name).map((a) => a.inputs),
          ).toEqual([
            expect.objectContaining({ namespace: "AWS/SQS", threshold: 0, comparisonOperator: "GreaterThanThreshold" }),
          ]);
        }
        for (const logical of Object.keys(PHYSICAL)) {
          const throttles = alarms.filter((a) =>
            a.inputs.metricQueries?.some((q: any) => q.metric?.dimensions?.TableName === physical(stage, logical)),
          );
          expect(throttles, logical).toHaveLength(1);
          const metrics = throttles[0]!.inputs.metricQueries
            .filter((q: any) => q.metric)
            .map((q: any) => `${q.metric.metricName} ${q.metric.dimensions.GlobalSecondaryIndexName ?? "table"}`);
          const indexes = ["table", ...EXPAND_GSIS[logical]!.map((g) => g.split("=")[0])];
          expect(metrics.sort(), logical).toEqual(
            indexes.flatMap((i) => [`ReadThrottleEvents ${i}`, `WriteThrottleEvents ${i}`]).sort(),
          );
          const sum = throttles[0]!.inputs.metricQueries.find((q: any) => q.returnData);
          for (const q of throttles[0]!.inputs.metricQueries.filter((q: any) => q.metric))
            expect(sum.expression).toContain(`FILL(${q.id}, 0)`);
        }
        // With ReportBatchItemFailures a failed record leaves Lambda's Errors at 0: the functions' own metrics.
        const recordFailures = (service: string) =>
          alarms
            .filter((a) => a.inputs.metricQueries?.some((q: any) => q.metric?.dimensions?.service === service))
            .map((a) =>
              a.inputs.metricQueries
                .filter((q: any) => q.metric)
                .map((q: any) => `${q.metric.namespace} ${q.metric.metricName}`),
            );
        expect(recordFailures("sitelogix-normalizer")).toEqual([
          ["SiteLogixMigrator failed", "SiteLogixMigrator malformed"],
        ]);
        expect(recordFailures("sitelogix-audit-logger")).toEqual([["SiteLogixMigrator AuditRecordsFailed"]]);
        // Per function, per table, per role, the distributed sweep's failed executions and the digest
        // writer's two (test/infra-digests.test.ts).
        expect(alarms).toHaveLength(11 * 3 + Object.keys(PHYSICAL).length + 2 + 1 + 2);
      },
    );
  });
});

describe("the deploy refuses", () => {
  it(
    "invariant 8: gated indexes — the index phase in prod when a table's gate is not green, " + "declaring nothing",
    async () => {
      const run = await deploy("prod", "index", {
        phase: "expand",
        gateClosed: ["the latest verify (2025-11-20T09:30:00.000Z) is not green: 3 gaps, 0 violations"],
      });
      expect(run.error?.name).toBe("DeployRefusedError");
      expect(run.error?.message).toContain(
        'deploy of phase "index" refused:\n  - sitelogix-reports: the index gate is closed, so GSI3-StatusIndex ' +
          "cannot be built: the latest verify (2025-11-20T09:30:00.000Z) is not green: 3 gaps, 0 violations",
      );
      expect(run.error?.message).toContain(
        "sitelogix-personnel: the index gate is closed, so GSI2-StatusIndex cannot be built",
      );
      expect(ofType(run, "aws:dynamodb/table:Table")).toEqual([]);
    },
  );

  it("contract straight after expand (two index changes on personnel in one deploy)", async () => {
    const run = await deploy("dev", "contract", { phase: "expand" });
    expect(run.error?.message).toContain("dev-sitelogix-personnel would need 2 index changes in one deploy");
    expect(run.resources).toEqual([]);
  });

  it("an adopting deploy when an existing table is missing from the account", async () => {
    const run = await deploy("prod", "expand", {});
    expect(run.error?.message).toContain(
      "sitelogix-reports does not exist: this stage adopts the existing table and never creates it",
    );
  });
});

describe("adopting production's tables", () => {
  const KEY = "arn:aws:kms:us-east-1:123456789012:key/0b9e6a8e-cmk";
  const AWS_KEY = "arn:aws:kms:us-east-1:123456789012:key/5f1c2d3e-aws-dynamodb";
  const sse = (keyArn: string) => (d: any) => ({
    ...d,
    SSEDescription: { Status: "ENABLED", SSEType: "KMS", KMSMasterKeyArn: keyArn },
  });
  const tableNamed = (run: ProgramRun, name: string) =>
    one(run, "aws:dynamodb/table:Table", (r) => r.inputs.name === name);
  // The stream functions and the sweep worker: the functions that read the rule tables.
  const tableReaders = (run: ProgramRun) =>
    ofType(run, "aws:lambda/function:Function").filter((fn) =>
      ["sitelogix-normalizer", "sitelogix-audit-logger", "sitelogix-sweep-worker"].includes(
        fn.inputs.environment?.variables?.POWERTOOLS_SERVICE_NAME,
      ),
    );
  /** kms:Decrypt grants per table reader (by its description, e.g. `normalizer on sitelogix-reports`). */
  const decryptGrants = (run: ProgramRun) =>
    Object.fromEntries(
      tableReaders(run).map((fn) => {
        const role = one(run, "aws:iam/role:Role", (r) => r.outputs.arn === fn.inputs.role);
        const statements: { Action: string[]; Resource: string[] }[] = JSON.parse(
          role.inputs.inlinePolicies[0].policy,
        ).Statement;
        return [
          fn.inputs.description,
          statements.filter((st) => st.Action.includes("kms:Decrypt")).flatMap((st) => st.Resource),
        ];
      }),
    );

  it(
    "keeps a table's customer-managed key, and the functions on that table may decrypt with it " + "(no other grant)",
    async () => {
      const run = await deploy("prod", "expand", {
        phase: "legacy",
        keys: { [KEY]: "CUSTOMER" },
        change: { reports: sse(KEY) },
      });
      expect(run.error).toBeUndefined();
      expect(tableNamed(run, "sitelogix-reports").inputs.serverSideEncryption).toEqual({
        enabled: true,
        kmsKeyArn: KEY,
      });
      const grants = decryptGrants(run);
      // The 11 stream functions and the sweep worker, which reads every table with rules.
      expect(Object.keys(grants)).toHaveLength(12);
      for (const [fn, resources] of Object.entries(grants))
        expect(resources, fn).toEqual(
          fn.endsWith(" on sitelogix-reports") || fn.startsWith("sweep segment worker") ? [KEY] : [],
        );
    },
  );

  it("keeps the AWS-managed key and the AWS-owned default as they are, with no KMS grant", async () => {
    const run = await deploy("prod", "expand", { phase: "legacy", change: { personnel: sse(AWS_KEY) } });
    expect(run.error).toBeUndefined();
    expect(tableNamed(run, "sitelogix-personnel").inputs.serverSideEncryption).toEqual({ enabled: true });
    expect(tableNamed(run, "sitelogix-reports").inputs.serverSideEncryption).toBeUndefined();
    for (const resources of Object.values(decryptGrants(run))) expect(resources).toEqual([]);
  });

  it("refuses every difference Pulumi would change, re-create or replace, before declaring anything", async () => {
    const run = await deploy("prod", "expand", {
      phase: "legacy",
      change: {
        reports: (d) => ({
          ...d,
          GlobalSecondaryIndexes: d.GlobalSecondaryIndexes!.map((g) =>
            g.IndexName === "GSI1-ProjectIndex" ? { ...g, Projection: { ProjectionType: "KEYS_ONLY" } } : g,
          ),
        }),
        personnel: (d) => ({
          ...d,
          LocalSecondaryIndexes: [
            {
              IndexName: "LSI1-ByUpdatedAt",
              KeySchema: [
                { AttributeName: "PK", KeyType: "HASH" },
                { AttributeName: "updatedAt", KeyType: "RANGE" },
              ],
            },
          ],
        }),
        vendors: (d) => ({ ...d, TableClassSummary: { TableClass: "STANDARD_INFREQUENT_ACCESS" } }),
        constraints: (d) => ({
          ...d,
          StreamSpecification: { StreamEnabled: true, StreamViewType: "KEYS_ONLY" },
          LatestStreamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/sitelogix-constraints/stream/2024",
        }),
      },
    });
    expect(run.error?.name).toBe("DeployRefusedError");
    const lines = run.error!.message.split("\n").slice(1);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      new RegExp(
        String.raw`^ {2}- sitelogix-reports: GSI GSI1-ProjectIndex is \(project_id HASH, report_date RANGE; ` +
          String.raw`KEYS_ONLY\), the schema declares \(project_id HASH, report_date RANGE; ALL\): ` +
          "the deploy would delete and re-create it",
      ),
    );
    expect(lines[1]).toMatch(
      /^ {2}- sitelogix-personnel: has local secondary index LSI1-ByUpdatedAt .*Pulumi would replace the table/,
    );
    expect(lines[2]).toMatch(
      new RegExp(
        "^ {2}- sitelogix-vendors: is in table class STANDARD_INFREQUENT_ACCESS, the stacks declare STANDARD: " +
          "the deploy would switch its class",
      ),
    );
    expect(lines[3]).toMatch(
      new RegExp(
        "^ {2}- sitelogix-constraints: has a stream of view type KEYS_ONLY, the stacks declare " +
          "NEW_AND_OLD_IMAGES: .*new stream ARN",
      ),
    );
    expect(run.resources).toEqual([]);
  });
});

describe("alarm destinations", () => {
  const withAlarms = (alarms: MigrationConfig["otherStages"]["alarms"]): MigrationConfig => {
    const config = atPhase(migrationConfig, "expand");
    return { ...config, stages: { ...config.stages, prod: { ...config.stages.prod!, alarms } } };
  };

  it("a prod deploy without one is refused, declaring nothing, and says what to set", async () => {
    const run = await deploy("prod", "expand", { phase: "legacy" }, withAlarms(undefined));
    expect(run.error?.message).toContain(
      'migration.config.ts: stage "prod" has no alarm destination, so every alarm would notify nobody: ' +
        "set alarms.email (addresses; each confirms once) or alarms.topicArn (an existing SNS topic in us-east-1)",
    );
    expect(run.resources).toEqual([]);
  });

  it("an existing topic gets the alarms and the phase events instead of one the stage creates", async () => {
    const topicArn = "arn:aws:sns:us-east-1:123456789012:sitelogix-ops-pager";
    const run = await deploy("prod", "expand", { phase: "legacy" }, withAlarms({ topicArn }));
    expect(run.error).toBeUndefined();
    expect(ofType(run, "aws:sns/topic:Topic")).toEqual([]);
    for (const a of ofType(run, "aws:cloudwatch/metricAlarm:MetricAlarm"))
      expect(a.inputs.alarmActions).toEqual([topicArn]);
    expect(run.links.find((l) => l.name === "Migrator")?.properties).toMatchObject({ topicArn });
  });

  it(
    "refuses a topic in another region (alarms notify their own region only) and an address " + "that is not one",
    async () => {
      const run = await deploy(
        "prod",
        "expand",
        { phase: "legacy" },
        withAlarms({ email: ["oncall"], topicArn: "arn:aws:sns:eu-west-1:123456789012:ops" }),
      );
      expect(run.error?.message).toContain('stage "prod": alarms.email "oncall" is not an e-mail address');
      expect(run.error?.message).toContain(
        'stage "prod": alarms.topicArn is in eu-west-1, the stage deploys to us-east-1; ' +
          "CloudWatch alarms notify topics of their own region only",
      );
    },
  );
});

describe("the checked-in configuration", () => {
  it("adopts production's tables and deploys every stage at a deploy phase", () => {
    expect(migrationConfig.stages.prod).toMatchObject({ existingTables: "adopt" });
    for (const stage of [...Object.values(migrationConfig.stages), migrationConfig.otherStages])
      expect(DEPLOY_PHASES).toContain(stage.phase);
  });

  it("sst-env.d.ts types exactly the links the program declares", async () => {
    const text = await readFile(join(ROOT, "sst-env.d.ts"), "utf8");
    const typed: Record<string, Record<string, string>> = {};
    for (const [, name, body] of text.matchAll(/^ {4}"([^"]+)": \{\n((?: {6}.*\n)*?) {4}\}/gm)) {
      typed[name!] = Object.fromEntries([...body!.matchAll(/"([^"]+)": (.+)/g)].map(([, key, type]) => [key!, type!]));
    }
    const declared = Object.fromEntries(
      runOf("dev", "expand").links.map((link) => [
        link.name,
        {
          // A property without a value (a function's url) is left out, as SST's generator drops it.
          ...Object.fromEntries(
            Object.entries(link.properties)
              .filter(([, value]) => value !== undefined)
              .map(([key, value]) => [key, typeof value]),
          ),
          type: JSON.stringify(link.type),
        },
      ]),
    );
    expect(typed).toEqual(declared);
    // resolveTableNames() reads Resource.<linkName>.name for every table.
    for (const def of Object.values(TABLES))
      expect(typed[def.linkName]).toEqual({ name: "string", type: '"sst.sst.Linkable"' });
  });
});
