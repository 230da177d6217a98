// The stage a process acts on under `sst shell`: the `Migrator` link (stacks/migrator.ts) carries
// the stage, the region sst.config.ts pins for it and its topic. `sst shell` sets AWS_REGION to the
// pinned region, but a variable already in the operator's environment wins, and so would a
// profile's region: whatever the SDK resolves must be the stage's region, or the CLI refuses.
import { Resource } from "sst/resource";

/** What the `Migrator` link carries. */
export interface MigratorLink {
  stage: string;
  region: string;
  topicArn: string;
}

/** The `Migrator` link, when the process runs under `sst shell`. */
export function migratorLink(): MigratorLink | undefined {
  if (!("Migrator" in Resource)) return undefined;
  const link = (Resource as unknown as Record<string, Partial<MigratorLink>>).Migrator;
  return typeof link?.region === "string" && typeof link.stage === "string" && typeof link.topicArn === "string"
    ? (link as MigratorLink)
    : undefined;
}

/** Why acting in `region` would be wrong for the linked stage; undefined when it is right (or no stage is linked). */
export function regionProblem(
  region: string | undefined,
  link: MigratorLink | undefined = migratorLink(),
): string | undefined {
  if (!link || region === link.region) return undefined;
  const source = process.env.AWS_REGION ? `AWS_REGION=${process.env.AWS_REGION}` : "the AWS profile's region";
  return (
    `stage ${link.stage} is deployed in ${link.region}, ` +
    `but the AWS SDK would act in ${region ?? "no region"} (${source}); ` +
    `nothing was done: unset AWS_REGION or set it to ${link.region}, then run the command again`
  );
}
