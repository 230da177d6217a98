// Digest writer Lambda: on the stage's schedule (stacks/digests.ts), or invoked on demand, seals one
// signed digest of the audit chain heads changed since the previous digest
// (packages/core/src/audit/seal.ts) with the KMS key and into the bucket the environment names
// (SITELOGIX_AUDIT_KMS_KEY_ID, SITELOGIX_AUDIT_DIGEST_BUCKET). It logs what it sealed — counts, names
// and the time range, never a head's keys or an entry's values — and emits AuditDigestsSealed, whose
// absence for two periods raises the missing-digest alarm.
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
// Narrow entry points, not the core barrel: the bundle carries only what the function uses.
import { sealAuditDigest, signerFromEnvironment, storeFromEnvironment, type SealDeps } from "@sitelogix/core/audit";
import { createClients } from "@sitelogix/core/clients";
import { errorName } from "@sitelogix/core/errors";
import { resolveTableNames } from "@sitelogix/core/names";
import { powertools } from "./powertools.js";

export const DIGESTS_SEALED_METRIC = "AuditDigestsSealed";

export interface DigestWriterDeps {
  /** What sealing needs; by default the linked audit table and the signer and store of the environment. */
  seal?: () => Promise<SealDeps>;
  logger?: Logger;
  metrics?: Metrics;
}

/** The audit table Lambda resolves (its link), the signer and store the environment selects. */
export async function defaultSealDeps(): Promise<SealDeps> {
  const auditTableName = resolveTableNames().audit;
  return {
    doc: createClients().doc,
    auditTableName,
    signer: await signerFromEnvironment({ auditTableName }),
    store: storeFromEnvironment({ auditTableName }),
  };
}

/** What an invocation returns (and what `aws lambda invoke` prints). */
export interface DigestWriterResult {
  digest: string;
  sequence: number;
  heads: number;
  parts: number;
  range: { from: string | null; to: string };
  location: string;
}

export function createDigestWriterHandler(deps: DigestWriterDeps = {}) {
  const { logger, metrics } = powertools("sitelogix-digest-writer", deps);
  // Resolved on first use, so that a configuration error fails the invocation (and raises the alarms),
  // not the module load. The clients are reused by later invocations of this environment.
  let sealDeps: Promise<SealDeps> | undefined;

  return async (_event?: unknown): Promise<DigestWriterResult> => {
    try {
      sealDeps ??= (deps.seal ?? defaultSealDeps)();
      const sealed = await sealAuditDigest(await sealDeps);
      metrics.addMetric(DIGESTS_SEALED_METRIC, MetricUnit.Count, 1);
      metrics.addMetric("AuditHeadsSealed", MetricUnit.Count, sealed.heads);
      logger.info("audit digest sealed", {
        digest: sealed.digest,
        sequence: sealed.sequence,
        heads: sealed.heads,
        parts: sealed.parts,
        range: sealed.range,
        previous: sealed.previous,
        location: sealed.location,
      });
      const { digest, sequence, heads, parts, range, location } = sealed;
      return { digest, sequence, heads, parts, range, location };
    } catch (err) {
      // A failure that came from resolving the dependencies is retried from scratch next time.
      sealDeps = undefined;
      logger.error("audit digest not sealed; EventBridge retries, the alarms fire", {
        error: { name: errorName(err), message: (err as Error).message },
      });
      throw err;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

export const handler = createDigestWriterHandler();
