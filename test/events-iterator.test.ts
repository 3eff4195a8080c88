// The events() iterator, shaped like events.on(): AbortSignal with an
// AbortError carrying the cause, a bounded buffer that leaves events queued
// natively instead of dropping them, return(), several iterators, close(),
// and batched reads. Faults come from native threads (touchPages).
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd, type PageFaultEvent, type UffdEvent } from '../lib';
import type { EventIterator } from '../lib';
import { nextOf, page, untilThreadsInFaults, useCleanup } from './helpers/events';

const { track, touch } = useCleanup();

function setup(pages: number): { uffd: Userfaultfd; m: Mapping } {
  const uffd = track(Userfaultfd.open());
  const m = track(Mapping.anonymous(pages * PAGE_SIZE));
  uffd.register(m, ['missing']);
  return { uffd, m };
}

/** One native thread per page, so that every fault is pending at once. */
function touchEachPage(m: Mapping, pages: number) {
  return Promise.all(Array.from({ length: pages }, (_, i) => touch(m.address + i * PAGE_SIZE, 4)));
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('events() iterator', () => {
  it('an already-aborted signal: the first next() rejects with AbortError and the cause, then it is done', async () => {
    const { uffd } = setup(1);
    const reason = new Error('stop before starting');
    const events = uffd.events({ signal: AbortSignal.abort(reason) });
    const err = await events.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });

  it('aborting while next() waits rejects it with AbortError and the cause', async () => {
    const { uffd, m } = setup(1);
    const controller = new AbortController();
    const events = uffd.events({ signal: controller.signal });
    const waiting = events.next();
    const reason = new Error('stop while waiting');
    controller.abort(reason);
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError', cause: reason });
    expect(await events.next()).toEqual({ value: undefined, done: true });
    // The userfaultfd itself is fine: a new iterator gets events.
    const again = uffd.events();
    const touching = touch(m.address, 4);
    uffd.zeropage((await nextOf(again, 'pagefault')).address, PAGE_SIZE);
    await touching;
  });

  it('validates its options', () => {
    const { uffd } = setup(1);
    expect(() => uffd.events({ highWaterMark: 0 })).toThrow(RangeError);
    expect(() => uffd.events({ highWaterMark: 1.5 })).toThrow(TypeError);
    expect(() => uffd.events({ signal: {} as AbortSignal })).toThrow(TypeError);
  });

  it('highWaterMark 2 with 8 pending faults: the buffer never holds more than 2, the rest wait natively, none is lost', async () => {
    const { uffd, m } = setup(8);
    const events = uffd.events({ highWaterMark: 2 });
    const touching = touchEachPage(m, 8);
    // All eight are pending in the kernel before the first one is taken.
    await untilThreadsInFaults(8);
    const seen = new Set<number>();
    while (seen.size < 8) {
      const e = await nextOf(events, 'pagefault');
      // Let every pending delivery run before looking at the buffer.
      for (let i = 0; i < 5; i++) await yieldToLoop();
      expect(events.room).toBeGreaterThanOrEqual(0);
      expect(seen.has(e.address)).toBe(false);
      seen.add(e.address);
      uffd.copy(e.address, page(e.address / PAGE_SIZE));
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 8 }, (_, i) => m.address + i * PAGE_SIZE));
    const touched = await touching;
    expect(touched.map((t) => t.values[0])).toEqual(Array.from({ length: 8 }, (_, i) => (m.address / PAGE_SIZE + i) >>> 0));
  });

  it('return() ends the iterator: later next() calls are done, and other iterators go on', async () => {
    const { uffd, m } = setup(2);
    const first = uffd.events();
    const second = uffd.events();
    expect(await first.return()).toEqual({ value: undefined, done: true });
    expect(await first.next()).toEqual({ value: undefined, done: true });

    const touching = touch(m.address, 4);
    const e = await nextOf(second, 'pagefault');
    expect(e.address).toBe(m.address);
    uffd.zeropage(e.address, PAGE_SIZE);
    await touching;
    expect(await first.next()).toEqual({ value: undefined, done: true });
  });

  it('two iterators both see every event, in the same order', async () => {
    const { uffd, m } = setup(4);
    const a = uffd.events();
    const b = uffd.events();
    const touching = touchEachPage(m, 4);
    const fromA: number[] = [];
    const fromB: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [ea, eb] = await Promise.all([nextOf(a, 'pagefault'), nextOf(b, 'pagefault')]);
      expect(eb).toBe(ea);
      fromA.push(ea.address);
      fromB.push(eb.address);
      uffd.zeropage(ea.address, PAGE_SIZE);
    }
    await touching;
    expect(fromB).toEqual(fromA);
    expect(new Set(fromA).size).toBe(4);
  });

  it('close() ends every iterator, including a waiting next()', async () => {
    const { uffd } = setup(1);
    const a = uffd.events();
    const b = uffd.events();
    const waiting = a.next();
    uffd.close();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(await b.next()).toEqual({ value: undefined, done: true });
    expect(() => uffd.events()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('reads in batches: 16 pages touched by 2 threads all arrive, 8 from each thread', async () => {
    const { uffd, m } = setup(16);
    const events: EventIterator<UffdEvent> = uffd.events();
    const half = 8 * PAGE_SIZE;
    const touching = Promise.all([touch(m.address, half), touch(m.address + half, half)]);
    const faults: PageFaultEvent[] = [];
    while (faults.length < 16) {
      const e = await nextOf(events, 'pagefault');
      faults.push(e);
      uffd.copy(e.address, page(e.address / PAGE_SIZE));
    }
    const [t1, t2] = await touching;
    expect(faults.map((f) => f.address).sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => m.address + i * PAGE_SIZE));
    expect(faults.filter((f) => f.threadId === t1.tid).map((f) => f.address)).toEqual(Array.from({ length: 8 }, (_, i) => m.address + i * PAGE_SIZE));
    expect(faults.filter((f) => f.threadId === t2.tid).map((f) => f.address)).toEqual(Array.from({ length: 8 }, (_, i) => m.address + half + i * PAGE_SIZE));
  });

  it('faults pending before any iterator exists are all delivered to the first one', async () => {
    const { uffd, m } = setup(6);
    // No iterator yet: the reader reads the faults and queues them natively.
    const touching = touchEachPage(m, 6);
    await untilThreadsInFaults(6);
    const events = uffd.events({ highWaterMark: 64 });
    const addresses: number[] = [];
    while (addresses.length < 6) addresses.push((await nextOf(events, 'pagefault')).address);
    expect([...addresses].sort((a, b) => a - b)).toEqual(Array.from({ length: 6 }, (_, i) => m.address + i * PAGE_SIZE));
    for (const a of addresses) uffd.zeropage(a, PAGE_SIZE);
    await touching;
  });
});
