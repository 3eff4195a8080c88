// Builds and runs native test programs (test/fixtures/*.c) as child
// processes, killed by pid with SIGKILL after a timeout: a program whose
// page faults nobody serves blocks in the kernel and would never end.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, type ChildResult } from './child';

export interface Built {
  /** The executable, or undefined with the reason it could not be built. */
  path?: string;
  skipReason?: string;
}

/**
 * Compiles test/fixtures/<name>.c with gcc into a fresh temp dir. No gcc:
 * a skip reason; gcc present but the build fails: an error (a bug).
 */
export function buildFixtureProgram(name: string): Built {
  const probe = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (probe.error) return { skipReason: `gcc is not installed (${(probe.error as NodeJS.ErrnoException).code}); it builds test/fixtures/${name}.c` };
  const out = join(mkdtempSync(join(tmpdir(), `uffd-${name}-`)), name);
  const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-pthread', '-o', out, join(fixtures, `${name}.c`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed to build test/fixtures/${name}.c:\n${r.stderr}`);
  return { path: out };
}

export interface RunningProgram {
  readonly pid: number;
  readonly done: Promise<ChildResult>;
}

/**
 * Starts `file` with `args`; `done` settles when it ends, or after SIGKILL at
 * the timeout (timedOut). `onStdout` sees the output as it comes.
 */
export function startProgram(file: string, args: readonly string[], timeoutMs = 30_000, onStdout?: (all: string) => void): RunningProgram {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the test runner's loaders have no business in a child
  const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    onStdout?.(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // Already ended.
    }
  }, timeoutMs);
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return { pid: child.pid!, done };
}
