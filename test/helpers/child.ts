// Runs a fixture script in a child Node process, for what may kill or hang
// the process that does it (a SIGBUS from a poisoned page, a fault nobody
// resolves). The child is killed by its pid when it outlives the timeout.
// Fixtures are plain CommonJS and load the compiled package from dist/
// (Node 20 cannot run TypeScript): build it with `npx tsc -p .` first.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child was killed for outliving the timeout. */
  timedOut: boolean;
}

export function runFixture(name: string, args: readonly string[] = [], timeoutMs = 15_000): Promise<ChildResult> {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
    return Promise.reject(new Error('dist/ is missing: run `npx tsc -p .` before the child-process tests'));
  }
  return new Promise((resolvePromise, reject) => {
    // Through sh only to turn core dumps off (a fixture may die of SIGBUS on
    // purpose, and core_pattern may be a file in the cwd); exec keeps the
    // pid, so the signal reported is node's.
    const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, join(FIXTURES, name), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** The JSON lines a fixture printed, in order. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
