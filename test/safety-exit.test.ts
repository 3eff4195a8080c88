// The process ends while a native thread is blocked on an unresolved page.
// The library closes every userfaultfd on 'exit', which wakes the thread; the
// reader and an idle userfaultfd hold nothing open. Each case runs in a child
// process that is killed if it does not end by itself.
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runChild } from './helpers/child';

const pending = { step: 'fault-pending', type: 'pagefault', address: true };

describe('process exit with a fault pending', () => {
  it('process.exit(0): exits 0', async () => {
    const r = await runChild({ fixture: 'exit-pending-fault.js' }, { args: ['exit'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([pending, { step: 'exit-event', code: 0, closed: true }]);
  });

  it('process.exit(0) while an events() iterator waits: exits 0, every uffd closed', async () => {
    const r = await runChild({ fixture: 'exit-pending-fault.js' }, { args: ['exit-iterating'] });
    expectCleanExit(r);
    expect(r.stderr).not.toContain('EBADF');
    expect(jsonLines(r)).toEqual([pending, { step: 'exit-event', code: 0, closed: true }]);
  });

  it('the event loop runs out of work: exits 0 (nothing holds it open)', async () => {
    const r = await runChild({ fixture: 'exit-pending-fault.js' }, { args: ['natural'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([pending, { step: 'exit-event', code: 0, closed: true }]);
  });

  it('an uncaught exception: exits 1 with the error on stderr', async () => {
    const r = await runChild({ fixture: 'exit-pending-fault.js' }, { args: ['throw'] });
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect([r.code, r.signal], describeChild(r)).toEqual([1, null]);
    expect(r.stderr).toContain('boom: uncaught with a fault pending');
    expect(jsonLines(r)).toEqual([pending, { step: 'exit-event', code: 1, closed: true }]);
  });

  it('the woken thread is still reading the mapping while the environment ends: no SIGSEGV', async () => {
    // 4 GiB of 4K zero pages take the woken thread a while; the environment
    // unmaps its mappings at teardown, and must wait for the thread.
    const r = await runChild({ fixture: 'exit-pending-fault.js' }, { args: ['large'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([pending, { step: 'exit-event', code: 0, closed: true }]);
  });
});
