// UFFDIO_ZEROPAGE resolving real MISSING faults on anonymous and shmem
// memory; refused on hugetlb, which has no ZEROPAGE (the kernel leaves it out
// of the range's ioctls and a fault there is resolved by COPY of zeros).
import { describe, expect } from 'vitest';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { itOnKinds, pattern, type MemoryKind } from './helpers/memory';

const ZEROPAGE_KINDS: readonly MemoryKind[] = ['anon', 'shmem'];
const WRITTEN = 0x2e402e40;

function zeros(length: number, firstWord = 0): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt32LE(firstWord, 0);
  return b;
}

describe('UFFDIO_ZEROPAGE', () => {
  itOnKinds(ZEROPAGE_KINDS, 'resolves a read fault with a zero page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      expect(h.uffd.register(r.mapping, ['missing']).has('ZEROPAGE')).toBe(true);
      const touch = h.touch(r.page(0), r.pageSize);
      const f = await h.nextFault();
      expect(f).toMatchObject({ address: r.page(0), write: false, wp: false, minor: false });
      expect(h.uffd.zeropage(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const t = await h.finished(touch);
      expect(f.threadId).toBe(t.tid);
      expect([...t.values]).toEqual([0]);
      expect(r.read(0).equals(zeros(r.pageSize))).toBe(true);
    }),
  );

  itOnKinds(ZEROPAGE_KINDS, 'resolves a write fault; the write lands on the zeroed page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { write: true, value: WRITTEN });
      expect(await h.nextFault()).toMatchObject({ address: r.page(0), write: true });
      expect(h.uffd.zeropage(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
      expect(r.read(0).equals(zeros(r.pageSize, WRITTEN))).toBe(true);
      if (r.alias) expect(r.readAlias(0).equals(zeros(r.pageSize, WRITTEN))).toBe(true);
    }),
  );

  itOnKinds(ZEROPAGE_KINDS, 'one ZEROPAGE of three pages resolves the fault and the pages after it', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 3);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.length, { write: true, value: WRITTEN });
      expect((await h.nextFault()).address).toBe(r.page(0));
      expect(h.uffd.zeropage(r.page(0), r.length)).toEqual({ bytes: r.length, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN, WRITTEN + 1, WRITTEN + 2]);
      for (let i = 0; i < 3; i++) expect(r.read(i).equals(zeros(r.pageSize, WRITTEN + i))).toBe(true);
    }),
  );

  itOnKinds(ZEROPAGE_KINDS, 'DONTWAKE maps the page but leaves the thread blocked until WAKE', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize);
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.zeropage(r.page(0), r.pageSize, { dontWake: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      expect(h.uffd.wake(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([0]);
      expect(r.read(0).equals(zeros(r.pageSize))).toBe(true);
    }),
  );

  itOnKinds(ZEROPAGE_KINDS, 'onto a populated page it is EEXIST and changes nothing', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.length);
      expect((await h.nextFault()).address).toBe(r.page(0));
      h.uffd.zeropage(r.page(0), r.pageSize);
      expect((await h.nextFault()).address).toBe(r.page(1));
      h.uffd.copy(r.page(1), pattern(r.pageSize, 0x1234));
      expect([...(await h.finished(touch)).values]).toEqual([0, 0x1234]);
      expect(h.uffd.zeropage(r.page(0), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(h.uffd.zeropage(r.page(1), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, 1))).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(r.read(0).equals(zeros(r.pageSize))).toBe(true);
      expect(r.read(1).equals(pattern(r.pageSize, 0x1234))).toBe(true);
    }),
  );

  itOnKinds(ZEROPAGE_KINDS, 'a ZEROPAGE of two pages whose second exists: EAGAIN with bytes = one page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      h.uffd.register(r.mapping, ['missing']);
      h.uffd.copy(r.page(1), pattern(r.pageSize, 0x4321));
      const touch = h.touch(r.page(0), r.pageSize);
      expect((await h.nextFault()).address).toBe(r.page(0));
      expect(h.uffd.zeropage(r.page(0), r.length)).toEqual({ bytes: r.pageSize, status: 'EAGAIN' });
      expect([...(await h.finished(touch)).values]).toEqual([0]);
      expect(r.read(1).equals(pattern(r.pageSize, 0x4321))).toBe(true);
    }),
  );

  itOnKinds(['hugetlb'], 'is refused on hugetlb with EINVAL; COPY of zeros resolves the fault instead', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      expect(h.uffd.register(r.mapping, ['missing']).has('ZEROPAGE')).toBe(false);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      let err: unknown;
      try {
        h.uffd.zeropage(f.address, r.pageSize);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'ioctl(UFFDIO_ZEROPAGE)', address: r.page(0), length: r.pageSize });
      expect(touch.settled).toBe(false);
      expect(h.uffd.copy(f.address, Buffer.alloc(r.pageSize))).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([0]);
      expect(r.read(0).equals(zeros(r.pageSize))).toBe(true);
    }),
  );
});
