// The main JavaScript thread touches registered, unresolved memory through a
// view. It is blocked in the kernel and cannot run a handler, so the fault
// reader resolves the fault by the jsThreadFaults policy. In a child process:
// without that, the child would hang for ever.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runChild } from './helpers/child';

function freeHugePages2M(): number {
  try {
    return Number(readFileSync('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', 'utf8'));
  } catch {
    return 0;
  }
}

describe('a fault raised by the JavaScript thread on its own userfaultfd', () => {
  it("policy 'zero' (the default): no hang, the pages read as zeros, the event says resolvedByReader", async () => {
    const r = await runChild({ fixture: 'js-thread-fault.js' }, { args: ['zero'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      { step: 'before-read', policy: 'zero' },
      // Three reads on three different pages: three faults resolved natively.
      { step: 'read', bytes: [0, 0, 0], resolved: 3 },
      { step: 'event', type: 'pagefault', resolvedByReader: true, warnings: ['UFFD_JS_THREAD_FAULT'] },
    ]);
  });

  it("policy 'poison': the thread gets SIGBUS at its first read (the policy is real)", async () => {
    const r = await runChild({ fixture: 'js-thread-fault.js' }, { args: ['poison'] });
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect([r.code, r.signal], describeChild(r)).toEqual([null, 'SIGBUS']);
    // Nothing after the first read ran.
    expect(jsonLines(r)).toEqual([{ step: 'before-read', policy: 'poison' }]);
  });
});

describe("every kind of fault by the JS thread is resolved by the 'zero' policy (no hang)", () => {
  const cases = [
    { kind: 'shmem-missing', read: 0, why: 'a missing shmem page: zero page' },
    { kind: 'shmem-minor', read: 9, why: 'a minor fault on a shmem alias: CONTINUE maps the page cache' },
    { kind: 'anon-wp', read: 5, why: 'a write to write-protected memory: protection cleared' },
  ];
  it.each(cases)('$why', async ({ kind, read }) => {
    const r = await runChild({ fixture: 'js-thread-fault-kinds.js' }, { args: [kind] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([{ kind, read, written: 7, resolved: 1 }]);
  });

  it.skipIf(freeHugePages2M() < 1)(
    'a missing 2M hugetlb page: a zero-filled huge page (skipped when no 2M huge page is free: run scripts/reserve-hugepages.mjs)',
    async () => {
      const r = await runChild({ fixture: 'js-thread-fault-kinds.js' }, { args: ['huge-missing'] });
      expectCleanExit(r);
      expect(jsonLines(r)).toEqual([{ kind: 'huge-missing', read: 0, written: 7, resolved: 1 }]);
    },
  );
});
