// Runs a script in a separate Node process, killed by pid on a timeout: a
// test whose failure mode is a thread blocked in a fault (the JS thread,
// or a whole process) cannot hang the runner that way. The script loads the
// compiled library from dist/ (CommonJS), so build it first (`npx tsc -p .`).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
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

/**
 * Runs `source` (CommonJS; `lib` and `testing` are the library's two entry
 * points) with `node -e`, and kills the process by pid after `timeoutMs`.
 */
export function runScript(source: string, timeoutMs = 20_000): Promise<ChildOutcome> {
  checkDist();
  const prelude =
    `const lib = require(${JSON.stringify(join(DIST, 'index.js'))});\n` +
    `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});\n`;
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
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
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
