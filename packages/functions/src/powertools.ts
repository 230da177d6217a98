// The Powertools logger and metrics of one function. The stacks set POWERTOOLS_SERVICE_NAME and
// POWERTOOLS_METRICS_NAMESPACE; the defaults are the same names, so a test or a local run logs alike.
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";

export const METRICS_NAMESPACE = "SiteLogixMigrator";

/** A function's logger and metrics, each unless the caller (a test) gives its own. */
export function powertools(
  defaultServiceName: string,
  given: { logger?: Logger | undefined; metrics?: Metrics | undefined } = {},
): { logger: Logger; metrics: Metrics } {
  const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? defaultServiceName;
  return {
    logger: given.logger ?? new Logger({ serviceName }),
    metrics:
      given.metrics ??
      new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE }),
  };
}
