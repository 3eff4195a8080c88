// forkChild()'s 'pagemap', 'pin' and 'unpin' steps (userfaultfd/testing):
// the child reads its own /proc/self/pagemap entries (reported in
// `pagemap`, in step order) and takes long-term pins as longtermPin() does.
// Bad programs are TypeError / RangeError before any fork.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, readPagemap, Userfaultfd } from '../lib';
import { FORK_STEP_FAILED_EXIT, forkChild, probeLongtermPin, type ForkStep } from '../lib/testing';
import { nextOf, useCleanup } from './helpers/events';
import { useForkedChildren } from './helpers/fork';

const { track } = useCleanup();
const fork = useForkedChildren();

describe('forkChild pagemap and pin steps', () => {
  it('rejects bad programs with TypeError / RangeError', () => {
    const a = 0x10000;
    const pins = Array.from({ length: 17 }, () => ({ op: 'pin', address: a, length: PAGE_SIZE }));
    const bad: [unknown, ErrorConstructor, RegExp][] = [
      [[{ op: 'pagemap' }], TypeError, /steps\[0\]\.address must be an integer/],
      [[{ op: 'pagemap', address: 0 }], RangeError, /steps\[0\]\.address must be between 1/],
      [[{ op: 'pin', address: a }], TypeError, /steps\[0\]\.length must be an integer/],
      [[{ op: 'pin', address: a, length: 0 }], RangeError, /steps\[0\]\.length must be between 1 and 68719476736/],
      [[{ op: 'pin', address: a, length: 2 ** 36 + 1 }], RangeError, /steps\[0\]\.length must be between 1 and 68719476736/],
      [[{ op: 'pin', address: 'a', length: 4096 }], TypeError, /steps\[0\]\.address must be an integer/],
      [[{ op: 'unpin' }], RangeError, /steps\[0\]: 'unpin' without a pin held/],
      [[{ op: 'pin', address: a, length: 4096 }, { op: 'unpin' }, { op: 'unpin' }], RangeError, /steps\[2\]: 'unpin' without a pin held/],
      [pins, RangeError, /steps\[16\]: a child holds at most 16 pins at once/],
    ];
    for (const [steps, type, message] of bad) {
      expect(() => forkChild(steps as ForkStep[]), JSON.stringify(steps).slice(0, 80)).toThrow(type);
      expect(() => forkChild(steps as ForkStep[])).toThrow(message);
    }
  });

  it('pagemap: the child reads its own entries; they are apart from the values of read steps', async () => {
    const m = track(Mapping.anonymous(3 * PAGE_SIZE));
    m.buffer(0, 4).writeUInt32LE(7, 0);
    const r = await fork([
      { op: 'pagemap', address: m.address },
      { op: 'read', address: m.address, length: 4 },
      { op: 'pagemap', address: m.address + PAGE_SIZE },
      { op: 'write', address: m.address + 2 * PAGE_SIZE, length: 4, value: 9 },
      { op: 'pagemap', address: m.address + 2 * PAGE_SIZE },
    ]).exited;
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    expect([...r.values]).toEqual([7, 9]);
    const [shared, absent, own] = r.pagemap!;
    expect(r.pagemap).toHaveLength(3);
    // The page the parent wrote is shared with it after fork (same frame,
    // not exclusive); the untouched page is absent; the page the child wrote is its own.
    const parent = readPagemap(m.address, PAGE_SIZE)[0];
    expect(shared).toMatchObject({ present: true, exclusive: false, uffdWp: false });
    if (parent.pfn) expect(shared.pfn).toBe(parent.pfn);
    expect(absent).toMatchObject({ present: false, swapped: false, pfn: undefined, raw: 0n });
    expect(own).toMatchObject({ present: true, exclusive: true });
    // Still absent in the parent: the child's write was its own.
    expect(readPagemap(m.address + 2 * PAGE_SIZE, PAGE_SIZE)[0].present).toBe(false);
  });

  it('no pagemap steps: no pagemap field', async () => {
    const r = await fork([]).exited;
    expect('pagemap' in r).toBe(false);
  });

  it('pagemap: an address beyond the user address space fails with EIO naming pread; later entries are not reported', async () => {
    const m = track(Mapping.anonymous(PAGE_SIZE));
    const beyond = 2 ** 48;
    const r = await fork([
      { op: 'pagemap', address: m.address },
      { op: 'pagemap', address: beyond },
      { op: 'pagemap', address: m.address },
    ]).exited;
    expect(r.exitCode).toBe(FORK_STEP_FAILED_EXIT);
    expect(r.failedStep?.index).toBe(1);
    expect(r.failedStep?.error).toMatchObject({ code: 'EIO', syscall: 'pread', address: beyond });
    expect(r.pagemap).toHaveLength(1);
  });

  describe('where io_uring works', () => {
    it('pin: breaks CoW like a write (the child gets its own frame, exclusive), then unpin', async (ctx) => {
      const support = probeLongtermPin();
      if (!support.ok) ctx.skip(`skip: ${support.reason}`);
      const m = track(Mapping.anonymous(PAGE_SIZE));
      m.buffer(0, 4).writeUInt32LE(5, 0);
      const r = await fork([
        { op: 'pagemap', address: m.address },
        { op: 'pin', address: m.address, length: PAGE_SIZE },
        { op: 'pagemap', address: m.address },
        { op: 'read', address: m.address, length: 4 },
        { op: 'unpin' },
        { op: 'pin', address: m.address, length: PAGE_SIZE },
      ]).exited;
      expect(r).toMatchObject({ exitCode: 0, signal: null });
      expect(r.failedStep).toBeUndefined();
      expect([...r.values]).toEqual([5]);
      const [before, after] = r.pagemap!;
      expect(before.exclusive).toBe(false);
      expect(after).toMatchObject({ present: true, exclusive: true });
      const parent = readPagemap(m.address, PAGE_SIZE)[0];
      if (parent.pfn) expect(after.pfn).not.toBe(parent.pfn);
    });

    it('pin: an unmapped range fails with EFAULT naming io_uring_register and the range', async (ctx) => {
      const support = probeLongtermPin();
      if (!support.ok) ctx.skip(`skip: ${support.reason}`);
      const r = await fork([{ op: 'pin', address: PAGE_SIZE, length: 2 * PAGE_SIZE }]).exited;
      expect(r.exitCode).toBe(FORK_STEP_FAILED_EXIT);
      expect(r.failedStep?.index).toBe(0);
      expect(r.failedStep?.error).toMatchObject({ code: 'EFAULT', errno: -14, syscall: 'io_uring_register', address: PAGE_SIZE, length: 2 * PAGE_SIZE });
    });

    it("pin: on a page write-protected in the child's registered copy (EVENT_FORK), a WP fault first", async (ctx) => {
      const support = probeLongtermPin();
      if (!support.ok) ctx.skip(`skip: ${support.reason}`);
      const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
      const m = track(Mapping.anonymous(PAGE_SIZE));
      m.buffer(0, 4).writeUInt32LE(3, 0);
      uffd.register(m, ['wp']);
      uffd.writeProtect(m.address, PAGE_SIZE, true);
      const events = uffd.events();
      const child = fork([
        { op: 'pin', address: m.address, length: PAGE_SIZE },
        { op: 'pagemap', address: m.address },
      ]);
      const childUffd = track((await nextOf(events, 'fork')).uffd);
      const fault = await nextOf(childUffd.events(), 'pagefault');
      expect(fault).toMatchObject({ address: m.address, wp: true, write: true, threadId: child.pid });
      childUffd.writeProtect(m.address, PAGE_SIZE, false);
      const r = await child.exited;
      expect(r).toMatchObject({ exitCode: 0 });
      expect(r.pagemap![0]).toMatchObject({ present: true, uffdWp: false, exclusive: true });
      expect(readPagemap(m.address, PAGE_SIZE)[0].uffdWp).toBe(true);
    });
  });
});
