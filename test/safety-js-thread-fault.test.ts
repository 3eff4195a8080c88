// The main JavaScript thread touches registered, unresolved memory through a
// view. It is blocked in the kernel and cannot run a handler, so the fault
// reader resolves the fault by the jsThreadFaults policy. In a child process:
// without that, the child would hang for ever.
import { describe, expect, it } from 'vitest';
import { describeChild, jsonLines, runChild } from './helpers/child';

describe('a fault raised by the JavaScript thread on its own userfaultfd', () => {
  it("policy 'zero' (the default): no hang, the pages read as zeros, the event says resolvedByReader", async () => {
    const r = await runChild({ fixture: 'js-thread-fault.js' }, { args: ['zero'] });
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect([r.code, r.signal], describeChild(r)).toEqual([0, null]);
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
