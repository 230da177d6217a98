// `sitelogix-migrate local` (what `npm start` runs), end to end: its own DynamoDB Local, sample data,
// live traffic, every phase of the migration, the report; a rehearsal whose gate stays red on
// purpose; --keep-running; and Ctrl-C, which must leave no DynamoDB Local behind.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, runCli, startCli, waitFor } from "@sitelogix/testkit";

const dir = mkdtempSync(join(tmpdir(), "sitelogix-local-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PHASES = [
  "engine",
  "legacy tables and data",
  "expand",
  "sweep",
  "verify (violations expected)",
  "application fix",
  "sweep again",
  "verify (the gate)",
  "index phase",
  "index checks",
  "contract",
  "audit trail",
];
const REHEARSAL_TIMEOUT = 600_000;
// The rehearsal's endpoint tells the test its engine's port; the child sets its own SDK variables.
const portOf = (report: string) => Number(/DynamoDB Local \(http:\/\/127\.0\.0\.1:(\d+)\)/.exec(report)?.[1]);

/** Whether anything still listens on the port (a DynamoDB Local left behind). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const row = (stdout: string, phase: string) => stdout.split("\n").find((l) => l.startsWith(`${phase}  `));

describe("sitelogix-migrate local", () => {
  it(
    "rehearses every phase under live traffic, passes every check, writes the report and stops its DynamoDB Local",
    async () => {
      const reportFile = join(dir, "passed.md");
      const run = await runCli(
        ["local", "--items", "200", "--traffic", "10", "--report", reportFile],
        // The digest key and digests the rehearsal seals with, kept out of the home directory.
        { SITELOGIX_AUDIT_HOME: join(dir, "audit-home") },
        { timeoutMs: REHEARSAL_TIMEOUT },
      );
      expect(run.code, run.stderr).toBe(0);
      for (const phase of PHASES)
        expect(row(run.stdout, phase), phase).toMatch(new RegExp(`^${phase.replace(/[()]/g, "\\$&")}\\s+ok\\s`));
      expect(run.stdout).toContain(`report: ${reportFile}`);

      const report = readFileSync(reportFile, "utf8");
      expect(report).toContain("**Result: every check passed**");
      expect(report).not.toContain("## Failed checks");
      // The planted violations were found, fixed by the application, and the gate went green.
      expect(report).toMatch(
        new RegExp(
          String.raw`\| verify \(violations expected\) \| ok \| [\d.]+ s \| ` +
            String.raw`red as expected: [1-9]\d* items with violations, 0 gaps \|`,
        ),
      );
      expect(report).toMatch(/\| application fix \| ok \| [\d.]+ s \| [1-9]\d* items fixed by the application/);
      expect(report).toMatch(/\| verify \(the gate\) \| ok \| [\d.]+ s \| green on 4 tables \|/);
      expect(report).toContain("4 GSIs created under live traffic, each after its table's gate");
      expect(report).toMatch(/14\/14 indexes hold exactly their items; 7\/7 access patterns ok/);
      expect(report).toContain(
        "deleted personnel GSI2-ProjectIndex; every table now matches the target schema (14 GSIs)",
      );
      expect(report).toMatch(
        /[1-9]\d* entries in [1-9]\d* chains, one per stream record; [1-9]\d* by the sweep; audit verify intact/,
      );
      expect(report).toMatch(/audit seal: digest-0000000001\.json of [1-9]\d* chain heads, signed with the local key/);
      expect(report).toMatch(
        /audit verify: every chain intact \([1-9]\d* chains, .*1 signed digests, 0 entries unsealed\)/,
      );
      expect(await listening(portOf(report))).toBe(false);
    },
    REHEARSAL_TIMEOUT,
  );

  it(
    "without the application's fix the gate stays red: the index phase is refused with its reasons, exit 1",
    async () => {
      const reportFile = join(dir, "refused.md");
      const run = await runCli(
        ["local", "--items", "100", "--traffic", "10", "--no-fix", "--report", reportFile],
        {},
        { timeoutMs: REHEARSAL_TIMEOUT },
      );
      expect(run.code, run.stderr).toBe(1);
      expect(row(run.stdout, "verify (the gate)")).toMatch(/FAILED .* red on /);
      expect(row(run.stdout, "index phase")).toMatch(/FAILED .* refused on /);
      // Nothing after a refused index phase runs.
      expect(row(run.stdout, "contract")).toBeUndefined();

      const report = readFileSync(reportFile, "utf8");
      expect(report).toContain("**Result: FAILED**");
      expect(report).toMatch(/- \*\*verify \(the gate\)\*\*: the gate is red on .*violations\)/);
      expect(report).toMatch(
        /- \*\*index phase\*\*: index phase refused on [\w, ]+: .*is not green: \d+ gaps, [1-9]\d* violations/,
      );
      expect(await listening(portOf(report))).toBe(false);
    },
    REHEARSAL_TIMEOUT,
  );

  it(
    "--keep-running leaves DynamoDB Local and the stream runner up, says how to reach them, " +
      "and Ctrl-C then ends it with the rehearsal's result",
    async () => {
      const cli = await startCli(
        ["local", "--items", "100", "--traffic", "5", "--keep-running", "--report", join(dir, "kept.md")],
        {},
        { timeoutMs: REHEARSAL_TIMEOUT },
      );
      const deadline = Date.now() + REHEARSAL_TIMEOUT - 60_000;
      while (!cli.stderr().includes("Ctrl-C here stops it.") && cli.child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 250));
      const endpoint = /export AWS_ENDPOINT_URL_DYNAMODB=(\S+)/.exec(cli.stderr())?.[1];
      expect(endpoint, cli.stderr()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // A write of the application's is normalized by the runner that is still up.
      const doc = DynamoDBDocumentClient.from(
        new DynamoDBClient({
          endpoint,
          region: "us-east-1",
          credentials: { accessKeyId: "local", secretAccessKey: "local" },
        }),
      );
      try {
        const key = { PK: "REPORT#kept", SK: "METADATA" };
        await doc.send(
          new PutCommand({
            TableName: "sitelogix-reports",
            Item: { ...key, projectId: "proj_042", createdAt: "2025-11-20T08:00:00.000Z" },
          }),
        );
        const item = await waitFor(async () => {
          const found = (await doc.send(new GetCommand({ TableName: "sitelogix-reports", Key: key }))).Item;
          return found?.project_id ? found : undefined;
        }, "the kept runner to normalize a new write");
        expect(item).toMatchObject({ project_id: "proj_042", status: "published" });
      } finally {
        doc.destroy();
      }
      cli.child.kill("SIGINT");
      const run = await cli.done;
      expect(run.code, run.stderr).toBe(0);
      expect(await listening(Number(new URL(endpoint!).port))).toBe(false);
    },
    REHEARSAL_TIMEOUT,
  );

  it(
    "Ctrl-C stops the rehearsal: exit 130, the report says interrupted, no DynamoDB Local left listening",
    async () => {
      const port = await freePort();
      const reportFile = join(dir, "interrupted.md");
      const cli = await startCli(
        ["local", "--items", "100", "--port", String(port), "--report", reportFile],
        {},
        { timeoutMs: REHEARSAL_TIMEOUT },
      );
      const deadline = Date.now() + 120_000;
      while (!cli.stderr().includes("▶ sweep") && cli.child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(cli.stderr()).toContain("▶ sweep");
      expect(await listening(port)).toBe(true);
      cli.child.kill("SIGINT");
      const run = await cli.done;
      expect(run.code, run.stderr).toBe(130);
      expect(readFileSync(reportFile, "utf8")).toMatch(/- \*\*sweep\*\*: interrupted/);
      expect(await listening(port)).toBe(false);
    },
    REHEARSAL_TIMEOUT,
  );
});
