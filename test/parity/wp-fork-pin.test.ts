// uffd-unit-tests "wp-fork-pin" and "wp-fork-pin-with-event": as wp-fork,
// on one registered page that is also pinned long-term:
// 1. pin, then fork: fork() must copy a pinned private page at once (the
//    early-CoW path) and keep the uffd-wp bit with EVENT_FORK, drop it without;
// 2. fork, then pin in the child: the child's copy must get its own page,
//    and the bit must not be seen without EVENT_FORK.
//
// The C suite pins through /sys/kernel/debug/gup_test, which needs
// CONFIG_GUP_TEST (absent here: it skips all 10 cases). We pin with io_uring
// fixed buffers (longtermPin(), and the forked child's 'pin' step), the same
// pin_user_pages(FOLL_LONGTERM) on any kernel with io_uring. That pin is
// writable (FOLL_WRITE) where gup_test's is read-only, which changes two
// things, both asserted here:
// - the parent pins before write-protecting (a writable pin of a protected
//   page would be a WP fault); at fork() the page is pinned and
//   write-protected, the state the kernel test forks in;
// - in the child, a writable pin breaks CoW by a write fault instead of
//   unsharing: with EVENT_FORK the child's inherited protection stops it
//   first (a WP fault on the child's uffd, from the child's thread), the
//   monitor resolves it by unprotecting, and only then is the page pinned,
//   unprotected. (A read-only pin would unshare and keep the bit: only
//   gup_test takes one.)
// Beyond the C suite, each child reports its own pagemap entries: a
// private page copied early (or unshared) is a different page frame,
// exclusive to the child, holding the parent's data.
import { expect } from 'vitest';
import type { PagemapEntry } from '../../lib/index';
import { longtermPin } from '../../lib/testing/index';
import { PARITY_MEMORY } from './areas';
import { childEntries, describeEntry, wpForkCase, type WpForkContext } from './wp-fork-common';

/** Whether `child` is its own page frame, not the parent's (undefined when pagemap hides frame numbers: no CAP_SYS_ADMIN). */
function ownFrame(parent: PagemapEntry, child: PagemapEntry): boolean | undefined {
  if (!parent.pfn || !child.pfn) return undefined;
  return parent.pfn !== child.pfn;
}

function wpForkPin(withEvent: boolean) {
  return async (c: WpForkContext) => {
    const { uffd, areas, page, pageSize } = c;
    const privateMemory = !areas.shared;
    uffd.register({ address: page, length: pageSize }, ['wp']);

    // Touch the page, pin it, write-protect it.
    expect(await c.write(1)).toBe(1);
    const pin = c.track(longtermPin(page, pageSize));
    expect(uffd.writeProtect(page, pageSize, true)).toEqual({ bytes: pageSize, status: 'complete' });
    const parent = c.entry();
    expect(parent.present && parent.uffdWp, describeEntry(parent)).toBe(true);

    // 1. Pin, then fork: early CoW of a pinned private page.
    {
      const child = c.fork([
        { op: 'pagemap', address: page },
        { op: 'read', address: page, length: 4 },
      ]);
      if (withEvent) await c.forkEvent();
      const [entry] = await childEntries(child, 'pinned, then forked');
      const what = `pinned, then forked: the child's entry ${describeEntry(entry)}, the parent's ${describeEntry(parent)}`;
      expect(entry.uffdWp, what).toBe(withEvent);
      if (privateMemory) {
        // Copied at fork, not shared with the parent.
        expect(entry.present && entry.exclusive, what).toBe(true);
        if (ownFrame(parent, entry) !== undefined) expect(ownFrame(parent, entry), what).toBe(true);
      } else if (withEvent) {
        // Shared memory: the same page, its pte copied for the marker's sake.
        expect(entry.present, what).toBe(true);
        if (ownFrame(parent, entry) !== undefined) expect(ownFrame(parent, entry), what).toBe(false);
      }
      expect([...(await child.exited).values]).toEqual([1]);
    }
    pin.release();
    expect(pin.released).toBe(true);
    const afterFirst = c.entry();
    expect(afterFirst.uffdWp, describeEntry(afterFirst)).toBe(true);

    // 2. Fork, then pin in the child.
    {
      const child = c.fork([
        { op: 'pagemap', address: page },
        { op: 'pin', address: page, length: pageSize },
        { op: 'pagemap', address: page },
        { op: 'read', address: page, length: 4 },
        { op: 'unpin' },
      ]);
      if (withEvent) {
        const childUffd = await c.forkEvent();
        // The inherited protection holds even against a long-term pin: the
        // child's pin is a WP fault on the child's uffd, from the child.
        const fault = await c.nextEvent(childUffd.events(), "the child's WP");
        expect(fault).toMatchObject({ type: 'pagefault', wp: true, write: true, minor: false, threadId: child.pid, resolvedByReader: false });
        if (fault.type !== 'pagefault') throw new Error('unreachable');
        expect(fault.address >= page && fault.address < page + pageSize, `fault at 0x${fault.address.toString(16)}`).toBe(true);
        expect(childUffd.writeProtect(page, pageSize, false)).toEqual({ bytes: pageSize, status: 'complete' });
      }
      const [before, after] = await childEntries(child, 'forked, then pinned in the child');
      expect(before.uffdWp, `forked: the child's entry ${describeEntry(before)}`).toBe(withEvent);
      const what = `pinned in the child: its entry ${describeEntry(after)}, the parent's ${describeEntry(parent)}`;
      expect(after.present, what).toBe(true);
      expect(after.uffdWp, what).toBe(false);
      if (privateMemory) {
        expect(after.exclusive, what).toBe(true);
        if (ownFrame(parent, after) !== undefined) expect(ownFrame(parent, after), what).toBe(true);
      }
      expect([...(await child.exited).values]).toEqual([1]);
    }

    // The children's copies, pins and unprotection left the parent's page as it was.
    const last = c.entry();
    expect(last.present && last.uffdWp, describeEntry(last)).toBe(true);
    if (parent.pfn) expect(last.pfn).toBe(parent.pfn);
    uffd.unregister({ address: page, length: pageSize });
  };
}

for (const memory of PARITY_MEMORY) {
  wpForkCase('wp-fork-pin', memory, { withEvent: false, pin: true }, wpForkPin(false));
}
for (const memory of PARITY_MEMORY) {
  wpForkCase('wp-fork-pin-with-event', memory, { withEvent: true, pin: true }, wpForkPin(true));
}
