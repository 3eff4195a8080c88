// UFFDIO_REGISTER / UFFDIO_UNREGISTER: every mode combination on every
// memory kind, the ioctl sets the kernel returns, and registration proved by
// real faults (and their absence after unregistering).
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd, type RegisterMode } from '../lib/index';
import { withHarness, type FaultHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds, pattern, type MemoryKind, type Region } from './helpers/memory';

const MODE_SETS: RegisterMode[][] = [
  ['missing'],
  ['wp'],
  ['minor'],
  ['missing', 'wp'],
  ['missing', 'minor'],
  ['wp', 'minor'],
  ['missing', 'wp', 'minor'],
];

/**
 * The ioctls fs/userfaultfd.c:userfaultfd_register() reports: hugetlb ranges
 * get UFFD_API_RANGE_IOCTLS_BASIC (no ZEROPAGE, no MOVE), the others
 * UFFD_API_RANGE_IOCTLS; CONTINUE only for MINOR ranges, WRITEPROTECT only
 * for WP ranges. COPY and ZEROPAGE are reported whatever the mode.
 */
function kernelIoctls(kind: MemoryKind, modes: readonly RegisterMode[]): string[] {
  const all = kind === 'hugetlb' ? ['WAKE', 'COPY', 'WRITEPROTECT', 'CONTINUE', 'POISON'] : ['WAKE', 'COPY', 'ZEROPAGE', 'MOVE', 'WRITEPROTECT', 'CONTINUE', 'POISON'];
  return all.filter((n) => (n !== 'CONTINUE' || modes.includes('minor')) && (n !== 'WRITEPROTECT' || modes.includes('wp'))).sort();
}

const seedOf = (page: number) => 0x51000000 + page * 0x1000;

/** Resolves every fault of `r` with COPY of the page's pattern. */
function serveCopies(h: FaultHarness, r: Region) {
  return h.serve((f) => {
    const page = Math.floor((f.address - r.mapping.address) / r.pageSize);
    h.uffd.copy(r.page(page), pattern(r.pageSize, seedOf(page)));
  });
}

describe('register', () => {
  itOnKinds(ALL_KINDS, 'every mode combination returns the ioctl set of the kernel rules', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      for (const modes of MODE_SETS) {
        if (kind === 'anon' && modes.includes('minor')) {
          // MINOR needs a page cache: vma_can_userfault() refuses anonymous memory.
          let err: unknown;
          try {
            h.uffd.register(r.mapping, modes);
          } catch (e) {
            err = e;
          }
          expect(err, modes.join('+')).toBeInstanceOf(Error);
          expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'ioctl(UFFDIO_REGISTER)', address: r.mapping.address, length: r.length });
          expect(h.uffd.registrations).toEqual([]);
          continue;
        }
        const ioctls = h.uffd.register(r.mapping, modes);
        expect([...ioctls].sort(), modes.join('+')).toEqual(kernelIoctls(kind, modes));
        expect(ioctls.has('WAKE')).toBe(true);
        expect(h.uffd.registrations).toHaveLength(1);
        const reg = h.uffd.registrations[0];
        expect(reg).toMatchObject({ start: r.mapping.address, end: r.mapping.address + r.length, pageSize: r.pageSize });
        expect([...reg.modes].sort()).toEqual([...modes].sort());
        expect(reg.ioctls).toEqual(ioctls);
        h.uffd.unregister(r.mapping);
        expect(h.uffd.registrations).toEqual([]);
      }
    }),
  );

  itOnKinds(
    ALL_KINDS,
    'a MISSING range faults until it is unregistered',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 3);
        h.uffd.register(r.mapping, ['missing']);
        const faultLoop = serveCopies(h, r);
        const first = await h.finished(h.touch(r.page(0), r.pageSize, { stride: r.pageSize }));
        expect([...first.values]).toEqual([seedOf(0)]);
        expect(faultLoop.faults.map((f) => f.address)).toEqual([r.page(0)]);

        h.uffd.unregister(r.mapping);
        expect(h.uffd.registrations).toEqual([]);
        // No fault now: the holes read as zeros, the copied page keeps its data.
        const after = await h.finished(h.touch(r.page(0), r.length, { stride: r.pageSize }));
        expect([...after.values]).toEqual([seedOf(0), 0, 0]);
        expect(faultLoop.faults).toHaveLength(1);
        await faultLoop.stop();
        expect(r.read(0).equals(pattern(r.pageSize, seedOf(0)))).toBe(true);
      }),
    3,
  );

  itOnKinds(
    ALL_KINDS,
    'unregistering the middle of a range splits it; only the ends still fault',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 4);
        h.uffd.register(r.mapping, ['missing']);
        h.uffd.unregister({ address: r.page(1), length: 2 * r.pageSize });
        expect(h.uffd.registrations.map((g) => [g.start, g.end, g.pageSize])).toEqual([
          [r.page(0), r.page(1), r.pageSize],
          [r.page(3), r.page(4), r.pageSize],
        ]);
        const faultLoop = serveCopies(h, r);
        const t = await h.finished(h.touch(r.page(0), r.length, { stride: r.pageSize }));
        await faultLoop.stop();
        expect(faultLoop.faults.map((f) => f.address)).toEqual([r.page(0), r.page(3)]);
        expect([...t.values]).toEqual([seedOf(0), 0, 0, seedOf(3)]);
        expect(r.read(3).equals(pattern(r.pageSize, seedOf(3)))).toBe(true);
        // The ioctls follow the registrations: the unregistered middle is refused.
        expect(() => h.uffd.copy(r.page(1), pattern(r.pageSize, 1))).toThrow(RangeError);
      }),
    4,
  );

  itOnKinds(ALL_KINDS, 'a sub-range given as {address, length} takes the page size of its mapping', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      const ioctls = h.uffd.register({ address: r.page(1), length: r.pageSize }, ['missing']);
      expect([...ioctls].sort()).toEqual(kernelIoctls(kind, ['missing']));
      expect(h.uffd.registrations).toEqual([expect.objectContaining({ start: r.page(1), end: r.page(2), pageSize: r.pageSize })]);
      if (kind === 'hugetlb') {
        expect(() => h.uffd.register({ address: r.page(0), length: PAGE_SIZE }, ['missing'])).toThrow(RangeError);
        expect(() => h.uffd.register({ address: r.page(0) + PAGE_SIZE, length: r.pageSize }, ['missing'])).toThrow(RangeError);
      }
      // Page 0 is not registered: a touch there does not fault.
      const faultLoop = serveCopies(h, r);
      const t = await h.finished(h.touch(r.page(0), 2 * r.pageSize, { stride: r.pageSize }));
      await faultLoop.stop();
      expect(faultLoop.faults.map((f) => f.address)).toEqual([r.page(1)]);
      expect([...t.values]).toEqual([0, seedOf(1)]);
    }),
  );

  it('registering the same range again changes its modes', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 1);
      expect(h.uffd.register(r.mapping, ['missing']).has('WRITEPROTECT')).toBe(false);
      expect(h.uffd.register(r.mapping, ['missing', 'wp']).has('WRITEPROTECT')).toBe(true);
      expect(h.uffd.registrations).toHaveLength(1);
      expect([...h.uffd.registrations[0].modes].sort()).toEqual(['missing', 'wp']);
    }));

  it('rejects bad arguments before the system call', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 2);
      const u = h.uffd;
      expect(() => u.register(r.mapping, [])).toThrow(TypeError);
      expect(() => u.register(r.mapping, ['bogus' as RegisterMode])).toThrow(TypeError);
      expect(() => u.register(r.mapping, 'missing' as unknown as RegisterMode[])).toThrow(TypeError);
      expect(() => u.register(null as unknown as Mapping, ['missing'])).toThrow(TypeError);
      expect(() => u.register({ address: r.page(0) + 8, length: PAGE_SIZE }, ['missing'])).toThrow(RangeError);
      expect(() => u.register({ address: r.page(0), length: 100 }, ['missing'])).toThrow(RangeError);
      expect(() => u.register({ address: r.page(0), length: 0 }, ['missing'])).toThrow(RangeError);
      expect(() => u.register({ address: 'x' as unknown as number, length: PAGE_SIZE }, ['missing'])).toThrow(TypeError);
      expect(u.registrations).toEqual([]);
    }));

  it('memory without a mapping is an EINVAL errno error with the range', () =>
    withHarness(async (h) => {
      // A range just past a fresh mapping that was unmapped again: nothing is there.
      const m = Mapping.anonymous(2 * PAGE_SIZE);
      const address = m.address;
      m.unmap();
      let err: unknown;
      try {
        h.uffd.register({ address, length: 2 * PAGE_SIZE }, ['missing']);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'ioctl(UFFDIO_REGISTER)', address, length: 2 * PAGE_SIZE });
      expect((err as Error).message).toContain(`0x${address.toString(16)}`);
    }));

  it('a closed userfaultfd gives EBADF', () => {
    const u = Userfaultfd.open();
    const m = Mapping.anonymous(PAGE_SIZE);
    try {
      u.close();
      u.close();
      expect(u.closed).toBe(true);
      expect(() => u.register(m, ['missing'])).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'ioctl(UFFDIO_REGISTER)' }));
      expect(() => u.unregister(m)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    } finally {
      m.unmap();
    }
  });
});
