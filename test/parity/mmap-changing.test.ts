// uffd-unit-tests "mmap-changing" on shmem: a thread's MADV_REMOVE of a
// registered page sleeps (D state) until its REMOVE event is read. Meanwhile
// the uffd's mmap_changing guard makes COPY, ZEROPAGE, MOVE, POISON and
// CONTINUE each fail with EAGAIN, writing -EAGAIN into their result field:
// the library reports { bytes: 0, status: 'EAGAIN' } (a -EAGAIN is never read
// as a byte count). Then the event is read and the thread finishes.
//
// The library's reader thread would read the event at once, so it is paused
// for the window (Userfaultfd.pauseReading()). The kernel test passes empty
// ranges (the guard is checked before the range); the library checks ranges
// before any ioctl, so each call here names a valid registered page, which
// the guard refuses all the same.
import { expect } from 'vitest';
import { madviseInThread } from '../../lib/testing/index';
import { parityCase, threadState, untilThreadState } from './parity-case';

const EAGAIN_RESULT = { bytes: 0, status: 'EAGAIN' };

parityCase(
  'mmap-changing',
  'shmem',
  { features: ['EVENT_REMOVE', 'MOVE', 'POISON', 'MINOR_SHMEM'], modes: ['missing'] },
  async ({ areas, uffd }) => {
    const { dst, src, pageSize } = areas;
    uffd.register(dst, ['missing']);
    const events = uffd.events();
    uffd.pauseReading();
    expect(uffd.readingPaused).toBe(true);

    const remover = madviseInThread(dst.address, pageSize, 'REMOVE');
    await untilThreadState(remover.tid, 'D');

    let delivered = false;
    const next = events.next().then((r) => ((delivered = true), r));
    const page = dst.address + pageSize;
    expect(uffd.copy(page, Buffer.alloc(pageSize, 0x5a))).toEqual(EAGAIN_RESULT);
    expect(uffd.zeropage(page, pageSize)).toEqual(EAGAIN_RESULT);
    expect(uffd.move(page, src.address, pageSize)).toEqual(EAGAIN_RESULT);
    expect(uffd.poison(page, pageSize)).toEqual(EAGAIN_RESULT);
    expect(uffd.continue(page, pageSize)).toEqual(EAGAIN_RESULT);
    // The event is still unread: the thread still waits for it.
    expect(threadState(remover.tid)).toBe('D');
    expect(delivered).toBe(false);

    uffd.resumeReading();
    expect(uffd.readingPaused).toBe(false);
    expect(await next).toEqual({ done: false, value: { type: 'remove', start: dst.address, end: dst.address + pageSize } });
    expect(await remover.done).toEqual({ errno: 0, code: undefined });
    await events.return();

    // The window is closed: the same ioctls work again.
    expect(uffd.zeropage(page, pageSize)).toEqual({ bytes: pageSize, status: 'complete' });
  },
);
