// runStress in a separate Node process (test/helpers/child.ts): a broken
// handler leaves threads blocked in faults, and that must fail the test, not
// hang the runner.
import type { StressOptions, StressResult } from '../../lib/testing';
import { DIST, runScript } from './child';

export { DIST };

export interface StressChildOutcome<R = unknown> {
  /** The JSON the child printed on a line starting with `RESULT `. */
  result?: R;
  error?: { name: string; message: string; code?: string };
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stderr: string;
}

/** Runs `source` (CommonJS; `testing` is dist/testing) in a child, killed by pid after `timeoutMs`. */
export async function runNodeChild(source: string, timeoutMs = 60_000): Promise<StressChildOutcome> {
  const r = await runScript(source, timeoutMs);
  const line = (prefix: string) => r.stdout.split('\n').find((l) => l.startsWith(prefix))?.slice(prefix.length);
  const result = line('RESULT ');
  const error = line('ERROR ');
  return {
    result: result === undefined ? undefined : JSON.parse(result),
    error: error === undefined ? undefined : JSON.parse(error),
    code: r.code,
    signal: r.signal,
    timedOut: r.timedOut,
    stderr: r.stderr,
  };
}

/** runStress(options) in a child process; its result or error. */
export function runStressChild(options: Omit<StressOptions, 'onBounce'>, timeoutMs = 60_000): Promise<StressChildOutcome<StressResult>> {
  return runNodeChild(
    `testing.runStress(${JSON.stringify(options)}).then(
  (r) => console.log('RESULT ' + JSON.stringify(r)),
  (e) => { console.log('ERROR ' + JSON.stringify({ name: e.name, message: e.message, code: e.code })); process.exitCode = 1; },
);`,
    timeoutMs,
  ) as Promise<StressChildOutcome<StressResult>>;
}
