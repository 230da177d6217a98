// The audit digests' infrastructure (issue 15), from the real sst.config.ts run as `sst deploy` would
// for stages dev and prod under Pulumi's mocks (test/infra/harness.ts): the signing key and who may
// sign, the Object Lock bucket, the scheduled writer and its permissions, the alarms. The expected
// values are written out here from the issue, not read from stacks/digests.ts.
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import migrationConfig from "../migration.config.js";
import type { MigrationConfig, StageConfig } from "../stacks/config.js";
import { inputs } from "../stacks/inputs.js";
import { disposeHarness, runProgram, type ProgramRun, type RecordedResource } from "./infra/harness.js";
import { fakeLiveTables } from "./infra/live.js";

const ACCOUNT_ROOT = "arn:aws:iam::123456789012:root";
const ONCALL = "audit-oncall@sitelogix.example";
const MANAGED_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Principal?: string | { AWS?: string | string[]; Service?: string };
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}
const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const statementsOf = (json: string): Statement[] => JSON.parse(json).Statement;

/** The checked-in config, prod with an alarm address (its deploy is refused without one), stages changed by `edit`. */
function config(edit: (stage: StageConfig, name: string) => StageConfig = (s) => s): MigrationConfig {
  const prod = { alarms: { email: [ONCALL] }, ...migrationConfig.stages.prod! };
  return {
    stages: { ...migrationConfig.stages, prod: edit(prod, "prod") },
    otherStages: edit(migrationConfig.otherStages, "dev"),
  };
}

async function deploy(stage: string, cfg = config()): Promise<ProgramRun> {
  inputs.config = cfg;
  inputs.liveTables = fakeLiveTables(stage === "prod" ? { phase: "legacy" } : {});
  return runProgram(stage);
}

const sns = mockClient(SNSClient);
const runs = new Map<string, ProgramRun>();
beforeAll(async () => {
  sns.on(PublishCommand).resolves({ MessageId: "m-1" });
  for (const stage of ["dev", "prod"]) runs.set(stage, await deploy(stage));
}, 600_000);
afterAll(async () => {
  sns.restore();
  await disposeHarness();
});

const ofType = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type);
const one = (run: ProgramRun, type: string, pick: (r: RecordedResource) => boolean = () => true) => {
  const found = ofType(run, type).filter(pick);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};

/** What one stage's run declared for the digests. */
function digestsOf(run: ProgramRun) {
  const key = one(run, "aws:kms/key:Key");
  const bucket = one(run, "aws:s3/bucket:Bucket");
  const writer = one(
    run,
    "aws:lambda/function:Function",
    (f) =>
      f.inputs.handler?.startsWith("index.") &&
      f.inputs.environment?.variables?.POWERTOOLS_SERVICE_NAME === "sitelogix-digest-writer",
  );
  const role = one(run, "aws:iam/role:Role", (r) => r.outputs.arn === writer.inputs.role && !r.importId);
  const rolePolicies = ofType(run, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.role === role.outputs.name);
  const audit = one(run, "aws:dynamodb/table:Table", (t) => t.inputs.name.endsWith("sitelogix-audit-log"));
  const ofBucket = (type: string) => one(run, type, (r) => r.inputs.bucket === bucket.outputs.bucket);
  return { key, bucket, writer, role, rolePolicies, audit, ofBucket };
}

describe.each(["dev", "prod"])("stage %s", (stage) => {
  const prod = stage === "prod";
  const run = () => runs.get(stage)!;

  it("deploys without refusal", () => {
    expect(run().error).toBeUndefined();
  });

  it("signs with an asymmetric ECC_NIST_P256 key for SIGN_VERIFY, aliased, protected in prod", () => {
    const { key } = digestsOf(run());
    expect(key.inputs).toMatchObject({ customerMasterKeySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" });
    expect(key.inputs.deletionWindowInDays).toBe(prod ? 30 : 7);
    expect(key.protect ?? false).toBe(prod);
    const alias = one(run(), "aws:kms/alias:Alias");
    expect(alias.inputs).toEqual(
      expect.objectContaining({ name: `alias/sitelogix-${stage}-audit-digests`, targetKeyId: key.outputs.keyId }),
    );
  });

  it("key policy: only the writer's role signs; the account administers (deletion too), never signs or grants", () => {
    const { key, role } = digestsOf(run());
    const statements = statementsOf(key.inputs.policy);
    const allowing = (action: string) =>
      statements.filter((s) => s.Effect === "Allow" && list(s.Action).some((a) => a === action || a === "kms:*"));
    const principals = (ss: Statement[]) =>
      ss.flatMap((s) => list(typeof s.Principal === "object" ? s.Principal.AWS : s.Principal));

    expect(principals(allowing("kms:Sign"))).toEqual([role.outputs.arn]);
    expect(principals(allowing("kms:CreateGrant"))).toEqual([]);
    expect(principals(allowing("kms:ScheduleKeyDeletion"))).toEqual([ACCOUNT_ROOT]);
    expect(principals(allowing("kms:PutKeyPolicy"))).toEqual([ACCOUNT_ROOT]);
    // Verifiers (through the account's IAM policies) read the public key; the writer needs it too.
    expect(principals(allowing("kms:GetPublicKey")).sort()).toEqual([ACCOUNT_ROOT, role.outputs.arn].sort());
    expect(principals(allowing("kms:DescribeKey"))).toEqual([ACCOUNT_ROOT]);
    for (const s of statements) for (const a of list(s.Action)) expect(a).not.toMatch(/\*/);
    // The writer's own statement: exactly Sign and GetPublicKey.
    const writer = statements.filter((s) => s.Effect === "Allow" && principals([s]).includes(role.outputs.arn));
    expect(writer.flatMap((s) => list(s.Action)).sort()).toEqual(["kms:GetPublicKey", "kms:Sign"]);
    // And an explicit Deny of Sign to anyone else, which no grant or later Allow overrides.
    const deny = statements.filter((s) => s.Effect === "Deny");
    expect(deny).toEqual([
      expect.objectContaining({
        Principal: { AWS: "*" },
        Action: ["kms:Sign"],
        Condition: { ArnNotEquals: { "aws:PrincipalArn": role.outputs.arn } },
      }),
    ]);
  });

  it("stores digests in a bucket with versioning and Object Lock in COMPLIANCE mode for the audit retention", () => {
    const { bucket, ofBucket } = digestsOf(run());
    expect(bucket.inputs.objectLockEnabled).toBe(true);
    expect(bucket.protect ?? false).toBe(prod);
    expect(bucket.inputs.forceDestroy).toBe(!prod);
    expect(ofBucket("aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration).toEqual({
      status: "Enabled",
    });
    const lock = ofBucket("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs;
    expect(lock.objectLockEnabled).toBe("Enabled");
    // prod: the default audit retention, 7 years; dev stages: the checked-in one day, so they can be removed.
    expect(lock.rule.defaultRetention).toEqual(
      prod ? { mode: "COMPLIANCE", years: 7 } : { mode: "COMPLIANCE", days: 1 },
    );
  });

  it("blocks public access, disables ACLs, encrypts, and refuses any request without TLS", () => {
    const { bucket, ofBucket } = digestsOf(run());
    expect(ofBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(ofBucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs.rule).toEqual({
      objectOwnership: "BucketOwnerEnforced",
    });
    expect(
      ofBucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules,
    ).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }]);
    const statements = statementsOf(ofBucket("aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
    expect(statements).toEqual([
      expect.objectContaining({
        Effect: "Deny",
        Principal: "*",
        Action: ["s3:*"],
        Resource: [bucket.outputs.arn, `${bucket.outputs.arn}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      }),
    ]);
  });

  it("runs the writer hourly from an EventBridge schedule (sst.aws.Cron)", () => {
    const { writer } = digestsOf(run());
    const rule = one(run(), "aws:cloudwatch/eventRule:EventRule");
    expect(rule.inputs).toMatchObject({ scheduleExpression: "rate(1 hour)", state: "ENABLED" });
    const target = one(run(), "aws:cloudwatch/eventTarget:EventTarget");
    expect(target.inputs.rule).toBe(rule.outputs.name);
    expect(target.inputs.arn).toBe(writer.outputs.arn);
    const permission = one(run(), "aws:lambda/permission:Permission", (p) => p.inputs.sourceArn === rule.outputs.arn);
    expect(permission.inputs).toMatchObject({ principal: "events.amazonaws.com", action: "lambda:InvokeFunction" });
  });

  it("builds the writer's handler: key, bucket and prefix in its environment, the audit table linked", () => {
    const { writer, key, bucket, audit } = digestsOf(run());
    const builds = [...run().builds.values()].filter((b) => b.handler.includes("digest-writer"));
    expect(builds.map((b) => b.handler)).toEqual(["packages/functions/src/digest-writer.handler"]);
    expect(builds[0]!.links).toEqual({ AuditLog: { name: audit.inputs.name, type: "sst.sst.Linkable" } });
    expect(writer.inputs.runtime).toBe("nodejs22.x");
    expect(writer.inputs.environment.variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: "sitelogix-digest-writer",
      POWERTOOLS_METRICS_NAMESPACE: "SiteLogixMigrator",
      SITELOGIX_AUDIT_KMS_KEY_ID: key.outputs.arn,
      SITELOGIX_AUDIT_DIGEST_BUCKET: bucket.outputs.bucket,
      SITELOGIX_AUDIT_DIGEST_PREFIX: "digests/",
    });
    // Hourly: a run may take up to 15 minutes, well inside its period, so two never overlap.
    expect(writer.inputs.timeout).toBe(15 * 60);
  });

  it("grants the writer exactly Scan on the audit table, put/get/list of digests, Sign/GetPublicKey", () => {
    const { role, rolePolicies, key, bucket, audit } = digestsOf(run());
    expect(role.inputs.managedPolicyArns).toEqual([MANAGED_BASIC]);
    expect(role.inputs.inlinePolicies ?? []).toEqual([]);
    expect(JSON.parse(role.inputs.assumeRolePolicy).Statement).toEqual([
      { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
    ]);
    expect(rolePolicies).toHaveLength(1);
    const statements = statementsOf(rolePolicies[0]!.inputs.policy);
    const grants = statements.flatMap((s) => {
      expect(s.Effect).toBe("Allow");
      return list(s.Resource).flatMap((r) => list(s.Action).map((a) => `${a} ${r}`));
    });
    expect(grants.sort()).toEqual(
      [
        `dynamodb:Scan ${audit.outputs.arn}`,
        `s3:ListBucket ${bucket.outputs.arn}`,
        `s3:GetObject ${bucket.outputs.arn}/digests/*`,
        `s3:PutObject ${bucket.outputs.arn}/digests/*`,
        `kms:Sign ${key.outputs.arn}`,
        `kms:GetPublicKey ${key.outputs.arn}`,
      ].sort(),
    );
    const listing = statements.find((s) => list(s.Action).includes("s3:ListBucket"))!;
    expect(listing.Condition).toEqual({ StringLike: { "s3:prefix": ["digests/*"] } });
    for (const s of statements) {
      for (const a of list(s.Action)) expect(a).not.toMatch(/\*|^s3:Delete|^dynamodb:(Put|Update|Delete|Batch)/);
      for (const r of list(s.Resource)) expect(r === "*" || r.endsWith(":*") || /\*.*\*/.test(r)).toBe(false);
    }
  });

  it("alarms on the writer's errors and on no digest for two periods (missing data breaches), to the topic", () => {
    const { writer } = digestsOf(run());
    const topic = one(run(), "aws:sns/topic:Topic").outputs.arn;
    const alarms = ofType(run(), "aws:cloudwatch/metricAlarm:MetricAlarm");
    const errors = alarms.filter(
      (a) => a.inputs.metricName === "Errors" && a.inputs.dimensions?.FunctionName === writer.outputs.name,
    );
    expect(errors.map((a) => a.inputs)).toEqual([
      expect.objectContaining({
        namespace: "AWS/Lambda",
        statistic: "Sum",
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        alarmActions: [topic],
      }),
    ]);
    const missing = alarms.filter((a) => a.inputs.metricName === "AuditDigestsSealed");
    expect(missing.map((a) => a.inputs)).toEqual([
      expect.objectContaining({
        namespace: "SiteLogixMigrator",
        dimensions: { service: "sitelogix-digest-writer" },
        statistic: "Sum",
        period: 3600,
        evaluationPeriods: 2,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
        alarmActions: [topic],
        okActions: [topic],
      }),
    ]);
  });

  it("links the key, bucket and writer for `sst shell` (Resource.AuditDigests) and outputs them", () => {
    const { key, bucket, writer } = digestsOf(run());
    const expected = { keyId: key.outputs.arn, bucket: bucket.outputs.bucket, writer: writer.outputs.name };
    expect(run().links.find((l) => l.name === "AuditDigests")?.properties).toEqual(expected);
    expect(run().outputs.auditDigests).toEqual(expected);
  });

  it("gives the audit logger the same retention as the digests' lock (SITELOGIX_AUDIT_RETENTION_YEARS)", () => {
    const loggers = ofType(run(), "aws:lambda/function:Function").filter(
      (f) => f.inputs.environment?.variables?.POWERTOOLS_SERVICE_NAME === "sitelogix-audit-logger",
    );
    expect(loggers).toHaveLength(6);
    for (const f of loggers) expect(f.inputs.environment.variables.SITELOGIX_AUDIT_RETENTION_YEARS).toBe("7");
    const normalizers = ofType(run(), "aws:lambda/function:Function").filter(
      (f) => f.inputs.environment?.variables?.POWERTOOLS_SERVICE_NAME === "sitelogix-normalizer",
    );
    for (const f of normalizers) expect(f.inputs.environment.variables.SITELOGIX_AUDIT_RETENTION_YEARS).toBeUndefined();
  });
});

describe("the stage's audit settings", () => {
  it("a schedule and retention from migration.config.ts: period, lock and timeout follow", async () => {
    const run = await deploy(
      "dev",
      config((s) => ({ ...s, audit: { retentionYears: 10, digestSchedule: "rate(5 minutes)" } })),
    );
    expect(run.error).toBeUndefined();
    const { writer, ofBucket } = digestsOf(run);
    expect(one(run, "aws:cloudwatch/eventRule:EventRule").inputs.scheduleExpression).toBe("rate(5 minutes)");
    const lock = ofBucket("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs;
    expect(lock.rule.defaultRetention).toEqual({ mode: "COMPLIANCE", years: 10 });
    expect(writer.inputs.timeout).toBe(300);
    const missing = one(
      run,
      "aws:cloudwatch/metricAlarm:MetricAlarm",
      (a) => a.inputs.metricName === "AuditDigestsSealed",
    );
    expect(missing.inputs).toMatchObject({ period: 300, evaluationPeriods: 2 });
    const logger = ofType(run, "aws:lambda/function:Function").find(
      (f) => f.inputs.environment?.variables?.POWERTOOLS_SERVICE_NAME === "sitelogix-audit-logger",
    );
    expect(logger?.inputs.environment.variables.SITELOGIX_AUDIT_RETENTION_YEARS).toBe("10");
  });

  it("refuses a short digest lock on prod, a schedule not a rate, a retention not in whole years", async () => {
    const run = await deploy(
      "prod",
      config((s, name) =>
        name === "prod"
          ? { ...s, audit: { digestLockDays: 1, digestSchedule: "cron(0 * * * ? *)", retentionYears: 2.5 } }
          : s,
      ),
    );
    expect(run.error?.name).toBe("StageConfigError");
    expect(run.error?.message).toContain('stage "prod": audit.digestLockDays is refused on a protected stage');
    expect(run.error?.message).toContain('audit.digestSchedule "cron(0 * * * ? *)" must be a rate');
    expect(run.error?.message).toContain("audit.retentionYears must be a whole number from 1 to 100, got 2.5");
    expect(run.resources).toEqual([]);
  });

  it("refuses rate(1 hours) and rate(2 day) (EventBridge's singular and plural) and a rate over a day", async () => {
    for (const digestSchedule of ["rate(1 hours)", "rate(2 day)", "rate(2 days)", "rate(0 minutes)"]) {
      const run = await deploy(
        "dev",
        config((s) => ({ ...s, audit: { digestSchedule } })),
      );
      expect(run.error?.message, digestSchedule).toContain(`audit.digestSchedule "${digestSchedule}" must be a rate`);
    }
  });
});
