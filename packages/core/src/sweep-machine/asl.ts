// The distributed sweep's state machine, as Amazon States Language built from typed settings: a
// STANDARD machine whose Distributed Map runs one child execution per scan segment. Each child
// invokes the segment worker Lambda with its SegmentTask until the worker answers `done`; Lambda's
// own transient errors are retried with backoff; any other failure is recorded on the segment's
// ledger record (UpdateItem, no Lambda: it must work when the worker cannot) and fails the child.
// JSONata, not JSONPath: the ledger key pads the segment number to four digits ($pad), which
// JSONPath's intrinsic functions cannot do.

/** Lambda errors that say nothing about the segment: retried with backoff, then they fail it. */
export const LAMBDA_TRANSIENT_ERRORS = [
  "Lambda.TooManyRequestsException",
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.ClientExecutionTimeoutException",
] as const;

export const SWEEP_MACHINE_DEFAULTS = {
  /** Scan segments of a distributed sweep: at least 4× maxConcurrency, so slow segments do not leave workers idle. */
  segments: 64,
  maxConcurrency: 16,
  /** Each worker invocation works this long, well under the worker's 15-minute Lambda timeout. */
  sliceMinutes: 10,
  workerTimeoutMinutes: 15,
  toleratedFailurePercentage: 0,
  /** Transient Lambda errors: 2 s, 4 s, … at most 60 s apart, 8 attempts (about 4 minutes in all). */
  retry: { intervalSeconds: 2, maxAttempts: 8, backoffRate: 2, maxDelaySeconds: 60 },
} as const;

/** The Fail state's error name when a segment failed (what `DescribeExecution` and the console show). */
export const SEGMENT_FAILED_ERROR = "SweepSegmentFailed";

export interface SweepMachineSettings {
  /** The segment worker (its ARN; the child's Lambda task invokes it). */
  workerFunctionArn: string;
  /** The worker's timeout: a Lambda task waits a minute longer, then times out (States.Timeout). */
  workerTimeoutSeconds: number;
  /** Physical name of the ledger, where a failed segment is recorded. */
  ledgerTableName: string;
  /** Child executions at once. A positive integer: 0 would mean "unlimited" to Step Functions. */
  maxConcurrency: number;
  /** Share of segments that may fail before the map run fails (0 by default: none). */
  toleratedFailurePercentage?: number;
}

/** A stage's distributed-sweep settings (migration.config.ts); unset ones take SWEEP_MACHINE_DEFAULTS. */
export interface DistributedSweepConfig {
  /** Scan segments of a distributed sweep (the CLI's default; `sweep --distributed --segments` overrides). */
  segments?: number;
  /** Segments worked on at once (Lambda invocations in flight). */
  maxConcurrency?: number;
  /** Minutes each worker invocation works before it checkpoints and returns (1–13). */
  sliceMinutes?: number;
  /** Share of failed segments the map run tolerates (0: the first failed segment fails the execution). */
  toleratedFailurePercentage?: number;
}

/** Why the settings cannot make a sound distributed sweep (empty when they can). */
export function sweepMachineProblems(config: DistributedSweepConfig): string[] {
  const problems: string[] = [];
  const { maxConcurrency = SWEEP_MACHINE_DEFAULTS.maxConcurrency, toleratedFailurePercentage } = config;
  const { segments = SWEEP_MACHINE_DEFAULTS.segments, sliceMinutes = SWEEP_MACHINE_DEFAULTS.sliceMinutes } = config;
  // The ledger pads segment numbers to four digits.
  if (!Number.isInteger(segments) || segments < 1 || segments > 9999)
    problems.push(`segments must be an integer from 1 to 9999, got ${segments}`);
  // A slice must end, and checkpoint, well before Lambda's 15-minute timeout kills the worker.
  if (!(sliceMinutes >= 1 && sliceMinutes <= SWEEP_MACHINE_DEFAULTS.workerTimeoutMinutes - 2))
    problems.push(
      `sliceMinutes must be from 1 to ${SWEEP_MACHINE_DEFAULTS.workerTimeoutMinutes - 2}, got ${sliceMinutes}`,
    );
  // Step Functions caps a Distributed Map at 10,000 child executions at once.
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 10_000) {
    problems.push(
      `maxConcurrency must be an integer from 1 to 10000, got ${maxConcurrency}` +
        (maxConcurrency === 0 ? " (0 means unlimited to Step Functions: refused)" : ""),
    );
  }
  const tolerated = toleratedFailurePercentage ?? SWEEP_MACHINE_DEFAULTS.toleratedFailurePercentage;
  if (!(typeof tolerated === "number" && tolerated >= 0 && tolerated <= 100))
    problems.push(`toleratedFailurePercentage must be from 0 to 100, got ${tolerated}`);
  return problems;
}

/**
 * A worker invocation's slice: the stack's setting (SITELOGIX_SWEEP_SLICE_MS), but ending at least two
 * minutes before the invocation's timeout, so the checkpoint is written before Lambda kills it.
 */
export function sliceMsFor(setting: string | undefined, remainingMs: number): number {
  const configured = Number(setting) > 0 ? Number(setting) : SWEEP_MACHINE_DEFAULTS.sliceMinutes * 60_000;
  return Math.max(1_000, Math.min(configured, remainingMs - 120_000));
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export interface StateMachineDefinition {
  Comment: string;
  QueryLanguage: "JSONata";
  StartAt: string;
  States: Record<string, Record<string, Json>>;
}

/** The state machine's definition. Throws on settings sweepMachineProblems() refuses. */
export function sweepStateMachineDefinition(settings: SweepMachineSettings): StateMachineDefinition {
  const problems = sweepMachineProblems(settings);
  if (problems.length > 0) throw new Error(`sweep state machine: ${problems.join("; ")}`);
  const { retry } = SWEEP_MACHINE_DEFAULTS;
  const segmentTask = {
    sweepId: "{% $states.input.sweepId %}",
    table: "{% $states.input.table %}",
    segment: "{% $states.input.segment %}",
    totalSegments: "{% $states.input.totalSegments %}",
  };
  return {
    Comment: "SiteLogix distributed sweep: one child execution per scan segment, each running the worker until done",
    QueryLanguage: "JSONata",
    StartAt: "Segments",
    States: {
      Segments: {
        Type: "Map",
        Label: "Segments",
        // The execution input: { sweepId, table, totalSegments, segments: [segment numbers to run] }.
        Items: "{% $states.input.segments %}",
        ItemSelector: {
          sweepId: "{% $states.input.sweepId %}",
          table: "{% $states.input.table %}",
          totalSegments: "{% $states.input.totalSegments %}",
          segment: "{% $states.context.Map.Item.Value %}",
        },
        MaxConcurrency: settings.maxConcurrency,
        ToleratedFailurePercentage:
          settings.toleratedFailurePercentage ?? SWEEP_MACHINE_DEFAULTS.toleratedFailurePercentage,
        ItemProcessor: {
          ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
          StartAt: "RunSlice",
          States: {
            RunSlice: {
              Type: "Task",
              Resource: "arn:aws:states:::lambda:invoke",
              Arguments: { FunctionName: settings.workerFunctionArn, Payload: segmentTask },
              TimeoutSeconds: settings.workerTimeoutSeconds + 60,
              // The task stays the state's output; whether the segment is done is a variable.
              Assign: { done: "{% $states.result.Payload.done = true %}" },
              Output: "{% $states.input %}",
              Retry: [
                {
                  ErrorEquals: [...LAMBDA_TRANSIENT_ERRORS],
                  IntervalSeconds: retry.intervalSeconds,
                  MaxAttempts: retry.maxAttempts,
                  BackoffRate: retry.backoffRate,
                  MaxDelaySeconds: retry.maxDelaySeconds,
                  JitterStrategy: "FULL",
                },
              ],
              Catch: [
                {
                  ErrorEquals: ["States.ALL"],
                  Output: "{% $merge([$states.input, {'failure': $states.errorOutput}]) %}",
                  Next: "RecordFailure",
                },
              ],
              Next: "SegmentDone?",
            },
            "SegmentDone?": {
              Type: "Choice",
              Choices: [{ Condition: "{% $done %}", Next: "SegmentDone" }],
              Default: "RunSlice",
            },
            SegmentDone: { Type: "Succeed" },
            RecordFailure: {
              Type: "Task",
              Resource: "arn:aws:states:::dynamodb:updateItem",
              Arguments: {
                TableName: settings.ledgerTableName,
                // ledgerKeys.sweepSegment(table, sweepId, segment)
                Key: {
                  PK: { S: "{% 'TABLE#' & $states.input.table %}" },
                  SK: {
                    S:
                      "{% 'SWEEPSEG#' & $states.input.sweepId & '#' & " +
                      "$pad($string($states.input.segment), -4, '0') %}",
                  },
                },
                UpdateExpression: "SET #failedAt = :failedAt, #error = :error",
                ExpressionAttributeNames: { "#failedAt": "failedAt", "#error": "error" },
                ExpressionAttributeValues: {
                  ":failedAt": { S: "{% $states.context.State.EnteredTime %}" },
                  ":error": { S: "{% $states.input.failure.Error & ': ' & $states.input.failure.Cause %}" },
                },
              },
              Output: "{% $states.input %}",
              Retry: [{ ErrorEquals: ["States.ALL"], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2 }],
              Catch: [{ ErrorEquals: ["States.ALL"], Output: "{% $states.input %}", Next: "SegmentFailed" }],
              Next: "SegmentFailed",
            },
            SegmentFailed: {
              Type: "Fail",
              Error: SEGMENT_FAILED_ERROR,
              Cause: "{% 'segment ' & $string($states.input.segment) & ' failed: ' & $states.input.failure.Error %}",
            },
          },
        },
        End: true,
      },
    },
  };
}
