// Placeholder until the audit-logger handler lands: fails every invocation so that records are
// retried and never silently dropped.
export const handler = async (): Promise<never> => {
  throw new Error("audit-logger handler not implemented yet");
};
