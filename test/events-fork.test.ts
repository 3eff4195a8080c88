// Fork events: with EVENT_FORK, a child forked by forkChild() (lib/testing)
// gives a 'fork' event whose uffd is a new Userfaultfd for the child's copy
// of the registered ranges. Its own events() get the child's faults, and
// its ioctls fill the child's memory. The child's non-cooperative events
// (remove, remap, unmap) arrive there too. Children that could stay blocked
// are killed by pid in cleanup.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd } from '../lib';
import { nextEvent, nextOf, page, useCleanup } from './helpers/events';
import { useForkedChildren, userfaultfdCount } from './helpers/fork';

const { track, touch } = useCleanup();
const fork = useForkedChildren();

describe('fork events', () => {
  it('EVENT_FORK: the fork event carries a new Userfaultfd that resolves the child\'s faults', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
    const m = track(Mapping.anonymous(4 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    // A page the parent filled before the fork is the child's too.
    uffd.copy(m.address, page(0x1000));
    const events = uffd.events();

    const child = fork([{ op: 'read', address: m.address, length: m.length }]);
    const forkEvent = await nextOf(events, 'fork');
    const childUffd = track(forkEvent.uffd);
    expect(childUffd).toBeInstanceOf(Userfaultfd);
    expect(childUffd).not.toBe(uffd);
    expect(childUffd.fd).not.toBe(uffd.fd);
    expect(childUffd.closed).toBe(false);
    expect([...childUffd.enabledFeatures]).toEqual(expect.arrayContaining(['EVENT_FORK']));
    expect(childUffd.registrations.map((r) => [r.start, r.end])).toEqual([[m.address, m.address + m.length]]);

    const childEvents = childUffd.events();
    for (let i = 1; i < 4; i++) {
      const e = await nextOf(childEvents, 'pagefault');
      expect(e.address).toBe(m.address + i * PAGE_SIZE);
      // The child has one thread, whose id is its pid.
      expect(e.threadId).toBe(child.pid);
      expect(e.resolvedByReader).toBe(false);
      expect(childUffd.copy(e.address, page(0x1000 + i))).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
    }
    const result = await child.exited;
    expect(result).toMatchObject({ exitCode: 0, signal: null });
    expect(result.failedStep).toBeUndefined();
    expect([...result.values]).toEqual([0x1000, 0x1001, 0x1002, 0x1003]);

    // The parent's own memory is untouched by what went into the child's.
    const parentTouch = touch(m.address + PAGE_SIZE, 4);
    const parentFault = await nextOf(events, 'pagefault');
    expect(parentFault.address).toBe(m.address + PAGE_SIZE);
    uffd.copy(parentFault.address, page(7));
    expect([...(await parentTouch).values]).toEqual([7]);
  });

  it('without EVENT_FORK there is no fork event, and the child\'s copy is not registered', async () => {
    const uffd = track(Userfaultfd.open());
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();

    const result = await fork([{ op: 'read', address: m.address, length: m.length }]).exited;
    // Nothing blocked the child: its pages were plain zero pages.
    expect(result).toMatchObject({ exitCode: 0, signal: null });
    expect([...result.values]).toEqual([0, 0]);

    // A fork event would have been queued before the child ran; the first
    // event is the parent's own fault.
    const touching = touch(m.address, 4);
    const first = await nextEvent(events);
    expect(first.type).toBe('pagefault');
    uffd.zeropage(m.address, PAGE_SIZE);
    await touching;
  });

  it('the child\'s madvise, mremap and munmap arrive on the forked uffd, whose registrations follow', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK', 'EVENT_REMOVE', 'EVENT_REMAP', 'EVENT_UNMAP'] }));
    const m = track(Mapping.anonymous(4 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    // The child moves the first two pages onto this (unregistered) mapping's
    // place in its own address space.
    const target = track(Mapping.anonymous(2 * PAGE_SIZE));
    const events = uffd.events();
    const a = m.address;
    const t = target.address;

    const child = fork([
      { op: 'read', address: a, length: PAGE_SIZE },
      { op: 'madvise', address: a, length: PAGE_SIZE, advice: 'DONTNEED' },
      { op: 'mremap', address: a, length: 2 * PAGE_SIZE, newAddress: t },
      { op: 'munmap', address: a + 2 * PAGE_SIZE, length: PAGE_SIZE },
      { op: 'read', address: t, length: 2 * PAGE_SIZE },
    ], { exitCode: 3 });
    const childUffd = track((await nextOf(events, 'fork')).uffd);
    const childEvents = childUffd.events();

    const fault0 = await nextOf(childEvents, 'pagefault');
    expect(fault0.address).toBe(a);
    childUffd.copy(a, page(10));

    const removed = await nextOf(childEvents, 'remove');
    expect(removed).toEqual({ type: 'remove', start: a, end: a + PAGE_SIZE });

    const remapped = await nextOf(childEvents, 'remap');
    expect(remapped).toEqual({ type: 'remap', from: a, to: t, length: 2 * PAGE_SIZE });
    // With EVENT_UNMAP on, the kernel also reports mremap's old range as unmapped.
    expect(await nextOf(childEvents, 'unmap')).toEqual({ type: 'unmap', start: a, end: a + 2 * PAGE_SIZE });
    const unmapped = await nextOf(childEvents, 'unmap');
    expect(unmapped).toEqual({ type: 'unmap', start: a + 2 * PAGE_SIZE, end: a + 3 * PAGE_SIZE });
    const expected = [
      [t, t + 2 * PAGE_SIZE],
      [a + 3 * PAGE_SIZE, a + 4 * PAGE_SIZE],
    ].sort((x, y) => x[0] - y[0]);
    expect(childUffd.registrations.map((r) => [r.start, r.end])).toEqual(expected);

    // Page 0 was dropped by DONTNEED and faults again at its new place;
    // page 1 was never filled.
    for (const [offset, value] of [[0, 20], [PAGE_SIZE, 21]]) {
      const f = await nextOf(childEvents, 'pagefault');
      expect(f.address).toBe(t + offset);
      expect(childUffd.copy(f.address, page(value))).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
    }
    const result = await child.exited;
    expect(result).toMatchObject({ exitCode: 3, signal: null });
    expect([...result.values]).toEqual([10, 20, 21]);

    // None of it happened to the parent: no events, registration intact.
    expect(uffd.registrations.map((r) => [r.start, r.end])).toEqual([[a, a + 4 * PAGE_SIZE]]);
    const touching = touch(a + 3 * PAGE_SIZE, 4);
    expect((await nextOf(events, 'pagefault')).address).toBe(a + 3 * PAGE_SIZE);
    uffd.zeropage(a + 3 * PAGE_SIZE, PAGE_SIZE);
    await touching;
  });
  it('a forked uffd left unread in an ending iterator is closed, unless another iterator handed it out', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
    const m = track(Mapping.anonymous(PAGE_SIZE));
    uffd.register(m, ['missing']);

    // Two iterators: the one that returns with the event still buffered
    // must not close the uffd the other one handed out.
    const a = uffd.events();
    const b = uffd.events();
    await fork([]).exited;
    const taken = track((await nextOf(a, 'fork')).uffd);
    await b.return();
    expect(taken.closed).toBe(false);
    await a.return();

    // One iterator that ends without reading it: its fd is closed, not leaked.
    const c = uffd.events();
    const before = userfaultfdCount();
    await fork([]).exited;
    while (c.room === c.highWaterMark) await new Promise((resolve) => setImmediate(resolve));
    expect(userfaultfdCount()).toBe(before + 1);
    await c.return();
    expect(userfaultfdCount()).toBe(before);
  });
});
