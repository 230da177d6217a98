// Prerequisites of the local engine: DynamoDB Local is a Java program (17+).
import { spawnSync } from "node:child_process";

export const MIN_JAVA = 17;

/** The installed Java's major version, or undefined when `java` is not on PATH. */
export function javaMajorVersion(): number | undefined {
  const out = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (out.error || out.status !== 0) return undefined;
  // `java -version` prints e.g. `openjdk version "17.0.15"` or `java version "1.8.0_402"` on stderr.
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${out.stderr}${out.stdout}`);
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major;
}

/** Throws with an actionable message unless Java 17+ is installed. */
export function assertJava(): void {
  const major = javaMajorVersion();
  if (major === undefined) {
    throw new Error(
      `Java ${MIN_JAVA}+ is required to run DynamoDB Local, but \`java\` was not found on PATH.\n` +
        "Install it (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; " +
        "macOS: `brew install openjdk@17`) and try again.",
    );
  }
  if (major < MIN_JAVA) {
    throw new Error(
      `Java ${MIN_JAVA}+ is required to run DynamoDB Local, but \`java\` is version ${major}. ` +
        `Install Java ${MIN_JAVA} or newer.`,
    );
  }
}
