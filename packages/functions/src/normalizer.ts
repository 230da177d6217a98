// Placeholder until the normalizer handler lands: fails every invocation so that records are
// retried and never silently dropped.
export const handler = async (): Promise<never> => {
  throw new Error("normalizer handler not implemented yet");
};
