// Runs Node code in a separate process, killed by pid on a timeout: a test
// whose failure mode is a thread blocked in a fault, or a signal such as the
// SIGBUS of a poisoned page, cannot hang or kill the runner that way. Child
// code loads the compiled library from dist/ (Node 20 cannot run
// TypeScript), so build it first (`npx tsc -p .`; `npm install` does).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child was killed for outliving the timeout. */
  timedOut: boolean;
}

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

function runNode(nodeArgs: readonly string[], timeoutMs: number): Promise<ChildOutcome> {
  try {
    checkDist();
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolvePromise, reject) => {
    // Through sh only to turn core dumps off (a child may die of a signal on
    // purpose, and core_pattern may be a file in the cwd); exec keeps the
    // pid, so the signal reported is node's.
    const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, ...nodeArgs], {
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

/**
 * Runs `source` (CommonJS; `lib` and `testing` are the library's two entry
 * points) with `node -e`.
 */
export function runScript(source: string, timeoutMs = 20_000): Promise<ChildOutcome> {
  const prelude =
    `const lib = require(${JSON.stringify(join(DIST, 'index.js'))});\n` +
    `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});\n`;
  return runNode(['-e', prelude + source], timeoutMs);
}

/** Runs test/fixtures/<name> with `args`. */
export function runFixture(name: string, args: readonly string[] = [], timeoutMs = 15_000): Promise<ChildOutcome> {
  return runNode([join(FIXTURES, name), ...args], timeoutMs);
}

/** The JSON a script printed on a line starting with `RESULT `. */
export function resultOf<T>(outcome: ChildOutcome): T {
  const line = outcome.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `the child printed no RESULT line (code ${outcome.code}, signal ${outcome.signal}, timed out: ${outcome.timedOut})\n` +
        `stdout: ${outcome.stdout}\nstderr: ${outcome.stderr}`,
    );
  }
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

/** The JSON lines a fixture printed, in order. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
