// Every fd the library opens is closed, and every reader thread joined: the
// /proc/self/fd and /proc/self/task counts return to where they were, even
// when a userfaultfd is closed with fork events pending (each carries an fd),
// a fault pending or an iterator waiting. In a child process: the fork events
// come from real fork()s, and the counts must not see vitest's own fds.
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runChild } from './helpers/child';

interface Phase {
  phase: string;
  before: { fds: number; threads: number };
  after: { fds: number; threads: number };
  [extra: string]: unknown;
}

describe('fd and thread leaks', () => {
  it('open/close cycles and closes in awkward states leave the counts unchanged', async () => {
    const r = await runChild({ fixture: 'fd-leaks.js' }, { timeoutMs: 60_000 });
    expectCleanExit(r);
    const phases = jsonLines(r) as unknown as Phase[];
    expect(phases.map((p) => p.phase)).toEqual([
      'uffd x1000',
      'memfd x1000',
      'close with fork events queued natively',
      'close with fork events buffered in an iterator',
      'close with a fault pending',
      'close while an iterator waits',
    ]);
    for (const p of phases) expect(p.after, p.phase).toEqual(p.before);
    const byName = new Map(phases.map((p) => [p.phase, p]));
    // Three fork events were really queued: three more fds while they were.
    expect(byName.get('close with fork events queued natively')?.during).toBeGreaterThanOrEqual(
      (byName.get('close with fork events queued natively')?.before.fds ?? 0) + 1 + 3,
    );
    expect(byName.get('close with fork events buffered in an iterator')?.first).toBe('fork');
    // Closing woke the faulting thread; the unregistered range reads zeros.
    expect(byName.get('close with a fault pending')?.values).toEqual([0, 0]);
    expect(byName.get('close while an iterator waits')).toMatchObject({ done: true, afterClose: 'EBADF' });
  });
});
