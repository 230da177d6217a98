// The stream functions (normalizer, audit logger), one per table they subscribe to, as
// SUBSCRIPTIONS in core declares them; a dead-letter queue per function; explicit least-privilege
// permissions; the alarms an operator watches during the migration, all to the stage's topic, which
// also gets the phase events (core's Notifier) and is linked for `sst shell` with the pinned region.
import { gsisIn, TABLES, type LogicalTable, type SiteLogixTable } from "@sitelogix/core/schema";
import { SUBSCRIPTIONS, type Subscription } from "@sitelogix/core/subscriptions";
import type { StageContext } from "./config";
import type { DeployPlan } from "./deploy-plan";
import type { DeclaredTable } from "./tables";

export const POWERTOOLS_METRICS_NAMESPACE = "SiteLogixMigrator";
/** A stream backlog older than this pages the operator (the normalizer gives up after 6 h, the audit after 24 h). */
export const ITERATOR_AGE_ALARM_MS = 5 * 60_000;
/** Failed batches' pointers are kept as long as SQS allows, for the post-mortem. */
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;
/**
 * The per-record failure metrics each function emits (EMF, dimension `service`). With
 * ReportBatchItemFailures a failing record leaves Lambda's `Errors` at 0: these are what show it.
 */
export const RECORD_FAILURE_METRICS: Record<Subscription["name"], string[]> = {
  normalizer: ["failed", "malformed"],
  "audit-logger": ["AuditRecordsFailed"],
};

type Tables = Record<LogicalTable, DeclaredTable>;
type Permission = { actions: string[]; resources: $util.Input<string>[] };

/**
 * What each function may do besides reading its own stream (SST's subscriber grants DescribeStream,
 * GetRecords, GetShardIterator and ListStreams on that stream) and sending to its dead-letter queue.
 * Never `dynamodb:*`, and the audit logger can add entries but never change or delete one.
 */
export const PERMISSIONS: Record<Subscription["name"], (source: DeclaredTable, tables: Tables) => Permission[]> = {
  normalizer: (source, tables) => [
    // Read the item and the person's HISTORY partition, write the target attributes.
    { actions: ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"], resources: [source.table.arn] },
    // Record going live and the violations it cannot fix.
    {
      actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
      resources: [tables.ledger.table.arn],
    },
  ],
  "audit-logger": (_source, tables) => [
    // Entries and chain heads are written with conditional puts in one TransactWriteItems (authorized
    // as PutItem); a chain head is read (GetItem) before the first append of an item after a cold
    // start. Exactly-once comes from the entry's put being conditioned on its record's key, so no
    // idempotency table is needed.
    { actions: ["dynamodb:GetItem", "dynamodb:PutItem"], resources: [tables.audit.table.arn] },
  ],
};

/** The customer-managed key an adopted table keeps (plan.live), if any. */
export function customerKeys(ctx: StageContext, plan: Pick<DeployPlan, "live">, logical: LogicalTable): string[] {
  const encryption = ctx.adopt && TABLES[logical].existing ? plan.live[logical]?.encryption : undefined;
  return encryption?.kind === "customer-managed" ? [encryption.keyArn] : [];
}

const pascal = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());

export function migrator(ctx: StageContext, tables: Tables, plan: Pick<DeployPlan, "live">) {
  const tags = { "sitelogix:managed-by": "sitelogix-migrator" };
  // An existing topic (alarms.topicArn), or the stage's own; the e-mail addresses subscribe to it.
  const topicArn: $util.Input<string> = ctx.alarms?.topicArn ?? new aws.sns.Topic("MigratorAlarms", { tags }).arn;
  (ctx.alarms?.email ?? []).forEach((endpoint, i) => {
    new aws.sns.TopicSubscription(`MigratorAlarmsEmail${i}`, { topic: topicArn, protocol: "email", endpoint });
  });
  // What the CLI needs under `sst shell`: the region it must act in and the topic of the phase events.
  new sst.Linkable("Migrator", { properties: { stage: ctx.stage, region: ctx.region, topicArn } });
  const alarm = (name: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions">) =>
    new aws.cloudwatch.MetricAlarm(name, {
      alarmActions: [topicArn],
      okActions: [topicArn],
      treatMissingData: "notBreaching",
      tags,
      ...args,
    });
  // Every function gets every table's name (names are not permissions): resolveTableNames() needs
  // them all to map a stream record's table back to its logical name.
  const links = Object.values(tables).map((t) => t.link);

  for (const subscription of SUBSCRIPTIONS) {
    for (const logical of subscription.tables) {
      subscribe(subscription, logical);
    }
  }
  for (const declared of Object.values(tables)) {
    // The base table and each of this phase's GSIs: an index that cannot keep up throttles the
    // table's writes, and CloudWatch reports it under the index's own dimension.
    const indexes = [undefined, ...gsisIn(declared.logical, ctx.phase).map((g) => g.name)];
    const metrics = indexes.flatMap((index, i) => [
      throttleEvents(`r${i}`, "ReadThrottleEvents", declared, index),
      throttleEvents(`w${i}`, "WriteThrottleEvents", declared, index),
    ]);
    alarm(`${declared.linkName}Throttles`, {
      alarmDescription:
        `${declared.name} (or one of its GSIs: ${indexes.slice(1).join(", ") || "none"}): read or write ` +
        "requests throttled. During a sweep lower --max-wcu (or pause it); otherwise check the account's table limits.",
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
      evaluationPeriods: 1,
      metricQueries: [
        ...metrics,
        {
          id: "throttled",
          expression: metrics.map((m) => `FILL(${m.id}, 0)`).join(" + "),
          label: `${declared.name} throttled requests`,
          returnData: true,
        },
      ],
    });
  }
  for (const [role, metrics] of Object.entries(RECORD_FAILURE_METRICS)) {
    const service = `sitelogix-${role}`;
    alarm(`${pascal(role)}RecordFailures`, {
      alarmDescription:
        `${role}: stream records failed (retried, bisected, then sent to the function's DLQ). ` +
        `Read the logs of the ${service} functions (keys, never values).`,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
      evaluationPeriods: 1,
      metricQueries: [
        ...metrics.map((metricName, i) => ({
          id: `m${i}`,
          metric: {
            namespace: POWERTOOLS_METRICS_NAMESPACE,
            metricName,
            dimensions: { service },
            period: 60,
            stat: "Sum",
          },
        })),
        {
          id: "failed",
          expression: metrics.map((_, i) => `FILL(m${i}, 0)`).join(" + "),
          label: `${role} failed records`,
          returnData: true,
        },
      ],
    });
  }

  function subscribe(subscription: Subscription, logical: SiteLogixTable) {
    const source = tables[logical];
    const id = `${pascal(subscription.name)}${source.linkName}`;
    const dlq = new aws.sqs.Queue(`${id}Dlq`, {
      messageRetentionSeconds: DLQ_RETENTION_SECONDS,
      sqsManagedSseEnabled: true,
      tags,
    });
    const subscriber = sst.aws.Dynamo.subscribe(
      id,
      source.table.streamArn,
      {
        handler: subscription.handler,
        description: `${subscription.name} on ${source.name}`,
        runtime: "nodejs22.x",
        architecture: "arm64",
        memory: "512 MB",
        timeout: "1 minute",
        logging: { retention: "3 months" },
        environment: {
          POWERTOOLS_SERVICE_NAME: `sitelogix-${subscription.name}`,
          POWERTOOLS_METRICS_NAMESPACE,
          POWERTOOLS_LOG_LEVEL: "INFO",
          // The audit retention of migration.config.ts: entries' expiresAt (the digests are locked as long).
          ...(subscription.name === "audit-logger"
            ? { SITELOGIX_AUDIT_RETENTION_YEARS: String(ctx.auditSettings.retentionYears) }
            : {}),
        },
        link: links,
        permissions: [
          ...PERMISSIONS[subscription.name](source, tables),
          // On-failure destinations of stream mappings are sent to with the function's role.
          { actions: ["sqs:SendMessage"], resources: [dlq.arn] },
          // The stream and the items of a table encrypted with a customer-managed key are read through it.
          ...customerKeys(ctx, plan, logical).map((key) => ({ actions: ["kms:Decrypt"], resources: [key] })),
        ],
      },
      {
        filters: subscription.filters ? subscription.filters.map((f) => ({ ...f })) : undefined,
        transform: {
          eventSourceMapping: {
            // From the oldest record the stream holds: in the deploy that enables a stream, LATEST
            // would skip every write made before the mapping's first poll — unaudited, and left
            // to the sweep. Re-reading is safe: both handlers are idempotent.
            startingPosition: "TRIM_HORIZON",
            batchSize: subscription.batchSize,
            maximumBatchingWindowInSeconds: subscription.maximumBatchingWindowInSeconds,
            bisectBatchOnFunctionError: subscription.bisectBatchOnFunctionError,
            maximumRetryAttempts: subscription.maximumRetryAttempts,
            maximumRecordAgeInSeconds: subscription.maximumRecordAgeInSeconds,
            functionResponseTypes: ["ReportBatchItemFailures"],
            destinationConfig: { onFailure: { destinationArn: dlq.arn } },
          },
        },
      },
    );
    const functionName = subscriber.apply((s) => s.nodes.function).apply((fn) => fn.name);

    alarm(`${id}IteratorAge`, {
      alarmDescription:
        `${subscription.name} on ${source.name} is more than ${ITERATOR_AGE_ALARM_MS / 60_000} minutes behind ` +
        `its stream. Records older than ${subscription.maximumRecordAgeInSeconds / 3600} h are dropped to the DLQ.`,
      namespace: "AWS/Lambda",
      metricName: "IteratorAge",
      dimensions: { FunctionName: functionName },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 5,
      threshold: ITERATOR_AGE_ALARM_MS,
      comparisonOperator: "GreaterThanThreshold",
    });
    alarm(`${id}Errors`, {
      alarmDescription:
        `${subscription.name} on ${source.name} failed invocations ` +
        "(retried, then sent to the DLQ): read its logs.",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: functionName },
      statistic: "Sum",
      period: 300,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
    });
    alarm(`${id}DlqDepth`, {
      alarmDescription:
        `${subscription.name} on ${source.name} gave up on a batch. The message names the shard and sequence ` +
        "numbers; the records stay in the stream for 24 h only (docs/runbook.md: Monitoring).",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: dlq.name },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
    });
  }
  return { topicArn };
}

function throttleEvents(id: string, metricName: string, declared: DeclaredTable, index?: string) {
  const dimensions = { TableName: declared.name, ...(index ? { GlobalSecondaryIndexName: index } : {}) };
  return {
    id,
    metric: { namespace: "AWS/DynamoDB", metricName, dimensions, period: 300, stat: "Sum" },
  } satisfies aws.types.input.cloudwatch.MetricAlarmMetricQuery;
}
