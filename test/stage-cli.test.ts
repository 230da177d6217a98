// The CLI as `sst shell` runs it: the stage's `Migrator` link (SST_RESOURCE_Migrator) names the region
// the stage is pinned to, and a command refuses to act anywhere else. And the one line the CLI prints
// on Node.js 20 instead of the AWS SDK's warning.
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "@sitelogix/core";
import { createTestTables, runCli, type TestTables, startSnsRecorder, type SnsRecorder } from "@sitelogix/testkit";

const shellFor = (region: string) => ({
  SST_RESOURCE_Migrator: JSON.stringify({ stage: "prod", region, topicArn: "" }),
});

describe("under sst shell: the stage's pinned region", () => {
  let t: TestTables;
  const env = () => ({ SITELOGIX_TABLE_PREFIX: t.prefix });
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(() => t.dispose());

  it("refuses to act when the SDK would use another region, and does nothing", async () => {
    const run = await runCli(["sweep", "--pause"], { ...env(), ...shellFor("us-east-1"), AWS_REGION: "eu-west-1" });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      "sitelogix-migrate: stage prod is deployed in us-east-1, but the AWS SDK would act in eu-west-1 " +
        "(AWS_REGION=eu-west-1); " +
        "nothing was done: unset AWS_REGION or set it to us-east-1, then run the command again\n",
    );
    expect(await new Ledger(t.clients.doc, t.names.ledger).pauseFlag()).toBeUndefined();
  });

  it("acts when the SDK's region is the stage's", async () => {
    const region = process.env.AWS_REGION!;
    const run = await runCli(["sweep", "--pause", "--json"], { ...env(), ...shellFor(region) });
    expect(run.code).toBe(0);
    expect(await new Ledger(t.clients.doc, t.names.ledger).pauseFlag()).toMatchObject({ paused: true });
    expect((await runCli(["sweep", "--unpause"], { ...env(), ...shellFor(region) })).code).toBe(0);
  });

  it("checks nothing outside sst shell (no link): the SDK's own region rules", async () => {
    const run = await runCli(["sweep", "--unpause"], env());
    expect(run.code).toBe(0);
  });
});

describe("phase events: verify tells the stage's topic whether the gate is green or red", () => {
  let t: TestTables;
  let sns: SnsRecorder;
  const TOPIC = "arn:aws:sns:us-east-1:123456789012:sitelogix-ops";
  const env = () => ({
    SITELOGIX_TABLE_PREFIX: t.prefix,
    SITELOGIX_NOTIFY_TOPIC_ARN: TOPIC,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
  });
  beforeAll(async () => {
    t = await createTestTables("legacy");
    sns = await startSnsRecorder();
  });
  afterAll(async () => {
    await sns.close();
    await t.dispose();
  });

  it("green on clean tables, red naming the table with gaps; one message per verify", async () => {
    expect((await runCli(["verify", "--table", "vendors", "constraints"], env())).code).toBe(0);
    expect(sns.published).toEqual([
      expect.objectContaining({
        TopicArn: TOPIC,
        Subject: "[sitelogix-migrator] gate green: vendors, constraints",
        event: "gate-green",
      }),
    ]);

    // A vendor the normalizer never saw: no company_name, vendor_type or dateLastSeen yet.
    await t.clients.doc.send(
      new PutCommand({
        TableName: t.names.vendors,
        Item: { PK: "VENDOR#v1", SK: "PROFILE", companyName: "Acme", createdAt: "2025-01-01" },
      }),
    );
    expect((await runCli(["verify", "--table", "vendors", "constraints"], env())).code).toBe(3);
    expect(sns.published).toHaveLength(2);
    expect(sns.published[1]).toMatchObject({ Subject: "[sitelogix-migrator] gate red: vendors", event: "gate-red" });
    expect(sns.published[1]!.Message).toMatch(
      /^gate red: vendors\nvendors: red \(1 items with gaps, 0 with violations\); index gate closed: /,
    );
    expect(sns.published[1]!.Message).not.toContain("Acme");
  });

  it("says so in one line, and keeps the verify's result, when the topic cannot be reached", async () => {
    const run = await runCli(["verify", "--table", "constraints"], {
      ...env(),
      AWS_ENDPOINT_URL_SNS: "http://127.0.0.1:9",
      AWS_MAX_ATTEMPTS: "1",
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^the gate notification was not sent: /m);
  });
});

describe("Node.js versions", () => {
  const major = process.versions.node.split(".")[0];
  it(`on Node ${major}: one line of its own on 20, nothing on 22+, and never the SDK's warning`, async () => {
    const t = await createTestTables("legacy");
    try {
      // A command that creates SDK clients, with neither notice silenced (the suites silence both).
      const run = await runCli(["status", "--json"], {
        SITELOGIX_TABLE_PREFIX: t.prefix,
        SITELOGIX_NODE_NOTICE_SHOWN: "",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "",
      });
      expect(run.code).toBe(0);
      JSON.parse(run.stdout);
      expect(run.stderr).not.toMatch(/NodeVersionSupportWarning|AWS SDK for JavaScript/);
      const notices = run.stderr.split("\n").filter((line) => line.includes("end of life"));
      if (process.versions.node.startsWith("20.")) {
        expect(notices).toEqual([
          `sitelogix-migrate: Node.js ${process.versions.node} is past end of life (Node 20: 2026-04-30) ` +
            "and AWS SDK releases after early January 2027 need Node.js 22; use Node.js 22 or 24",
        ]);
      } else {
        expect(notices).toEqual([]);
      }
    } finally {
      await t.dispose();
    }
  });
});
