// The distributed sweep's state machine definition (core sweep-machine/asl.ts): valid ASL by
// asl-validator, and the settings issue 14 asks for, written out here by hand.
import validator from "asl-validator";
import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { ledgerKeys } from "@sitelogix/core/ledger";
import {
  sliceMsFor,
  sweepMachineProblems,
  sweepStateMachineDefinition,
  type SweepMachineSettings,
} from "@sitelogix/core/sweep-machine/asl";

const WORKER = "arn:aws:lambda:us-east-1:123456789012:function:dev-SweepWorker";
const SETTINGS: SweepMachineSettings = {
  workerFunctionArn: WORKER,
  workerTimeoutSeconds: 900,
  ledgerTableName: "dev-sitelogix-migration-ledger",
  maxConcurrency: 16,
};
const validate = validator;

const definition = (settings: Partial<SweepMachineSettings> = {}) =>
  sweepStateMachineDefinition({ ...SETTINGS, ...settings }) as any;

describe("sweep state machine definition", () => {
  it("passes asl-validator (and the validator does refuse a broken definition)", () => {
    const result = validate(definition());
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
    const broken = definition();
    broken.States.Segments.ItemProcessor.States["SegmentDone?"].Default = "NoSuchState";
    expect(validate(broken).isValid).toBe(false);
  });

  it("is a Distributed Map of STANDARD children over the execution input's segment numbers", () => {
    const map = definition().States.Segments;
    expect(definition().StartAt).toBe("Segments");
    expect(map.Type).toBe("Map");
    expect(map.End).toBe(true);
    expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: "DISTRIBUTED", ExecutionType: "STANDARD" });
    expect(map.Items).toBe("{% $states.input.segments %}");
    expect(map.ItemSelector).toEqual({
      sweepId: "{% $states.input.sweepId %}",
      table: "{% $states.input.table %}",
      totalSegments: "{% $states.input.totalSegments %}",
      segment: "{% $states.context.Map.Item.Value %}",
    });
  });

  it("takes MaxConcurrency from the settings, tolerates no failure by default, and a configured share", () => {
    expect(definition().States.Segments.MaxConcurrency).toBe(16);
    expect(definition().States.Segments.ToleratedFailurePercentage).toBe(0);
    expect(definition({ maxConcurrency: 3, toleratedFailurePercentage: 5 }).States.Segments).toMatchObject({
      MaxConcurrency: 3,
      ToleratedFailurePercentage: 5,
    });
  });

  it("refuses MaxConcurrency 0 (unlimited to Step Functions), a fraction, and a tolerated share out of 0–100", () => {
    expect(() => definition({ maxConcurrency: 0 })).toThrow(/maxConcurrency.*got 0 \(0 means unlimited/);
    expect(() => definition({ maxConcurrency: 2.5 })).toThrow(/maxConcurrency must be an integer/);
    expect(() => definition({ toleratedFailurePercentage: 101 })).toThrow(/toleratedFailurePercentage/);
    expect(sweepMachineProblems({ segments: 0, sliceMinutes: 14 })).toEqual([
      "segments must be an integer from 1 to 9999, got 0",
      "sliceMinutes must be from 1 to 13, got 14",
    ]);
    expect(sweepMachineProblems({})).toEqual([]);
  });

  it("invokes the worker with exactly the SegmentTask until it answers done", () => {
    const states = definition().States.Segments.ItemProcessor.States;
    const run = states[definition().States.Segments.ItemProcessor.StartAt];
    expect(run).toMatchObject({
      Type: "Task",
      Resource: "arn:aws:states:::lambda:invoke",
      Arguments: {
        FunctionName: WORKER,
        Payload: {
          sweepId: "{% $states.input.sweepId %}",
          table: "{% $states.input.table %}",
          segment: "{% $states.input.segment %}",
          totalSegments: "{% $states.input.totalSegments %}",
        },
      },
      TimeoutSeconds: 960,
      Assign: { done: "{% $states.result.Payload.done = true %}" },
      Next: "SegmentDone?",
    });
    expect(states["SegmentDone?"]).toEqual({
      Type: "Choice",
      Choices: [{ Condition: "{% $done %}", Next: "SegmentDone" }],
      Default: "RunSlice",
    });
    expect(states.SegmentDone).toEqual({ Type: "Succeed" });
  });

  it("retries Lambda's throttling and service errors with capped, jittered backoff", () => {
    const run = definition().States.Segments.ItemProcessor.States.RunSlice;
    expect(run.Retry).toEqual([
      {
        ErrorEquals: [
          "Lambda.TooManyRequestsException",
          "Lambda.ServiceException",
          "Lambda.AWSLambdaException",
          "Lambda.SdkClientException",
          "Lambda.ClientExecutionTimeoutException",
        ],
        IntervalSeconds: 2,
        MaxAttempts: 8,
        BackoffRate: 2,
        MaxDelaySeconds: 60,
        JitterStrategy: "FULL",
      },
    ]);
  });

  it("catches any other failure, records failedAt and error on the segment's ledger record, fails the child", () => {
    const states = definition().States.Segments.ItemProcessor.States;
    expect(states.RunSlice.Catch).toEqual([
      {
        ErrorEquals: ["States.ALL"],
        Output: "{% $merge([$states.input, {'failure': $states.errorOutput}]) %}",
        Next: "RecordFailure",
      },
    ]);
    expect(states.RecordFailure).toMatchObject({
      Type: "Task",
      Resource: "arn:aws:states:::dynamodb:updateItem",
      Arguments: {
        TableName: "dev-sitelogix-migration-ledger",
        Key: {
          PK: { S: "{% 'TABLE#' & $states.input.table %}" },
          SK: { S: "{% 'SWEEPSEG#' & $states.input.sweepId & '#' & $pad($string($states.input.segment), -4, '0') %}" },
        },
        UpdateExpression: "SET #failedAt = :failedAt, #error = :error",
        ExpressionAttributeNames: { "#failedAt": "failedAt", "#error": "error" },
        ExpressionAttributeValues: {
          ":failedAt": { S: "{% $states.context.State.EnteredTime %}" },
          ":error": { S: "{% $states.input.failure.Error & ': ' & $states.input.failure.Cause %}" },
        },
      },
      Next: "SegmentFailed",
    });
    // Even when the ledger cannot be written, the child fails (never succeeds).
    expect(states.RecordFailure.Catch).toEqual([
      { ErrorEquals: ["States.ALL"], Output: "{% $states.input %}", Next: "SegmentFailed" },
    ]);
    expect(states.SegmentFailed).toMatchObject({ Type: "Fail", Error: "SweepSegmentFailed" });
  });

  it("gives each worker invocation its configured slice, ending two minutes before the timeout", () => {
    expect(sliceMsFor("600000", 900_000)).toBe(600_000);
    expect(sliceMsFor(undefined, 900_000)).toBe(600_000);
    expect(sliceMsFor("780000", 840_000)).toBe(720_000);
  });
});

describe("the failure record's expressions, evaluated as Step Functions would (JSONata)", () => {
  /** A `{% … %}` template evaluated against `$states` (input, context, errorOutput). */
  const evaluate = (template: string, states: Record<string, unknown>) =>
    jsonata(template.replace(/^\{%(.*)%\}$/s, "$1")).evaluate({}, { states });

  it("addresses ledgerKeys.sweepSegment and sets failedAt and error", async () => {
    const states = definition().States.Segments.ItemProcessor.States;
    const failure = { Error: "Lambda.Unknown", Cause: "The function timed out" };
    const input = { sweepId: "2026-12-08T01-00-00.000Z-abc123", table: "personnel", segment: 7, totalSegments: 64 };
    const $states = {
      input: { ...input, failure },
      context: { State: { EnteredTime: "2026-12-08T02:00:00.000Z" } },
    };
    const args = states.RecordFailure.Arguments;
    expect({
      PK: await evaluate(args.Key.PK.S, $states),
      SK: await evaluate(args.Key.SK.S, $states),
    }).toEqual(ledgerKeys.sweepSegment("personnel", input.sweepId, 7));
    expect(await evaluate(args.ExpressionAttributeValues[":failedAt"].S, $states)).toBe("2026-12-08T02:00:00.000Z");
    expect(await evaluate(args.ExpressionAttributeValues[":error"].S, $states)).toBe(
      "Lambda.Unknown: The function timed out",
    );
    // The catch's output is what RecordFailure gets: the task plus the error.
    expect(await evaluate(states.RunSlice.Catch[0].Output, { input, errorOutput: failure })).toEqual({
      ...input,
      failure,
    });
    expect(await evaluate(states.SegmentFailed.Cause, { input: { ...input, failure } })).toBe(
      "segment 7 failed: Lambda.Unknown",
    );
  });

  it("loops until the worker's payload says done", async () => {
    const assign = definition().States.Segments.ItemProcessor.States.RunSlice.Assign.done;
    expect(await evaluate(assign, { result: { Payload: { done: false, counts: {} } } })).toBe(false);
    expect(await evaluate(assign, { result: { Payload: { done: true, counts: {} } } })).toBe(true);
  });
});
