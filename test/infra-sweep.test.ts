// The distributed sweep's stack (stacks/sweep.ts) in dev and prod, run as `sst deploy` would under
// Pulumi's mocks (test/infra/harness.ts): the state machine's settings, its role, the worker's
// least-privilege IAM, the link the CLI reads, and a configuration that is refused. Expected values
// are written out here by hand from the issue, not read from the code under test.
import validator from "asl-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import migrationConfig from "../migration.config.js";
import type { MigrationConfig } from "../stacks/config.js";
import { inputs } from "../stacks/inputs.js";
import { disposeHarness, runProgram, type ProgramRun, type RecordedResource } from "./infra/harness.js";
import { fakeLiveTables, type LiveState } from "./infra/live.js";

const ONCALL = "migration-oncall@sitelogix.example";
const ACCOUNT = "123456789012";
const RULE_TABLES = ["reports", "personnel", "vendors", "constraints", "work-logs"];
const physical = (stage: string, name: string) =>
  `${stage === "prod" ? "" : `${stage}-`}sitelogix-${name === "ledger" ? "migration-ledger" : name}`;
const tableArn = (stage: string, name: string) =>
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${physical(stage, name)}`;

function withProdAlarms(config: MigrationConfig): MigrationConfig {
  return {
    ...config,
    stages: Object.fromEntries(
      Object.entries(config.stages).map(([stage, c]) => [stage, { alarms: { email: [ONCALL] }, ...c }]),
    ),
  };
}

async function deploy(stage: string, live: LiveState, config = withProdAlarms(migrationConfig)) {
  inputs.config = config;
  inputs.liveTables = fakeLiveTables(live);
  return runProgram(stage);
}

const runs = new Map<string, ProgramRun>();
beforeAll(async () => {
  runs.set("dev", await deploy("dev", {}));
  runs.set("prod", await deploy("prod", { phase: "legacy" }));
}, 300_000);
afterAll(() => disposeHarness());

const ofType = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type);
const one = (run: ProgramRun, type: string, pick: (r: RecordedResource) => boolean = () => true) => {
  const found = ofType(run, type).filter(pick);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};

describe.each([
  { stage: "dev", maxConcurrency: 4, segments: 16 },
  { stage: "prod", maxConcurrency: 16, segments: 64 },
])("stage $stage", ({ stage, maxConcurrency, segments }) => {
  const run = () => runs.get(stage)!;
  const machine = () => one(run(), "aws:sfn/stateMachine:StateMachine");
  const worker = () =>
    one(run(), "aws:lambda/function:Function", (f) => f.inputs.description === `sweep segment worker (${stage})`);
  const machineArn = `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:sitelogix-migrator-${stage}-Sweep`;
  const definition = () => JSON.parse(machine().inputs.definition);

  it("deploys a STANDARD state machine whose definition asl-validator accepts", () => {
    expect(run().error).toBeUndefined();
    expect(machine().inputs).toMatchObject({ name: `sitelogix-migrator-${stage}-Sweep`, type: "STANDARD" });
    expect(machine().outputs.arn).toBe(machineArn);
    const result = validator(definition());
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it("maps the segments as STANDARD child executions, at most maxConcurrency at once, tolerating no failure", () => {
    const map = definition().States[definition().StartAt];
    expect(map).toMatchObject({
      Type: "Map",
      MaxConcurrency: maxConcurrency,
      ToleratedFailurePercentage: 0,
      Items: "{% $states.input.segments %}",
      ItemProcessor: { ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" } },
    });
  });

  it("invokes the worker with retries on Lambda's transient errors, and records a failure in the ledger", () => {
    const states = definition().States.Segments.ItemProcessor.States;
    expect(states.RunSlice.Resource).toBe("arn:aws:states:::lambda:invoke");
    expect(states.RunSlice.Arguments.FunctionName).toBe(worker().outputs.arn);
    expect(states.RunSlice.Retry).toEqual([
      expect.objectContaining({
        ErrorEquals: [
          "Lambda.TooManyRequestsException",
          "Lambda.ServiceException",
          "Lambda.AWSLambdaException",
          "Lambda.SdkClientException",
          "Lambda.ClientExecutionTimeoutException",
        ],
        BackoffRate: 2,
      }),
    ]);
    expect(states.RunSlice.Catch).toEqual([
      expect.objectContaining({ ErrorEquals: ["States.ALL"], Next: "RecordFailure" }),
    ]);
    expect(states.RecordFailure).toMatchObject({
      Resource: "arn:aws:states:::dynamodb:updateItem",
      Arguments: { TableName: physical(stage, "ledger") },
      Next: "SegmentFailed",
    });
    expect(states.SegmentFailed.Type).toBe("Fail");
  });

  it("logs to its own log group (kept 90 days), without execution data", () => {
    const group = one(run(), "aws:cloudwatch/logGroup:LogGroup", (g) => g.inputs.name?.includes("states"));
    expect(group.inputs).toMatchObject({
      name: `/aws/vendedlogs/states/sitelogix-migrator-${stage}-Sweep`,
      retentionInDays: 90,
    });
    expect(machine().inputs.loggingConfiguration).toEqual({
      logDestination: `${group.outputs.arn}:*`,
      includeExecutionData: false,
      level: "ALL",
    });
  });

  it("gives the state machine's role the worker, the ledger's UpdateItem and its own child executions", () => {
    const role = one(run(), "aws:iam/role:Role", (r) => r.outputs.arn === machine().inputs.roleArn);
    expect(JSON.parse(role.inputs.assumeRolePolicy).Statement).toEqual([
      { Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" },
    ]);
    const statements: { Action: string[]; Resource: string[] }[] = JSON.parse(
      role.inputs.inlinePolicies[0].policy,
    ).Statement;
    const on = (resource: string) =>
      statements
        .filter((s) => s.Resource.includes(resource))
        .flatMap((s) => s.Action)
        .sort();
    expect(on(worker().outputs.arn)).toEqual(["lambda:InvokeFunction"]);
    expect(on(tableArn(stage, "ledger"))).toEqual(["dynamodb:UpdateItem"]);
    expect(on(machineArn)).toEqual(["states:StartExecution"]);
    expect(on(`arn:aws:states:us-east-1:${ACCOUNT}:execution:sitelogix-migrator-${stage}-Sweep/*`)).toEqual([
      "states:DescribeExecution",
      "states:RedriveExecution",
      "states:StopExecution",
    ]);
    // Vended log delivery takes no resource-level permissions: only logs actions on "*".
    for (const action of on("*")) expect(action).toMatch(/^logs:/);
    expect(statements.flatMap((s) => s.Resource).sort()).toEqual(
      [
        worker().outputs.arn,
        tableArn(stage, "ledger"),
        machineArn,
        `arn:aws:states:us-east-1:${ACCOUNT}:execution:sitelogix-migrator-${stage}-Sweep/*`,
        "*",
      ].sort(),
    );
  });

  it("runs the worker handler with a 15-minute timeout and a 10-minute slice", () => {
    expect(worker().inputs).toMatchObject({ runtime: "nodejs22.x", timeout: 900 });
    expect(worker().inputs.environment.variables).toMatchObject({
      SITELOGIX_SWEEP_SLICE_MS: "600000",
      POWERTOOLS_SERVICE_NAME: "sitelogix-sweep-worker",
    });
    expect(
      [...run().builds.values()].filter((b) => b.handler === "packages/functions/src/sweep-worker.handler"),
    ).toHaveLength(1);
  });

  it("grants the worker exactly Scan/UpdateItem on the rule tables, Query on personnel, and its ledger records", () => {
    const role = one(run(), "aws:iam/role:Role", (r) => r.outputs.arn === worker().inputs.role);
    expect(role.inputs.managedPolicyArns).toEqual(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    const statements: { Effect: string; Action: string[]; Resource: string[] }[] = JSON.parse(
      role.inputs.inlinePolicies[0].policy,
    ).Statement;
    const grants: Record<string, string[]> = {};
    for (const s of statements) {
      expect(s.Effect).toBe("Allow");
      for (const resource of s.Resource) (grants[resource] ??= []).push(...s.Action);
    }
    for (const grant of Object.values(grants)) grant.sort();
    expect(grants).toEqual({
      ...Object.fromEntries(
        RULE_TABLES.map((t) => [
          tableArn(stage, t),
          t === "personnel"
            ? ["dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"]
            : ["dynamodb:Scan", "dynamodb:UpdateItem"],
        ]),
      ),
      [tableArn(stage, "ledger")]: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    });
  });

  it("links the state machine for the CLI, and pages the stage's topic when an execution fails", () => {
    expect(run().links.find((l) => l.name === "SweepMachine")?.properties).toEqual({
      arn: machineArn,
      segments,
      maxConcurrency,
    });
    const topic = one(run(), "aws:sns/topic:Topic");
    const alarm = one(run(), "aws:cloudwatch/metricAlarm:MetricAlarm", (a) =>
      (a.inputs.metricQueries ?? []).some((q: any) => q.metric?.namespace === "AWS/States"),
    );
    expect(alarm.inputs.alarmActions).toEqual([topic.outputs.arn]);
    expect(
      alarm.inputs.metricQueries
        .filter((q: any) => q.metric)
        .map((q: any) => [q.metric.metricName, q.metric.dimensions]),
    ).toEqual([
      ["ExecutionsFailed", { StateMachineArn: machineArn }],
      ["ExecutionsTimedOut", { StateMachineArn: machineArn }],
    ]);
  });
});

describe("the sweep configuration", () => {
  it("refuses maxConcurrency 0 (unlimited) and a slice Lambda's timeout would cut, declaring nothing", async () => {
    const config = withProdAlarms(migrationConfig);
    const run = await deploy(
      "dev",
      {},
      {
        ...config,
        otherStages: { ...config.otherStages, sweep: { maxConcurrency: 0, sliceMinutes: 15 } },
      },
    );
    expect(run.error?.name).toBe("StageConfigError");
    expect(run.error?.message).toContain('stage "dev": sweep.maxConcurrency must be an integer from 1 to 10000, got 0');
    expect(run.error?.message).toContain('stage "dev": sweep.sliceMinutes must be from 1 to 13, got 15');
    expect(run.resources).toEqual([]);
  });
});
