// `sitelogix-migrate stream` as an operator runs it: killed with SIGKILL mid-stream, started again,
// it resumes from its ledger checkpoints without missing a record; SIGTERM stops it cleanly (exit 0).
import { spawn, type ChildProcess } from "node:child_process";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareSequenceNumbers, Ledger } from "@sitelogix/core";
import { createTestTables, runCli, type TestTables, readStreamRecords, waitFor } from "@sitelogix/testkit";

const CLI = new URL("../packages/cli/bin/sitelogix-migrate.js", import.meta.url).pathname;

function startStream(env: Record<string, string>) {
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, "stream", "--table", "reports", "--subscriber", "normalizer", "--poll-interval", "100"],
    {
      env: { ...process.env, ...env, POWERTOOLS_LOG_LEVEL: "WARN", POWERTOOLS_METRICS_DISABLED: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

describe("sitelogix-migrate stream", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(async () => {
    await t?.dispose();
  });

  const env = () => ({ SITELOGIX_TABLE_PREFIX: t.prefix });
  const write = async (ids: number[]) => {
    for (const i of ids) {
      await t.clients.doc.send(
        new PutCommand({
          TableName: t.names.reports,
          Item: {
            PK: `REPORT#k${i}`,
            SK: "METADATA",
            projectId: `proj_${i}`,
            managerId: "mgr_01",
            reportDate: "2025-11-11",
          },
        }),
      );
    }
  };
  const allNormalized = (ids: number[]) =>
    waitFor(
      async () => {
        for (const i of ids) {
          const item = (
            await t.clients.doc.send(
              new GetCommand({
                TableName: t.names.reports,
                Key: { PK: `REPORT#k${i}`, SK: "METADATA" },
                ConsistentRead: true,
              }),
            )
          ).Item;
          if (item?.project_id !== `proj_${i}`) return false;
        }
        return true;
      },
      `reports ${ids[0]}..${ids.at(-1)} to be normalized`,
      60_000,
    );

  it("resumes after SIGKILL from its checkpoints without missing records, and stops cleanly on SIGTERM", async () => {
    const ledger = new Ledger(t.clients.doc, t.names.ledger);
    const first = startStream(env());
    try {
      await waitFor(
        () => /shard \S+ starts at its first record/.test(first.stderr()),
        "the first run to start reading",
        60_000,
      );
      const before = Array.from({ length: 10 }, (_, i) => i);
      await write(before);
      await allNormalized(before);
      const lastInsert = (await readStreamRecords(t.clients, t.names.reports))
        .filter((r) => r.eventName === "INSERT")
        .at(-1)!.sequenceNumber;
      await waitFor(
        async () =>
          (await ledger.shardCheckpoints("normalizer", "reports")).some(
            (c) => c.sequenceNumber && compareSequenceNumbers(c.sequenceNumber, lastInsert) >= 0,
          ),
        "a checkpoint past the inserts",
      );
    } finally {
      first.child.kill("SIGKILL");
    }
    expect(await first.exited).toBeNull();

    // Written while nothing reads the stream.
    const during = Array.from({ length: 10 }, (_, i) => 100 + i);
    await write(during);

    const second = startStream(env());
    try {
      await waitFor(
        () => /shard \S+ resumes after sequence number \d+/.test(second.stderr()),
        "the second run to resume",
        60_000,
      );
      expect(second.stderr()).toMatch(/resuming the mapping started/);
      await allNormalized(during);
    } finally {
      second.child.kill("SIGTERM");
    }
    expect(await second.exited).toBe(0);
    const delivered = Number(/normalizer: (\d+) records delivered/.exec(second.stderr())?.[1]);
    const total = (await readStreamRecords(t.clients, t.names.reports)).length;
    // It went on from its checkpoint (at most a batch redelivered), not from the start of the stream.
    expect(delivered).toBeGreaterThanOrEqual(during.length);
    expect(delivered).toBeLessThan(total);
  }, 180_000);

  it("rejects an unknown table and a migrator table as usage errors", async () => {
    const unknown = await runCli(["stream", "--table", "nope"], env());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown table "nope"/);
    const ledgerTable = await runCli(["stream", "--table", "ledger"], env());
    expect(ledgerTable.code).toBe(2);
    expect(ledgerTable.stderr).toMatch(/migrator table/);
    expect(ledgerTable.stdout).toBe("");
  });
});
