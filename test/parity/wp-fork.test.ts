// uffd-unit-tests "wp-fork" and "wp-fork-with-event": register dst WP,
// touch its first page and write-protect it; the parent's pagemap must show
// PM_UFFD_WP. A forked child reads its own pagemap entry of the page: without
// EVENT_FORK its copy is not registered and must not show the bit; with
// EVENT_FORK it must inherit it, and a fork event must arrive. Then the page
// is zapped (MADV_DONTNEED on shared memory: a pte marker; MADV_PAGEOUT on
// private memory: a swap pte where there is swap) and the parent must still
// show the bit while a second child must not (or must, with the event).
// Unprotecting clears the bit, and faulting the page in again keeps it clear.
//
// Beyond the C suite: shmem-private is really MAP_PRIVATE here; the zapped
// state is checked (marker: not present; hugetlb-private cannot be paged out,
// MADV_PAGEOUT gives EINVAL, which the C test ignores); the page's data
// survives the whole sequence; the child's exit and its reported entries
// are checked, not only its exit code.
import { expect } from 'vitest';
import type { PagemapEntry } from '../../lib/index';
import { PARITY_MEMORY } from './areas';
import { childEntries, describeEntry, wpForkCase, type WpForkContext } from './wp-fork-common';

/** Forks a child that reads its entry of the page: the bit only with EVENT_FORK, and then in the parent's state (`parent`). */
async function childSeesBit(c: WpForkContext, withEvent: boolean, what: string, parent: PagemapEntry): Promise<void> {
  const child = c.fork([{ op: 'pagemap', address: c.page }]);
  if (withEvent) {
    const childUffd = await c.forkEvent();
    expect(childUffd.enabledFeatures.has('EVENT_FORK')).toBe(true);
    expect(childUffd.registrations.map((r) => [r.start, r.end, [...r.modes]])).toEqual([[c.page, c.page + c.areas.dst.length, ['wp']]]);
  }
  const [entry] = await childEntries(child, what);
  expect(entry, `${what}: the child's entry ${describeEntry(entry)}`).toBeDefined();
  expect(entry.uffdWp, `${what}: the child's entry ${describeEntry(entry)}`).toBe(withEvent);
  if (withEvent) {
    // Inherited as it is: a present pte, a marker, or a swap pte.
    const both = `${what}: the child's entry ${describeEntry(entry)}, the parent's ${describeEntry(parent)}`;
    expect([entry.present, entry.swapped], both).toEqual([parent.present, parent.swapped]);
  }
}

function wpFork(withEvent: boolean) {
  return async (c: WpForkContext) => {
    const { uffd, areas, page, pageSize } = c;
    uffd.register(areas.dst, ['wp']);

    // Touch the page, write-protect it.
    expect(await c.write(1)).toBe(1);
    expect(uffd.writeProtect(page, pageSize, true)).toEqual({ bytes: pageSize, status: 'complete' });
    const protectedEntry = c.entry();
    expect(protectedEntry.present && protectedEntry.uffdWp, describeEntry(protectedEntry)).toBe(true);
    await childSeesBit(c, withEvent, 'present pte', protectedEntry);

    // Zap the page table entry, keeping the protection.
    if (areas.shared) {
      areas.dst.madvise('DONTNEED', 0, pageSize);
    } else if (areas.memory === 'hugetlb-private') {
      // Private hugetlb cannot be swapped: the C test ignores this failure.
      expect(() => areas.dst.madvise('PAGEOUT', 0, pageSize)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'madvise' }));
    } else {
      areas.dst.madvise('PAGEOUT', 0, pageSize);
    }
    const zapped = c.entry();
    expect(zapped.uffdWp, `zapped: ${describeEntry(zapped)}`).toBe(true);
    // Shared memory keeps a pte marker (nothing present). Private memory is
    // a swap pte with swap, still present without (this machine may have none).
    if (areas.shared) expect(zapped.present, describeEntry(zapped)).toBe(false);
    if (areas.memory === 'hugetlb-private') expect(zapped.present, describeEntry(zapped)).toBe(true);
    if (!areas.shared && areas.memory !== 'hugetlb-private') {
      if (zapped.swapped) expect(zapped.present, describeEntry(zapped)).toBe(false);
      else await c.note('MADV_PAGEOUT left the page present (no swap here?): the swap-pte path was not exercised');
    }
    await childSeesBit(c, withEvent, 'zapped pte', zapped);

    // Unprotect: the marker or swap pte loses the bit.
    expect(uffd.writeProtect(page, pageSize, false)).toEqual({ bytes: pageSize, status: 'complete' });
    const unprotected = c.entry();
    expect(unprotected.uffdWp, describeEntry(unprotected)).toBe(false);

    // Fault the page in again (from swap, or the page cache): no bit, and the data survived.
    expect(await c.write(2)).toBe(2);
    const refaulted = c.entry();
    expect(refaulted.present, describeEntry(refaulted)).toBe(true);
    expect(refaulted.uffdWp, describeEntry(refaulted)).toBe(false);
    if (areas.dstAlias && areas.shared) expect(areas.dstAlias.buffer(0, 4).readUInt32LE(0)).toBe(2);

    uffd.unregister(areas.dst);
    expect(uffd.registrations).toEqual([]);
  };
}

for (const memory of PARITY_MEMORY) {
  wpForkCase('wp-fork', memory, { withEvent: false }, wpFork(false));
}
for (const memory of PARITY_MEMORY) {
  wpForkCase('wp-fork-with-event', memory, { withEvent: true }, wpFork(true));
}
