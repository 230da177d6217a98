// Runs the sitelogix-migrate command as an operator would, against the run's DynamoDB Local.
export interface CliRun {
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const CLI = new URL("../../cli/bin/sitelogix-migrate.js", import.meta.url).pathname;

/** A running `sitelogix-migrate`: signal or kill `child`; `done` resolves when it exits. */
export interface StartedCli {
  child: import("node:child_process").ChildProcess;
  done: Promise<CliRun>;
  /** stderr so far. */
  stderr(): string;
}

/** Starts `sitelogix-migrate` against the run's DynamoDB Local without waiting for it. */
export async function startCli(
  args: string[],
  env: Record<string, string> = {},
  options: { timeoutMs?: number } = {},
): Promise<StartedCli> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, stderr: () => stderr };
}

/** Runs `sitelogix-migrate` as an operator would, against the run's DynamoDB Local. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { timeoutMs?: number } = {},
): Promise<CliRun> {
  return (await startCli(args, env, options)).done;
}
