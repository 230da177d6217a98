// The distributed sweep (`sweep --distributed`): the segment worker Lambda and a STANDARD state
// machine whose Distributed Map runs the worker over every scan segment (ASL from core's
// sweepStateMachineDefinition). A plain aws.sfn.StateMachine, not sst.aws.StepFunctions: SST 4.17.1's
// Map cannot express ToleratedFailurePercentage or ItemBatcher (docs/infrastructure.md).
import { tablesWithRules } from "@sitelogix/core/rules";
import type { SiteLogixTable } from "@sitelogix/core/schema";
import {
  SWEEP_MACHINE_DEFAULTS,
  sweepStateMachineDefinition,
  type DistributedSweepConfig,
} from "@sitelogix/core/sweep-machine/asl";
import type { StageContext } from "./config";
import type { DeclaredTable } from "./tables";

type Tables = Record<string, DeclaredTable> & { ledger: DeclaredTable };
type Permission = { actions: string[]; resources: $util.Input<string>[] };

/** The worker's grants: sweep the tables with rules, keep its checkpoints, leases and budget in the ledger. */
export function workerPermissions(tables: Tables, keysOf: (logical: SiteLogixTable) => string[]): Permission[] {
  const ruleTables = tablesWithRules().map((logical) => tables[logical]!);
  return [
    // Scan its segment, write the target attributes conditionally.
    { actions: ["dynamodb:Scan", "dynamodb:UpdateItem"], resources: ruleTables.map((t) => t.table.arn) },
    // A person's HISTORY# visits, read for the profile's derived values.
    { actions: ["dynamodb:Query"], resources: [tables.personnel!.table.arn] },
    {
      actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
      resources: [tables.ledger.table.arn],
    },
    // Items of a table encrypted with a customer-managed key are read through it (adopted tables only).
    ...tablesWithRules()
      .flatMap(keysOf)
      .map((key) => ({ actions: ["kms:Decrypt"], resources: [key] })),
  ];
}

/** What the state machine's role needs for the Distributed Map children (AWS: "IAM policies for Distributed Map"). */
export function machinePolicy(args: { workerArn: string; ledgerArn: string; machineArn: string }) {
  const executions = `${args.machineArn.replace(":stateMachine:", ":execution:")}/*`;
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: [args.workerArn] },
      // The Catch records a failed segment on its ledger record.
      { Effect: "Allow", Action: ["dynamodb:UpdateItem"], Resource: [args.ledgerArn] },
      // The map run starts its child executions, follows and stops them, and redrives them with the parent.
      { Effect: "Allow", Action: ["states:StartExecution"], Resource: [args.machineArn] },
      {
        Effect: "Allow",
        Action: ["states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"],
        Resource: [executions],
      },
      // Vended log delivery to CloudWatch Logs: these actions take no resource-level permissions.
      {
        Effect: "Allow",
        Action: [
          "logs:CreateLogDelivery",
          "logs:DeleteLogDelivery",
          "logs:DescribeLogGroups",
          "logs:DescribeResourcePolicies",
          "logs:GetLogDelivery",
          "logs:ListLogDeliveries",
          "logs:PutResourcePolicy",
          "logs:UpdateLogDelivery",
        ],
        Resource: ["*"],
      },
    ],
  };
}

export function distributedSweep(
  ctx: StageContext,
  tables: Tables,
  options: { topicArn: $util.Input<string>; customerKeys: (logical: SiteLogixTable) => string[] },
) {
  const tags = { "sitelogix:managed-by": "sitelogix-migrator" };
  const config: Required<DistributedSweepConfig> = { ...SWEEP_MACHINE_DEFAULTS, ...ctx.sweep };
  const timeoutSeconds = SWEEP_MACHINE_DEFAULTS.workerTimeoutMinutes * 60;
  const worker = new sst.aws.Function("SweepWorker", {
    handler: "packages/functions/src/sweep-worker.handler",
    description: `sweep segment worker (${ctx.stage})`,
    runtime: "nodejs22.x",
    architecture: "arm64",
    memory: "1024 MB",
    timeout: `${SWEEP_MACHINE_DEFAULTS.workerTimeoutMinutes} minutes`,
    logging: { retention: "3 months" },
    environment: {
      POWERTOOLS_SERVICE_NAME: "sitelogix-sweep-worker",
      SITELOGIX_SWEEP_SLICE_MS: String(config.sliceMinutes * 60_000),
    },
    // Every table's name: the worker maps its task's logical table to the physical one.
    link: Object.values(tables).map((t) => t.link),
    permissions: workerPermissions(tables, options.customerKeys),
  });

  // Named, so that the role's policy can name the machine before it exists (no cycle).
  const machineName = `${$app.name}-${ctx.stage}-Sweep`;
  const account = aws.getCallerIdentityOutput({}).accountId;
  const partition = aws.getPartitionOutput({}).partition;
  const machineArn = $interpolate`arn:${partition}:states:${ctx.region}:${account}:stateMachine:${machineName}`;
  const logs = new aws.cloudwatch.LogGroup("SweepMachineLogs", {
    name: `/aws/vendedlogs/states/${machineName}`,
    retentionInDays: 90,
    tags,
  });
  const role = new aws.iam.Role("SweepMachineRole", {
    assumeRolePolicy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" }],
    }),
    inlinePolicies: [
      {
        name: "sweep",
        policy: $util
          .all([worker.arn, tables.ledger.table.arn, machineArn])
          .apply(([workerArn, ledgerArn, arn]) =>
            JSON.stringify(machinePolicy({ workerArn, ledgerArn, machineArn: arn })),
          ),
      },
    ],
    tags,
  });
  const machine = new aws.sfn.StateMachine("SweepMachine", {
    name: machineName,
    type: "STANDARD",
    roleArn: role.arn,
    definition: $util.all([worker.arn, tables.ledger.table.name]).apply(([workerFunctionArn, ledgerTableName]) =>
      JSON.stringify(
        sweepStateMachineDefinition({
          workerFunctionArn,
          workerTimeoutSeconds: timeoutSeconds,
          ledgerTableName,
          maxConcurrency: config.maxConcurrency,
          toleratedFailurePercentage: config.toleratedFailurePercentage,
        }),
      ),
    ),
    // Transitions and errors, never execution data (a task's input carries only keys and counts,
    // but an error's cause could quote more).
    loggingConfiguration: { logDestination: $interpolate`${logs.arn}:*`, includeExecutionData: false, level: "ALL" },
    tags,
  });
  // A distributed sweep may run detached from any terminal: its failure pages the stage's topic.
  new aws.cloudwatch.MetricAlarm("SweepExecutionsFailed", {
    alarmDescription:
      "A distributed sweep execution failed or timed out (a stop is no failure): run `sitelogix-migrate status` " +
      "(failed segments and why), then `sweep --resume` (docs/runbook.md: distributed sweep).",
    comparisonOperator: "GreaterThanThreshold",
    threshold: 0,
    evaluationPeriods: 1,
    treatMissingData: "notBreaching",
    alarmActions: [options.topicArn],
    okActions: [options.topicArn],
    metricQueries: [
      ...["ExecutionsFailed", "ExecutionsTimedOut"].map((metricName, i) => ({
        id: `m${i}`,
        metric: {
          namespace: "AWS/States",
          metricName,
          dimensions: { StateMachineArn: machine.arn },
          period: 300,
          stat: "Sum",
        },
      })),
      { id: "failed", expression: "FILL(m0, 0) + FILL(m1, 0)", label: "sweep executions failed", returnData: true },
    ],
    tags,
  });
  // What `sweep --distributed` needs under `sst shell`.
  new sst.Linkable("SweepMachine", {
    properties: { arn: machine.arn, segments: config.segments, maxConcurrency: config.maxConcurrency },
  });
  return { machine, worker };
}
