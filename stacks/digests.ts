// The audit trail's anchor outside DynamoDB (issue 15): a scheduled digest writer signs a digest of
// the chain heads changed since the previous one with an asymmetric KMS key that only it may use,
// and stores it in an S3 bucket under Object Lock (COMPLIANCE) for the audit retention. Someone who
// can write the audit table can rewrite an entry, its chain and head, but not the signed digest that
// already covers the old head: `audit verify` compares them.
import type { AuditSettings, StageContext } from "./config";
import { POWERTOOLS_METRICS_NAMESPACE } from "./migrator";
import type { DeclaredTable } from "./tables";

export const DIGEST_WRITER_SERVICE = "sitelogix-digest-writer";
/**
 * The writer's metric (packages/functions/src/digest-writer.ts): 1 per digest sealed. Missing for two
 * periods means no digest is being written.
 */
export const DIGESTS_SEALED_METRIC = "AuditDigestsSealed";
/** Where the digests go in the bucket (the writer's S3 permissions are confined to it). */
export const DIGEST_OBJECT_PREFIX = "digests/";
/** Sealing streams every head changed in the period; never run longer than the schedule's period. */
const MAX_WRITER_TIMEOUT_SECONDS = 15 * 60;

/**
 * What the key's administrators (the account, through IAM policies) may do: everything but use the
 * key to sign, or hand that use to someone else (grants). Verifiers read the public key.
 */
export const KEY_ADMIN_ACTIONS = [
  "kms:CancelKeyDeletion",
  "kms:CreateAlias",
  "kms:DeleteAlias",
  "kms:DescribeKey",
  "kms:DisableKey",
  "kms:EnableKey",
  "kms:GetKeyPolicy",
  "kms:GetPublicKey",
  "kms:ListGrants",
  "kms:ListKeyPolicies",
  "kms:ListResourceTags",
  "kms:PutKeyPolicy",
  "kms:RetireGrant",
  "kms:RevokeGrant",
  "kms:ScheduleKeyDeletion",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateAlias",
  "kms:UpdateKeyDescription",
];
/** What the digest writer's role may do with the key (key policy and its own IAM policy). */
export const WRITER_KEY_ACTIONS = ["kms:Sign", "kms:GetPublicKey"];
/**
 * What sealing reads in the audit table: a parallel Scan for the chain heads changed since the
 * previous digest (core audit/seal.ts). Never a write: the writer cannot alter what it attests.
 */
export const WRITER_TABLE_ACTIONS = ["dynamodb:Scan"];
/** Digests are written, read back (the previous digest's hash) and listed; never deleted. */
export const WRITER_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject"];
export const WRITER_BUCKET_ACTIONS = ["s3:ListBucket"];

type Statement = {
  Sid: string;
  Effect: "Allow" | "Deny";
  Principal?: unknown;
  Action: string[];
  Resource: $util.Input<string> | $util.Input<string>[];
  Condition?: unknown;
};
const policy = (statements: Statement[]) =>
  $util.jsonStringify($util.output({ Version: "2012-10-17", Statement: statements }));

/** Object Lock's default retention for the bucket: `{ days }` or `{ years }`. */
export function lockRetention(lock: AuditSettings["digestLock"]) {
  return { mode: "COMPLIANCE", ...lock };
}

export function digests(ctx: StageContext, audit: DeclaredTable, topicArn: $util.Input<string>) {
  const tags = { "sitelogix:managed-by": "sitelogix-migrator" };
  const settings = ctx.auditSettings;
  const protect = { protect: ctx.protect };
  const identity = aws.getCallerIdentityOutput({});
  const partition = aws.getPartitionOutput({}).partition;
  const accountRoot = $interpolate`arn:${partition}:iam::${identity.accountId}:root`;

  // The writer's role comes first, without permissions: the key policy names it, and its permissions
  // name the key (a role SST creates with the function would depend on the key, and the key on it).
  const role = new aws.iam.Role("AuditDigestWriterRole", {
    description: `sitelogix-migrator ${ctx.stage}: the audit digest writer (the only principal that may sign digests)`,
    assumeRolePolicy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
    }),
    managedPolicyArns: [$interpolate`arn:${partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`],
    tags,
  });

  const key = new aws.kms.Key(
    "AuditDigestKey",
    {
      description: `sitelogix-migrator ${ctx.stage}: signs the audit trail's digests (ECDSA P-256)`,
      customerMasterKeySpec: "ECC_NIST_P256",
      keyUsage: "SIGN_VERIFY",
      // KMS waits this long before deleting a key (cancellable); a deleted key signs nothing more.
      deletionWindowInDays: ctx.protect ? 30 : 7,
      policy: policy([
        {
          // The account administers the key through IAM policies, and verifiers read its public key,
          // but nobody but the writer can sign: kms:Sign and kms:CreateGrant are not delegated.
          Sid: "AdministerTheKeyButNeverSign",
          Effect: "Allow",
          Principal: { AWS: accountRoot },
          Action: KEY_ADMIN_ACTIONS,
          Resource: "*",
        },
        {
          Sid: "TheDigestWriterSigns",
          Effect: "Allow",
          Principal: { AWS: role.arn },
          Action: WRITER_KEY_ACTIONS,
          Resource: "*",
        },
        {
          // Belt and braces: even a grant or a later Allow cannot let another principal sign.
          Sid: "NobodyElseSigns",
          Effect: "Deny",
          Principal: { AWS: "*" },
          Action: ["kms:Sign"],
          Resource: "*",
          Condition: { ArnNotEquals: { "aws:PrincipalArn": role.arn } },
        },
      ]),
      tags,
    },
    protect,
  );
  const alias = `alias/sitelogix-${ctx.stage}-audit-digests`;
  new aws.kms.Alias("AuditDigestKeyAlias", { name: alias, targetKeyId: key.keyId });

  const bucket = new aws.s3.Bucket(
    "AuditDigestBucket",
    {
      bucketPrefix: `sitelogix-${ctx.stage
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, "-")
        .slice(0, 12)}-digests-`,
      // Object Lock can only be turned on when a bucket is created.
      objectLockEnabled: true,
      // A stage that is not protected can be removed once its digests' locks have expired.
      forceDestroy: !ctx.protect,
      tags,
    },
    protect,
  );
  const versioning = new aws.s3.BucketVersioning("AuditDigestBucketVersioning", {
    bucket: bucket.bucket,
    versioningConfiguration: { status: "Enabled" },
  });
  new aws.s3.BucketObjectLockConfiguration(
    "AuditDigestBucketObjectLock",
    {
      bucket: bucket.bucket,
      objectLockEnabled: "Enabled",
      rule: { defaultRetention: lockRetention(settings.digestLock) },
    },
    { dependsOn: [versioning] },
  );
  new aws.s3.BucketPublicAccessBlock("AuditDigestBucketPublicAccessBlock", {
    bucket: bucket.bucket,
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
  });
  new aws.s3.BucketOwnershipControls("AuditDigestBucketOwnership", {
    bucket: bucket.bucket,
    rule: { objectOwnership: "BucketOwnerEnforced" },
  });
  new aws.s3.BucketServerSideEncryptionConfiguration("AuditDigestBucketEncryption", {
    bucket: bucket.bucket,
    rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
  });
  new aws.s3.BucketPolicy("AuditDigestBucketPolicy", {
    bucket: bucket.bucket,
    policy: policy([
      {
        Sid: "TlsOnly",
        Effect: "Deny",
        Principal: "*",
        Action: ["s3:*"],
        Resource: [bucket.arn, $interpolate`${bucket.arn}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ]),
  });

  new aws.iam.RolePolicy("AuditDigestWriterPolicy", {
    role: role.name,
    policy: policy([
      {
        Sid: "ReadTheAuditTable",
        Effect: "Allow",
        Action: WRITER_TABLE_ACTIONS,
        Resource: [audit.table.arn],
      },
      {
        Sid: "ListTheDigests",
        Effect: "Allow",
        Action: WRITER_BUCKET_ACTIONS,
        Resource: [bucket.arn],
        Condition: { StringLike: { "s3:prefix": [`${DIGEST_OBJECT_PREFIX}*`] } },
      },
      {
        // Objects under the prefix only; no s3:Delete*, and Object Lock refuses deletes anyway.
        Sid: "WriteAndReadDigests",
        Effect: "Allow",
        Action: WRITER_OBJECT_ACTIONS,
        Resource: [$interpolate`${bucket.arn}/${DIGEST_OBJECT_PREFIX}*`],
      },
      { Sid: "SignDigests", Effect: "Allow", Action: WRITER_KEY_ACTIONS, Resource: [key.arn] },
    ]),
  });

  const timeout = Math.min(MAX_WRITER_TIMEOUT_SECONDS, settings.digestPeriodSeconds);
  const cron = new sst.aws.Cron("AuditDigestWriter", {
    schedule: settings.digestSchedule as `rate(${string})`,
    function: {
      handler: "packages/functions/src/digest-writer.handler",
      description: `audit digest writer (${settings.digestSchedule}) on ${audit.name}`,
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: "1024 MB",
      // At most the schedule's period, so that two scheduled runs never overlap.
      timeout: `${timeout} seconds`,
      logging: { retention: "3 months" },
      role: role.arn,
      environment: {
        POWERTOOLS_SERVICE_NAME: DIGEST_WRITER_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: "INFO",
        SITELOGIX_AUDIT_KMS_KEY_ID: key.arn,
        SITELOGIX_AUDIT_DIGEST_BUCKET: bucket.bucket,
        SITELOGIX_AUDIT_DIGEST_PREFIX: DIGEST_OBJECT_PREFIX,
      },
      // The audit table's name (Resource.AuditLog.name); links carry names, the role carries permissions.
      link: [audit.link],
    },
  });
  const writer = cron.nodes.function;
  const writerName = writer.apply((fn) => fn.name);

  // Under `sst shell`, Resource.AuditDigests names the key and bucket (`audit verify` reads them when
  // SITELOGIX_AUDIT_KMS_KEY_ID / SITELOGIX_AUDIT_DIGEST_BUCKET are not set) and the writer, which
  // alone can sign: an on-demand seal on AWS invokes it.
  new sst.Linkable("AuditDigests", {
    properties: { keyId: key.arn, bucket: bucket.bucket, writer: writerName },
  });

  const alarm = (name: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions">) =>
    new aws.cloudwatch.MetricAlarm(name, { alarmActions: [topicArn], okActions: [topicArn], tags, ...args });
  alarm("DigestWriterErrors", {
    alarmDescription:
      `The audit digest writer failed (EventBridge retries it twice). Read the logs of ${DIGEST_WRITER_SERVICE}; ` +
      "until it succeeds, new audit entries are reported by `audit verify` as not yet sealed.",
    namespace: "AWS/Lambda",
    metricName: "Errors",
    dimensions: { FunctionName: writerName },
    statistic: "Sum",
    period: 300,
    evaluationPeriods: 1,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
  });
  alarm("DigestsMissing", {
    alarmDescription:
      `No audit digest sealed for two periods of ${settings.digestSchedule}: the writer is not running or ` +
      "fails. Entries since the last digest are not anchored. `sitelogix-migrate audit seal` seals on demand.",
    namespace: POWERTOOLS_METRICS_NAMESPACE,
    metricName: DIGESTS_SEALED_METRIC,
    dimensions: { service: DIGEST_WRITER_SERVICE },
    statistic: "Sum",
    period: settings.digestPeriodSeconds,
    evaluationPeriods: 2,
    threshold: 1,
    comparisonOperator: "LessThanThreshold",
    // No data is the failure this alarm is for.
    treatMissingData: "breaching",
  });

  return { key, bucket, writer: writerName };
}
