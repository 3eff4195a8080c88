// return() releases everything an iterator held: a full iterator stops the
// delivery to every other one (the bounded buffer leaves faults in the
// kernel); ending it must let the others go on, and a returned iterator must
// not keep the process alive.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd, type UffdEvent } from '../lib';
import { describeChild, runScript } from './helpers/child';
import { nextOf, page, untilThreadsInFaults, useCleanup } from './helpers/events';

const { track, touch } = useCleanup();

describe('events() return() releases', () => {
  // EventDispatcher.detach() (lib/faults/fault-dispatcher.ts) must drain
  // again: events already read while a full iterator held the queue back
  // would otherwise stay queued for ever and their threads stay blocked.
  async function fullIteratorEnds(how: 'return' | 'abort'): Promise<void> {
    const uffd = track(Userfaultfd.open());
    const m = track(Mapping.anonymous(4 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const abort = new AbortController();
    const full = uffd.events({ highWaterMark: 1, signal: abort.signal });
    const other = uffd.events({ highWaterMark: 64 });
    const touching = Promise.all([0, 1, 2, 3].map((i) => touch(m.address + i * PAGE_SIZE, 4)));
    await untilThreadsInFaults(4);
    const first = await nextOf(other, 'pagefault');
    uffd.copy(first.address, page(first.address / PAGE_SIZE));
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));
    // `full` holds the first event unread: nothing more reaches `other`.
    let next = other.next();
    expect(await Promise.race([next.then(() => 'delivered'), timeout(200)])).toBe('timeout');
    if (how === 'return') await full.return();
    else abort.abort(new Error('enough'));
    const seen = new Set([first.address]);
    while (seen.size < 4) {
      const r = await Promise.race([next, timeout(5000)]);
      if (r === 'timeout') throw new Error(`after the full iterator's ${how}, 'other' got ${seen.size - 1} of the 3 remaining events`);
      expect(r.done).toBe(false);
      next = other.next();
      const e = r.value as UffdEvent;
      if (e.type !== 'pagefault' || seen.has(e.address)) continue;
      uffd.copy(e.address, page(e.address / PAGE_SIZE));
      seen.add(e.address);
    }
    const touched = await touching;
    expect(touched.map((t) => t.values[0])).toEqual([0, 1, 2, 3].map((i) => (m.address / PAGE_SIZE + i) >>> 0));
  }

  it('a full iterator holds the others back; its return() lets them have every remaining event', () => fullIteratorEnds('return'));

  it('the same when the full iterator is aborted', () => fullIteratorEnds('abort'));

  it('a returned iterator no longer keeps the process alive (child process)', async () => {
    const r = await runScript(
      `
      const uffd = lib.Userfaultfd.open();
      const it = uffd.events();
      const waiting = it.next();
      setTimeout(async () => { await it.return(); console.log('RESULT returned'); }, 50);`,
      15_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(r.stdout).toContain('RESULT returned');
  });
});
