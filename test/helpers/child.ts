// Runs a script in a separate Node process, so that a test of something that
// could hang (a thread blocked in a fault nobody resolves) or crash (SIGSEGV,
// SIGBUS, std::terminate) can only take that process down. A vitest timeout
// cannot interrupt a thread blocked in the kernel; a SIGKILL by pid can.
//
// Scripts are files in test/fixtures/ (CommonJS .js or ESM .mjs) that load
// the built package from dist/ (run `npx tsc -p .` first), or inline code.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(__dirname, '..', '..');
export const fixtures = join(root, 'test', 'fixtures');

export interface ChildResult {
  /** Exit code, or null if a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The child did not finish by itself: it was killed with SIGKILL after the timeout. */
  readonly timedOut: boolean;
}

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
  if (!existsSync(join(root, 'dist', 'index.js'))) {
    return Promise.reject(new Error('dist/ is missing: run `npx tsc -p .` before these tests'));
  }
  // NODE_OPTIONS from the test runner (loaders, inspector) has no business in
  // the child.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...argvFor(script), ...(options.args ?? [])], {
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

/** The child's output, for assertion messages. */
export function describeChild(r: ChildResult): string {
  const how = r.timedOut ? 'timed out (killed)' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return `child ${how}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Lines of stdout that are JSON objects (fixtures report with console.log(JSON.stringify(...))). */
export function jsonLines(r: ChildResult): Record<string, unknown>[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What an abort looks like: SIGABRT, or the C++ runtime's message on its way there. */
export function looksLikeAbort(r: ChildResult): boolean {
  return r.signal === 'SIGABRT' || /terminate called|Assertion failed|FATAL ERROR|Aborted/.test(r.stderr);
}
