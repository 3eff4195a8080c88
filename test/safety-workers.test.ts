// Workers that own userfaultfds, ended in the ways that can abort a process
// (a live reader thread or TSFN at teardown, a C++ exception escaping during
// teardown) or leave things behind (an fd nobody closes, a thread blocked for
// ever). The main process must exit 0 by itself, with no abort.
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runChild, type ChildResult } from './helpers/child';

function settled(r: ChildResult): { before: unknown; after: unknown } {
  const line = jsonLines(r).find((l) => l.step === 'settled');
  expect(line, describeChild(r)).toBeDefined();
  return line as { before: unknown; after: unknown };
}

describe('Workers with userfaultfds', () => {
  it('worker.terminate() while a native thread is blocked on its fault: its uffd is closed, the thread woken', async () => {
    const r = await runChild({ fixture: 'worker-lifecycle.js' }, { args: ['terminate'] });
    expectCleanExit(r);
    const steps = jsonLines(r).map((l) => l.step);
    expect(steps).toEqual(['start', 'from-worker', 'worker-exit', 'terminated', 'settled']);
    expect(jsonLines(r)[1]).toEqual({ step: 'from-worker', message: { kind: 'fault-pending', type: 'pagefault' } });
    // Terminated Workers exit with code 1.
    expect(jsonLines(r)[3]).toEqual({ step: 'terminated', code: 1 });
    // No fd left open (the Worker's uffd) and no thread left (the toucher).
    const { before, after } = settled(r);
    expect(after).toEqual(before);
  });

  it('a Worker that finishes normally with readers running (one uffd with a waiting iterator, unref’d)', async () => {
    const r = await runChild({ fixture: 'worker-lifecycle.js' }, { args: ['finish'] });
    expectCleanExit(r);
    expect(jsonLines(r).slice(0, 3)).toEqual([
      { step: 'start', how: 'finish' },
      { step: 'from-worker', message: { kind: 'finishing', closed: [false, false] } },
      { step: 'worker-exit', code: 0 },
    ]);
    const { before, after } = settled(r);
    expect(after).toEqual(before);
  });

  it('a Worker whose own JS thread faults on its own uffd: its reader resolves it with zeros', async () => {
    const r = await runChild({ fixture: 'worker-lifecycle.js' }, { args: ['js-fault'] });
    expectCleanExit(r);
    expect(jsonLines(r).slice(0, 3)).toEqual([
      { step: 'start', how: 'js-fault' },
      { step: 'from-worker', message: { kind: 'read', bytes: [0, 0], resolved: 2 } },
      { step: 'worker-exit', code: 0 },
    ]);
    const { before, after } = settled(r);
    expect(after).toEqual(before);
  });
});
