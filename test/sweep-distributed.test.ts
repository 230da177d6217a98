// `sweep --distributed`, `--stop`, `--resume` and `status` against the ledger on DynamoDB Local,
// with Step Functions mocked (aws-sdk-client-mock): no local engine runs Step Functions. The mock
// plays the state machine's part as stacks/sweep.ts declares it: one child per segment of the
// execution input, each invoking the real worker handler (functions/sweep-worker.ts) until done, a
// failure recorded on the segment's ledger record as the Catch does (failedAt, error) and the map run
// failing; a redrive re-runs the children that did not succeed.
import {
  DescribeExecutionCommand,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import type { Context } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ledgerKeys, type SegmentTask, type SiteLogixTable, type SweepCheckpoint } from "@sitelogix/core";
import { executionName, type SweepExecutionInput } from "@sitelogix/core/sweep-machine/execution";
import { createTestTables, generateDataset, ledgerOf, loadDataset, runCli, type TestTables } from "@sitelogix/testkit";

const MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:sitelogix-migrator-dev-Sweep";
const EXECUTIONS = MACHINE.replace(":stateMachine:", ":execution:");

type Status = "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED";
interface FakeExecution {
  arn: string;
  input: SweepExecutionInput;
  status: Status;
  redriveStatus: "REDRIVABLE" | "NOT_REDRIVABLE";
  redriveStatusReason?: string;
  /** Segments whose child succeeded. */
  succeeded: Set<number>;
  /** While set, the children wait before running (the execution stays RUNNING). */
  hold?: Promise<void>;
}

let t: TestTables;
let handler: (task: SegmentTask, context: Context) => Promise<{ done: boolean }>;
const sfn = mockClient(SFNClient);
const sns = mockClient(SNSClient);
const TOPIC = "arn:aws:sns:us-east-1:123456789012:sitelogix-ops";
/** The phase events sent: subject and kind. */
const published = () =>
  sns.commandCalls(PublishCommand).map((c) => ({
    Subject: c.args[0].input.Subject,
    event: c.args[0].input.MessageAttributes?.event?.StringValue,
  }));
const executions = new Map<string, FakeExecution>();
/** Segments whose worker fails (its table cannot be found), by table. */
const failing = new Map<SiteLogixTable, Set<number>>();
const context = { getRemainingTimeInMillis: () => 900_000 } as Context;

/** One child execution: the worker until done; a failure recorded as the Catch records it. */
async function child(execution: FakeExecution, segment: number): Promise<void> {
  const { sweepId, table, totalSegments } = execution.input;
  try {
    for (;;) if ((await handler({ sweepId, table, segment, totalSegments }, context)).done) break;
    execution.succeeded.add(segment);
  } catch (err) {
    const e = err as Error;
    await t.clients.doc.send(
      new UpdateCommand({
        TableName: t.names.ledger,
        Key: ledgerKeys.sweepSegment(table, sweepId, segment),
        UpdateExpression: "SET #failedAt = :failedAt, #error = :error",
        ExpressionAttributeNames: { "#failedAt": "failedAt", "#error": "error" },
        ExpressionAttributeValues: { ":failedAt": new Date().toISOString(), ":error": `${e.name}: ${e.message}` },
      }),
    );
  }
}

/** The fake StartExecution: a RUNNING execution whose children run (after `hold`, when given). */
function startExecution(hold?: Promise<void>) {
  return ({ name, input, stateMachineArn }: { name: string; input: string; stateMachineArn: string }) => {
    const arn = `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
    const execution: FakeExecution = {
      arn,
      input: JSON.parse(input),
      status: "RUNNING",
      redriveStatus: "NOT_REDRIVABLE",
      succeeded: new Set(),
      ...(hold ? { hold } : {}),
    };
    executions.set(arn, execution);
    mapRun(execution);
    return { executionArn: arn, startDate: new Date() };
  };
}

/** The map run over the segments that have not succeeded yet; no failure tolerated. */
function mapRun(execution: FakeExecution): void {
  execution.status = "RUNNING";
  void (async () => {
    await execution.hold;
    if (execution.status !== "RUNNING") return;
    const pending = execution.input.segments.filter((s) => !execution.succeeded.has(s));
    await Promise.all(pending.map((segment) => child(execution, segment)));
    if (execution.status === "RUNNING")
      execution.status = execution.succeeded.size === execution.input.segments.length ? "SUCCEEDED" : "FAILED";
  })();
}

const cli = async (args: string[]) => {
  const { buildProgram } = await import("@sitelogix/cli/program");
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(["node", "sitelogix-migrate", ...args]);
    return { stdout, stderr, code: process.exitCode ?? 0 };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
};
const runRecord = async (table: SiteLogixTable) => (await ledgerOf(t).latestSweep(table)) as any;
const segmentRecord = async (table: SiteLogixTable, sweepId: string, segment: number) =>
  (
    await t.clients.doc.send(
      new GetCommand({ TableName: t.names.ledger, Key: ledgerKeys.sweepSegment(table, sweepId, segment) }),
    )
  ).Item as SweepCheckpoint | undefined;
const until = async (what: () => boolean) => {
  for (let i = 0; i < 600 && !what(); i++) await new Promise((r) => setTimeout(r, 100));
  expect(what()).toBe(true);
};

beforeAll(async () => {
  t = await createTestTables("legacy");
  await loadDataset(t.clients.doc, t.names, generateDataset({ items: 400, seed: 14 }));
  process.env.SITELOGIX_TABLE_PREFIX = t.prefix;
  process.env.SITELOGIX_SWEEP_STATE_MACHINE_ARN = MACHINE;
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
  process.env.SITELOGIX_NOTIFY_TOPIC_ARN = TOPIC;
  sns.on(PublishCommand).resolves({ MessageId: "m-1" });
  const { createSweepWorkerHandler } = await import("@sitelogix/functions/sweep-worker");
  const ledger = ledgerOf(t);
  handler = createSweepWorkerHandler({
    deps: (task) => ({
      clients: t.clients,
      ledger,
      tableName: failing.get(task.table)?.has(task.segment) ? `${t.prefix}no-such-table` : t.names[task.table],
    }),
  });
  sfn.on(StartExecutionCommand).callsFake(startExecution());
  sfn.on(DescribeExecutionCommand).callsFake(({ executionArn }) => {
    const e = executions.get(executionArn)!;
    const ended = e.status !== "RUNNING";
    return {
      executionArn,
      stateMachineArn: MACHINE,
      status: e.status,
      startDate: new Date(),
      ...(ended ? { redriveStatus: e.redriveStatus } : {}),
      ...(e.redriveStatusReason ? { redriveStatusReason: e.redriveStatusReason } : {}),
      ...(e.status === "FAILED" ? { error: "States.ExceedToleratedFailureThreshold" } : {}),
    };
  });
  sfn.on(StopExecutionCommand).callsFake(({ executionArn }) => {
    const e = executions.get(executionArn)!;
    e.status = "ABORTED";
    e.redriveStatus = "REDRIVABLE";
    return { stopDate: new Date() };
  });
  sfn.on(RedriveExecutionCommand).callsFake(({ executionArn }) => {
    mapRun(executions.get(executionArn)!);
    return { redriveDate: new Date() };
  });
});
afterEach(() => {
  sfn.resetHistory();
  sns.resetHistory();
});
afterAll(async () => {
  sfn.restore();
  sns.restore();
  delete process.env.SITELOGIX_NOTIFY_TOPIC_ARN;
  await t?.dispose();
});

describe("sweep --distributed", () => {
  it("starts an execution named after the sweep id over every segment and follows it to the end (--json)", async () => {
    const { stdout, stderr, code } = await cli([
      "sweep",
      "--distributed",
      "--table",
      "reports",
      "--segments",
      "4",
      "--json",
    ]);
    expect(code).toBe(0);
    const run = await runRecord("reports");
    const starts = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(starts).toEqual([
      {
        stateMachineArn: MACHINE,
        name: run.sweepId.replaceAll(":", "-"),
        input: JSON.stringify({ sweepId: run.sweepId, table: "reports", totalSegments: 4, segments: [0, 1, 2, 3] }),
      },
    ]);
    expect(executionName(run.sweepId)).toBe(run.sweepId.replaceAll(":", "-"));
    expect(run).toMatchObject({
      status: "finished",
      totalSegments: 4,
      executionArn: `${EXECUTIONS}:${starts[0]!.name}`,
    });
    const report = JSON.parse(stdout).tables.reports;
    expect(report).toMatchObject({ execution: "SUCCEEDED", sweepId: run.sweepId, segmentsDone: 4, totalSegments: 4 });
    expect(report.applied).toBeGreaterThan(0);
    expect(report.failedSegments).toEqual([]);
    expect(stderr).toContain(`reports: sweep ${run.sweepId} started in Step Functions`);
    expect(stderr).toMatch(/reports: distributed sweep .* SUCCEEDED: segments 4\/4 done/);
    expect(published()).toEqual([{ Subject: "[sitelogix-migrator] sweep finished: reports", event: "sweep-finished" }]);
  });

  it("refuses without a state machine, saying where its ARN comes from", async () => {
    delete process.env.SITELOGIX_SWEEP_STATE_MACHINE_ARN;
    try {
      await expect(cli(["sweep", "--distributed", "--table", "vendors"])).rejects.toThrow(
        /no sweep state machine: run under `npx sst shell --stage <stage>`.*SITELOGIX_SWEEP_STATE_MACHINE_ARN/,
      );
    } finally {
      process.env.SITELOGIX_SWEEP_STATE_MACHINE_ARN = MACHINE;
    }
  });

  /** Lets the children of the executions started from the Ctrl-C test on run. */
  let release!: () => void;

  it("Ctrl-C detaches: says the execution goes on and how to stop it, and stops nothing", async () => {
    const hold = new Promise<void>((r) => (release = r));
    // The next execution's children wait: it stays RUNNING while the CLI follows it.
    sfn.on(StartExecutionCommand).callsFake(startExecution(hold));
    const before = new Set(process.listeners("SIGINT"));
    const running = cli(["sweep", "--distributed", "--table", "vendors", "--segments", "3"]);
    await until(() => sfn.commandCalls(DescribeExecutionCommand).length > 0);
    // The CLI's own SIGINT handler, as a Ctrl-C would call it (not the test runner's).
    for (const listener of process.listeners("SIGINT").filter((l) => !before.has(l))) listener("SIGINT");
    const { stderr, code } = await running;
    expect(code).toBe(130);
    expect(stderr).toContain("SIGINT: detaching — the execution goes on in Step Functions");
    expect(stderr).toContain("stop it with sitelogix-migrate sweep --stop --table vendors");
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
    expect(published()).toEqual([]);
    const run = await runRecord("vendors");
    expect(executions.get(run.executionArn)?.status).toBe("RUNNING");
    expect(run.status).toBe("running");
  });

  it(
    "a local --resume of the running distributed sweep is refused: local workers would compete with " + "its Lambdas",
    async () => {
      await expect(cli(["sweep", "--resume", "--table", "vendors"])).rejects.toThrow(
        /vendors: sweep .* runs on the state machine .*sweep --distributed --resume, or stop it with sweep --stop/,
      );
      expect((await runRecord("vendors")).status).toBe("running");
    },
  );

  it("--stop stops the execution and marks the run stopped; --resume redrives the aborted execution", async () => {
    const run = await runRecord("vendors");
    const stopped = await cli(["sweep", "--stop", "--table", "vendors"]);
    expect(stopped.code).toBe(0);
    expect(sfn.commandCalls(StopExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual([run.executionArn]);
    expect(stopped.stderr).toContain(`vendors: stopped ${run.executionArn}`);
    expect((await runRecord("vendors")).status).toBe("stopped");
    release();

    const resumed = await cli(["sweep", "--distributed", "--resume", "--table", "vendors", "--json"]);
    expect(resumed.code).toBe(0);
    expect(sfn.commandCalls(RedriveExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual([
      run.executionArn,
    ]);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(resumed.stderr).toContain(`vendors: redriven ${run.executionArn}`);
    expect(JSON.parse(resumed.stdout).tables.vendors).toMatchObject({ execution: "SUCCEEDED", segmentsDone: 3 });
    expect(await runRecord("vendors")).toMatchObject({ sweepId: run.sweepId, status: "finished" });
  });

  it("reports a failing segment (sweep and status), and --resume redrives the failed execution", async () => {
    failing.set("constraints", new Set([1]));
    const failed = await cli(["sweep", "--distributed", "--table", "constraints", "--segments", "3", "--json"]);
    expect(failed.code).toBe(1);
    const run = await runRecord("constraints");
    const segment = await segmentRecord("constraints", run.sweepId, 1);
    expect(segment?.failedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(segment?.error).toMatch(/^ResourceNotFoundException: /);
    expect(failed.stderr).toContain(`failed segment 1 at ${segment?.failedAt}: ResourceNotFoundException`);
    expect(failed.stderr).toContain("continue with sitelogix-migrate sweep --distributed --resume --table constraints");
    expect(published()).toEqual([{ Subject: "[sitelogix-migrator] sweep failed: constraints", event: "sweep-failed" }]);
    expect(JSON.parse(failed.stdout).tables.constraints).toMatchObject({
      execution: "FAILED",
      segmentsDone: 2,
      failedSegments: [{ segment: 1, failedAt: segment?.failedAt, error: segment?.error }],
    });

    expect(run).toMatchObject({ status: "failed", error: "execution FAILED: States.ExceedToleratedFailureThreshold" });
    executions.get(run.executionArn)!.redriveStatus = "REDRIVABLE";
    const status = await cli(["status", "--table", "constraints"]);
    expect(status.stdout).toContain(
      `distributed: execution FAILED (States.ExceedToleratedFailureThreshold); redrivable with sweep --distributed ` +
        `--resume: ${run.executionArn}`,
    );
    const statusJson = JSON.parse((await cli(["status", "--table", "constraints", "--json"])).stdout);
    expect(statusJson.tables[0].execution).toMatchObject({ status: "FAILED", redriveStatus: "REDRIVABLE" });

    failing.delete("constraints");
    const resumed = await cli(["sweep", "--distributed", "--resume", "--table", "constraints"]);
    expect(resumed.code).toBe(0);
    expect(sfn.commandCalls(RedriveExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual([
      run.executionArn,
    ]);
    expect(await runRecord("constraints")).toMatchObject({ status: "finished" });
    expect((await segmentRecord("constraints", run.sweepId, 1))?.done).toBe(true);
  });

  it("past its redrive window, --resume starts a new execution over the unfinished segments only", async () => {
    failing.set("personnel", new Set([2]));
    expect((await cli(["sweep", "--distributed", "--table", "personnel", "--segments", "4"])).code).toBe(1);
    const run = await runRecord("personnel");
    Object.assign(executions.get(run.executionArn)!, {
      redriveStatus: "NOT_REDRIVABLE",
      redriveStatusReason: "Execution is beyond the redrive window",
    });
    failing.delete("personnel");
    sfn.resetHistory();
    const resumed = await cli(["sweep", "--distributed", "--resume", "--table", "personnel"]);
    expect(resumed.code).toBe(0);
    expect(sfn.commandCalls(RedriveExecutionCommand)).toHaveLength(0);
    const starts = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(starts).toEqual([
      {
        stateMachineArn: MACHINE,
        name: `${executionName(run.sweepId)}-2`,
        input: JSON.stringify({ sweepId: run.sweepId, table: "personnel", totalSegments: 4, segments: [2] }),
      },
    ]);
    expect(resumed.stderr).toContain("its execution FAILED: Execution is beyond the redrive window");
    expect(await runRecord("personnel")).toMatchObject({
      status: "finished",
      executions: 2,
      executionArn: `${EXECUTIONS}:${executionName(run.sweepId)}-2`,
    });
  });
});

describe("sweep --distributed and --stop as options", () => {
  it("are in sweep's help, and refused with what they cannot go with (exit 2)", async () => {
    const help = await runCli(["sweep", "--help"]);
    const text = help.stdout.replace(/\s+/g, " ");
    expect(text).toContain("--distributed run the sweep in the stage's Step Functions state machine");
    expect(text).toContain("--stop stop the distributed sweep of each --table");
    const both = await runCli(["sweep", "--distributed", "--workers", "2"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/option '--distributed' cannot be used with option '--workers <k>'/);
    const noTable = await runCli(["sweep", "--stop"], { SITELOGIX_TABLE_PREFIX: t.prefix });
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toContain("--stop needs --table");
  });
});
