// Checks what `npm start`, `npm test` and `npm run bench` need before they start: Node.js 20+ and
// Java 17+ (DynamoDB Local). Plain JavaScript for the Node check, so it runs on any Node.
const MIN_NODE = 20;
const major = Number(process.versions.node.split(".")[0]);
if (major < MIN_NODE) {
  console.error(`Node.js ${MIN_NODE}+ is required; this is ${process.version}. Install Node.js ${MIN_NODE} or newer.`);
  process.exit(1);
}
const { register } = await import("tsx/esm/api");
register();
const { assertJava } = await import("../packages/testkit/src/java.ts");
try {
  assertJava();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
