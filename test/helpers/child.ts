// Runs a script in a separate Node process, so that a test of something that
// could hang (a thread blocked in a fault nobody resolves) or crash (SIGSEGV,
// SIGBUS, std::terminate) can only take that process down. A vitest timeout
// cannot interrupt a thread blocked in the kernel; a SIGKILL by pid can.
//
// Scripts are files in test/fixtures/ (CommonJS .js or ESM .mjs) or inline
// code; they load the built package from dist/ (Node 20 cannot run
// TypeScript), so build it first (`npx tsc -p .`; `npm install` does).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect } from 'vitest';

export const root = resolve(__dirname, '..', '..');
export const fixtures = join(root, 'test', 'fixtures');
export const DIST = join(root, 'dist');

export interface ChildResult {
  /** Exit code, or null if a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The child did not finish by itself: it was killed with SIGKILL after the timeout. */
  readonly timedOut: boolean;
}
export type ChildOutcome = ChildResult;

export interface ChildOptions {
  /** Arguments after the script. */
  args?: readonly string[];
  /** Milliseconds before the child is killed and reported as timed out (default 20 s). */
  timeoutMs?: number;
  /** Node options before the script, e.g. ['--no-warnings']. */
  nodeArgs?: readonly string[];
}

export type Script =
  | { readonly fixture: string }
  | { readonly code: string; readonly module?: 'commonjs' | 'module' };

/** Throws if dist/ is missing or older than lib/: the child would test stale code. */
function checkDist(): void {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const src of walk(join(root, 'lib')).filter((f) => f.endsWith('.ts'))) {
    const out = join(DIST, relative(join(root, 'lib'), src)).replace(/\.ts$/, '.js');
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
      throw new Error(`${relative(root, out)} is missing or older than ${relative(root, src)}: run \`npx tsc -p .\` first`);
    }
  }
}

function argvFor(script: Script): string[] {
  if ('fixture' in script) {
    const file = join(fixtures, script.fixture);
    if (!existsSync(file)) throw new Error(`no fixture ${file}`);
    return [file];
  }
  return ['--input-type', script.module ?? 'commonjs', '-e', script.code];
}

/**
 * Runs `script` in `process.execPath` with cwd at the package root, collects
 * its output, and kills it by pid with SIGKILL after the timeout.
 */
export function runChild(script: Script, options: ChildOptions = {}): Promise<ChildResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    checkDist();
  } catch (err) {
    return Promise.reject(err);
  }
  // NODE_OPTIONS from the test runner (loaders, inspector) has no business in
  // the child.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  // Through sh only to turn core dumps off (a child may die of a signal on
  // purpose, and core_pattern may be a file in the cwd); exec keeps the pid,
  // so the signal reported is node's.
  const argv = [...(options.nodeArgs ?? []), ...argvFor(script), ...(options.args ?? [])];
  const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, ...argv], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // It ended between the timeout and the kill.
      }
    }
  }, timeoutMs);
  return new Promise((resolvePromise, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs inline CommonJS in which `lib` and `testing` are the library's two entry points. */
export function runScript(source: string, timeoutMs = 20_000): Promise<ChildResult> {
  const prelude =
    `const lib = require(${JSON.stringify(join(DIST, 'index.js'))});\n` +
    `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});\n`;
  return runChild({ code: prelude + source }, { timeoutMs });
}

/** Runs test/fixtures/<name> with `args`. */
export function runFixture(name: string, args: readonly string[] = [], timeoutMs = 15_000): Promise<ChildResult> {
  return runChild({ fixture: name }, { args, timeoutMs });
}

/** The child's output, for assertion messages. */
export function describeChild(r: ChildResult): string {
  const how = r.timedOut ? 'timed out (killed)' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return `child ${how}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The JSON a script printed on a line starting with `RESULT `. */
export function resultOf<T>(r: ChildResult): T {
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`the child printed no RESULT line: ${describeChild(r)}`);
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

/** Lines of stdout (or of a child's stdout) that are JSON objects. */
export function jsonLines(out: string | ChildResult): Record<string, unknown>[] {
  const stdout = typeof out === 'string' ? out : out.stdout;
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What an abort looks like: SIGABRT, or the C++ runtime's message on its way there. */
export function looksLikeAbort(r: ChildResult): boolean {
  return r.signal === 'SIGABRT' || /terminate called|Assertion failed|FATAL ERROR|Aborted/.test(r.stderr);
}

/** Asserts the child ended by itself with exit code 0: not killed on timeout, no abort, no signal. */
export function expectCleanExit(r: ChildResult): void {
  expect(r.timedOut, describeChild(r)).toBe(false);
  expect(looksLikeAbort(r), describeChild(r)).toBe(false);
  expect([r.code, r.signal], describeChild(r)).toEqual([0, null]);
}
