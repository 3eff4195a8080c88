// munmap with live ArrayBuffer views in several environments. A view that
// outlived its memory would be SIGSEGV on access; views are detached in every
// environment first, and the memory is released after the last one. Each
// case runs in a child process (a crash there fails the test, not vitest).
import { describe, expect, it } from 'vitest';
import { describeChild, expectCleanExit, jsonLines, runChild, type ChildResult } from './helpers/child';

const attached = { step: 'attached', worker: [42, 43, 16384, 4096], mapped: true };

describe('unmap() with views in the main thread and in a Worker', () => {
  it('detaches every view in both environments and releases the memory after the Worker’s', async () => {
    const r = await runChild({ fixture: 'unmap-views.js' }, { args: ['unmap'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      attached,
      {
        step: 'unmapped-main',
        // The Worker (blocked in Atomics.wait) still holds views: not released yet.
        releasedNow: false,
        mainByteLength: 0,
        bufferByteLength: 0,
        access: { value: 'undefined' },
        dataViewError: 'TypeError',
        bufferError: 'EBADF',
        mappedWhileWorkerHolds: true,
      },
      {
        step: 'checked',
        wholeByteLength: 0,
        secondLength: 0,
        access: { value: 'undefined' },
        attachError: 'EBADF',
        // Checked by main after the Worker reported its views detached.
        mappedAfterWorker: false,
      },
      { step: 'worker-exit', code: 0 },
    ]);
  });

  it('a Worker that exits holding views, then main unmaps: released at once', async () => {
    const r = await runChild({ fixture: 'unmap-views.js' }, { args: ['worker-gone'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      attached,
      { step: 'worker-exit', code: 0 },
      { step: 'unmapped-after-worker', releasedNow: true, mainByteLength: 0, mapped: false },
    ]);
  });

  it('remap() while a Worker holds views fails with EBUSY and leaves main’s view intact', async () => {
    const r = await runChild({ fixture: 'unmap-views.js' }, { args: ['remap'] });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      attached,
      { step: 'remap', error: 'EBUSY', errno: -16, syscall: 'mremap', mainByteLength: 16384, value: 43 },
      { step: 'worker-exit', code: 0 },
      { step: 'remap-after-worker', grown: 32768, mainByteLength: 0, mapped: true },
    ]);
  });

  it('a Worker that created the mapping ends while main holds views: main’s views are detached, then it is unmapped', async () => {
    const r = await runChild({ fixture: 'creator-exits.js' });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      { step: 'attached', value: 7, byteLength: 8192 },
      { step: 'detached', code: 0, byteLength: 0, value: 'undefined', viewError: 'EBADF', unmapped: true, mapped: false },
    ]);
  });
});

describe('a Mapping object in one environment when another remaps or unmaps the memory', () => {
  it('follows a remap, and after the unmap fails with EBADF instead of acting on memory mapped there since', async () => {
    const r = await runChild({ fixture: 'stale-mapping.js' });
    expectCleanExit(r);
    expect(jsonLines(r)).toEqual([
      { step: 'remapped', moved: true },
      { step: 'where', followsRemap: true, length: 64 * 4096 },
      { step: 'reused', sameAddress: true },
      {
        step: 'after-unmap',
        unmapped: true,
        errors: { madvise: 'EBADF', protect: 'EBADF', arrayBuffer: 'EBADF', address: 'EBADF' },
        // Was zeroed by the Worker's stale madvise(DONTNEED), or made
        // PROT_NONE (SIGSEGV in main) by its stale protect('none').
        reusedIntact: true,
      },
      { step: 'worker-exit', code: 0 },
    ]);
  });
});
