// Userfaultfd.pauseReading() / resumeReading() / readingPaused: while paused
// the reader leaves messages in the kernel, so a faulting thread stays blocked
// with no event delivered, and a thread whose madvise waits for its REMOVE
// event stays in the kernel (the mmap-changing window); resuming delivers
// them. Closing while paused still wakes everything.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd } from '../lib/index';
import { madviseInThread } from '../lib/testing/index';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { threadsInFaults } from './helpers/events';
import { untilThreadState } from './parity/parity-case';
import { describeChild, jsonLines, runFixture } from './helpers/child';

const P = PAGE_SIZE;

describe('pauseReading', () => {
  it('is off by default, toggles, and chains', () =>
    withHarness(async (h) => {
      expect(h.uffd.readingPaused).toBe(false);
      expect(h.uffd.pauseReading()).toBe(h.uffd);
      expect(h.uffd.readingPaused).toBe(true);
      h.uffd.pauseReading();
      expect(h.uffd.readingPaused).toBe(true);
      expect(h.uffd.resumeReading()).toBe(h.uffd);
      expect(h.uffd.readingPaused).toBe(false);
    }));

  it('leaves a fault in the kernel until resumed: the thread stays blocked, no event arrives', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 1);
      h.uffd.register(r.mapping, ['missing']);
      h.uffd.pauseReading();
      const events = h.uffd.events();
      let delivered = false;
      const next = events.next().then((x) => ((delivered = true), x));
      const touch = h.touch(r.page(0), P);
      // No event can say which thread it is: wait for any thread in a userfault.
      while (threadsInFaults() < 1) await new Promise((resolve) => setTimeout(resolve, 2));
      // A reader that ignored the pause would deliver it within this time; a
      // slow machine can only make the check miss a bug, never fail a good run.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(delivered).toBe(false);
      expect(touch.settled).toBe(false);

      h.uffd.resumeReading();
      const e = await next;
      expect(e.done).toBe(false);
      expect(e.value).toMatchObject({ type: 'pagefault', address: r.page(0), minor: false, wp: false });
      await waitUntilBlockedInFault((e.value as { threadId: number }).threadId);
      expect(await stillBlocked(touch, (e.value as { threadId: number }).threadId)).toBe(true);
      h.uffd.copy(r.page(0), Buffer.alloc(P, 7));
      expect([...(await h.finished(touch)).values]).toEqual([0x07070707]);
      await events.return();
    }));

  it('holds a madvise(MADV_DONTNEED) waiting for its REMOVE event; resuming lets it finish', () =>
    withHarness(
      async (h) => {
        const r = h.region('anon', 2);
        h.uffd.register(r.mapping, ['missing']);
        h.uffd.pauseReading();
        const m = madviseInThread(r.page(0), 2 * P, 'DONTNEED');
        await untilThreadState(m.tid, 'D');
        h.uffd.resumeReading();
        expect(await m.done).toEqual({ errno: 0, code: undefined });
        const events = h.uffd.events();
        expect((await events.next()).value).toEqual({ type: 'remove', start: r.page(0), end: r.page(0) + 2 * P });
        await events.return();
      },
      { features: ['EVENT_REMOVE'] },
    ));

  it('close() while paused wakes the threads waiting on it', async () => {
    const uffd = Userfaultfd.open({ features: ['EVENT_REMOVE'] });
    const m1 = Mapping.anonymous(P);
    const m2 = Mapping.anonymous(P);
    try {
      uffd.register(m1, ['missing']);
      uffd.register(m2, ['missing']);
      uffd.pauseReading();
      const remover = madviseInThread(m1.address, P, 'DONTNEED');
      await untilThreadState(remover.tid, 'D');
      uffd.close();
      expect(uffd.readingPaused).toBe(false);
      expect(await remover.done).toEqual({ errno: 0, code: undefined });
    } finally {
      uffd.close();
      m1.unmap();
      m2.unmap();
    }
  });

  it('a fault of the JS thread while paused does not hang: the reader resumes by itself (child process)', async () => {
    const r = await runFixture('paused-js-thread-fault.js', [], 15_000);
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(jsonLines(r)).toEqual([
      { step: 'paused', paused: true },
      { step: 'read', byte: 0, paused: false, resolved: 1 },
    ]);
  });

  it('throws EBADF once closed', () => {
    const uffd = Userfaultfd.open();
    uffd.close();
    expect(() => uffd.pauseReading()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'read' }));
    expect(() => uffd.resumeReading()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'read' }));
    expect(uffd.readingPaused).toBe(false);
  });
});
