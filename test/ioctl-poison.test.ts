// UFFDIO_POISON. A thread that touches a poisoned page gets SIGBUS, which
// kills its process: those cases run in a child process (fixtures/
// poison-fault.js) that must die of SIGBUS. The outcomes that involve no
// access to the poisoned page run here.
import { describe, expect } from 'vitest';
import { jsonLines, runFixture } from './helpers/child';
import { withHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds, pageSizeOf, pattern } from './helpers/memory';

describe('UFFDIO_POISON', () => {
  itOnKinds(ALL_KINDS, 'poisoning the page a thread faulted on kills it with SIGBUS (child process)', async (kind) => {
    const child = await runFixture('poison-fault.js', [kind, 'fault']);
    const steps = jsonLines(child.stdout);
    const context = `stdout:\n${child.stdout}\nstderr:\n${child.stderr}`;
    expect(child.timedOut, context).toBe(false);
    expect(steps.find((s) => s.step === 'error'), context).toBeUndefined();
    expect(steps.find((s) => s.step === 'survived'), context).toBeUndefined();
    expect(steps.find((s) => s.step === 'registered')).toEqual({ step: 'registered', poison: true });
    expect(steps.find((s) => s.step === 'neighbour')).toEqual({ step: 'neighbour', values: [0x5a5a5a5a] });
    const fault = steps.find((s) => s.step === 'fault');
    expect(fault).toMatchObject({ offset: 0 });
    expect(fault?.threadId).toBeGreaterThan(0);
    expect(steps.find((s) => s.step === 'poisoned')).toEqual({ step: 'poisoned', result: { bytes: pageSizeOf(kind), status: 'complete' } });
    expect(child.signal, context).toBe('SIGBUS');
  });

  itOnKinds(ALL_KINDS, 'a page poisoned before any access gives SIGBUS on the first touch (child process)', async (kind) => {
    const child = await runFixture('poison-fault.js', [kind, 'later']);
    const steps = jsonLines(child.stdout);
    const context = `stdout:\n${child.stdout}\nstderr:\n${child.stderr}`;
    expect(child.timedOut, context).toBe(false);
    expect(steps.find((s) => s.step === 'survived'), context).toBeUndefined();
    expect(steps.find((s) => s.step === 'poisoned')).toEqual({
      step: 'poisoned',
      result: { bytes: pageSizeOf(kind), status: 'complete' },
      again: { bytes: 0, status: 'EEXIST' },
    });
    expect(child.signal, context).toBe('SIGBUS');
  });

  // Below, nothing ever touches a poisoned page: the test runner would die.
  itOnKinds(ALL_KINDS, 'poisoning a poisoned or populated page is EEXIST', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      expect(h.uffd.register(r.mapping, ['missing']).has('POISON')).toBe(true);
      expect(h.uffd.poison(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect(h.uffd.poison(r.page(0), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      h.uffd.copy(r.page(1), pattern(r.pageSize, 0x90150));
      expect(h.uffd.poison(r.page(1), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      // The populated page was left alone.
      expect(r.read(1).equals(pattern(r.pageSize, 0x90150))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'a POISON of two pages whose second exists: EAGAIN with bytes = one page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      h.uffd.register(r.mapping, ['missing']);
      h.uffd.copy(r.page(1), pattern(r.pageSize, 0x90151));
      expect(h.uffd.poison(r.page(0), r.length)).toEqual({ bytes: r.pageSize, status: 'EAGAIN' });
      expect(h.uffd.poison(r.page(0), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(r.read(1).equals(pattern(r.pageSize, 0x90151))).toBe(true);
    }),
  );
});
