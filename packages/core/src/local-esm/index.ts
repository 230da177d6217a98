// The local event-source mapping: Lambda's stream polling reproduced for tests, local mode and
// `sitelogix-migrate stream`. Its own entry point (`@sitelogix/core/local-esm`), outside the core
// barrel, so that no Lambda bundle carries it (test/bundle.test.ts checks).
export { loadHandler } from "./invoker.js";
export type {
  LambdaStreamHandler,
  RunnerEvent,
  StreamRunnerOptions,
  SubscriberName,
  SubscriberStats,
} from "./options.js";
export { readStream, toLambdaRecord } from "./records.js";
export { StreamRunner } from "./runner.js";
