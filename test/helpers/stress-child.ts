// Runs the built library (dist/) in a separate Node process, killed by pid
// on a timeout: a broken handler leaves threads blocked in faults, and that
// must fail the test, not hang the runner.
// (test/helpers/child.ts on main does the same for any script.)
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { StressOptions, StressResult } from '../../lib/testing';

const ROOT = resolve(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

/** Throws if dist/ is missing or older than lib/: the child would test stale code. */
function checkDist(): void {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const src of walk(join(ROOT, 'lib')).filter((f) => f.endsWith('.ts'))) {
    const out = join(DIST, relative(join(ROOT, 'lib'), src)).replace(/\.ts$/, '.js');
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
      throw new Error(`${relative(ROOT, out)} is missing or older than ${relative(ROOT, src)}: run \`npx tsc -p .\` first`);
    }
  }
}

export interface StressChildOutcome<R = unknown> {
  /** The JSON the child printed on a line starting with `RESULT `. */
  result?: R;
  error?: { name: string; message: string; code?: string };
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stderr: string;
}

/** Runs `source` (CommonJS; `testing` is dist/testing) with `node -e`, killed by pid after `timeoutMs`. */
export function runNodeChild(source: string, timeoutMs = 60_000): Promise<StressChildOutcome> {
  checkDist();
  const prelude = `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});\n`;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', prelude + source], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      const line = (prefix: string) => stdout.split('\n').find((l) => l.startsWith(prefix))?.slice(prefix.length);
      const result = line('RESULT ');
      const error = line('ERROR ');
      resolvePromise({
        result: result === undefined ? undefined : JSON.parse(result),
        error: error === undefined ? undefined : JSON.parse(error),
        code,
        signal,
        timedOut,
        stderr,
      });
    });
  });
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
