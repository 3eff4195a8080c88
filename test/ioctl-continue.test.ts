// UFFDIO_CONTINUE resolving real MINOR faults on shmem and hugetlb: the page
// is put in the page cache through a second, unregistered mapping (the
// alias), and a native thread touching the registered mapping raises a
// MINOR fault that CONTINUE resolves by mapping that very page.
import { describe, expect } from 'vitest';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { FILE_KINDS, itOnKinds, pattern, patternWithFirstWord } from './helpers/memory';

const SEED = 0xc0a70000;
const WRITTEN = 0x600dcafe;

describe('UFFDIO_CONTINUE', () => {
  itOnKinds(FILE_KINDS, 'resolves a MINOR read fault with the page filled through the alias', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      expect(h.uffd.register(r.mapping, ['minor']).has('CONTINUE')).toBe(true);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      expect(f).toMatchObject({ type: 'pagefault', address: r.page(0), minor: true, wp: false, write: false, resolvedByReader: false });
      expect(h.uffd.continue(f.address, r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const t = await h.finished(touch);
      expect(f.threadId).toBe(t.tid);
      expect([...t.values]).toEqual([SEED]);
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
    }),
  );

  itOnKinds(FILE_KINDS, 'resolves a MINOR write fault; the write reaches the page the alias sees', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['minor']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      expect(await h.nextFault()).toMatchObject({ address: r.page(0), minor: true, write: true, wp: false });
      expect(h.uffd.continue(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
      expect(r.readAlias(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
      expect(r.read(0).equals(r.readAlias(0))).toBe(true);
    }),
  );

  itOnKinds(
    FILE_KINDS,
    'one CONTINUE of three pages resolves the fault and the pages after it',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 3);
        for (let i = 0; i < 3; i++) r.fillAlias(i, pattern(r.pageSize, SEED + i));
        h.uffd.register(r.mapping, ['minor']);
        const touch = h.touch(r.page(0), r.length, { stride: r.pageSize });
        expect((await h.nextFault()).address).toBe(r.page(0));
        expect(h.uffd.continue(r.page(0), r.length)).toEqual({ bytes: r.length, status: 'complete' });
        expect([...(await h.finished(touch)).values]).toEqual([SEED, SEED + 1, SEED + 2]);
        for (let i = 0; i < 3; i++) expect(r.read(i).equals(pattern(r.pageSize, SEED + i))).toBe(true);
      }),
    3,
  );

  itOnKinds(FILE_KINDS, 'DONTWAKE maps the page but leaves the thread blocked until WAKE', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['minor']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.continue(r.page(0), r.pageSize, { dontWake: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      expect(h.uffd.wake(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }),
  );

  itOnKinds(FILE_KINDS, 'MODE_WP maps the page write-protected: the write then raises a WP fault', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      const ioctls = h.uffd.register(r.mapping, ['minor', 'wp']);
      expect(ioctls.has('CONTINUE') && ioctls.has('WRITEPROTECT')).toBe(true);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      const minor = await h.nextFault();
      expect(minor).toMatchObject({ address: r.page(0), minor: true, write: true, wp: false });
      expect(h.uffd.continue(r.page(0), r.pageSize, { writeProtect: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      const wp = await h.nextFault();
      expect(wp).toMatchObject({ address: r.page(0), wp: true, write: true, minor: false, threadId: minor.threadId });
      expect(touch.settled).toBe(false);
      expect(r.readAlias(0).equals(pattern(r.pageSize, SEED))).toBe(true);
      expect(h.uffd.writeProtect(r.page(0), r.pageSize, false)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
      expect(r.readAlias(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
    }),
  );

  itOnKinds(FILE_KINDS, 'a second CONTINUE onto the mapped page is EEXIST', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['minor']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      await h.nextFault();
      h.uffd.continue(r.page(0), r.pageSize);
      await h.finished(touch);
      expect(h.uffd.continue(r.page(0), r.pageSize)).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
    }),
  );

  itOnKinds(FILE_KINDS, 'a CONTINUE of two pages whose second is mapped: EAGAIN with bytes = one page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      r.fillAlias(1, pattern(r.pageSize, SEED + 1));
      h.uffd.register(r.mapping, ['minor']);
      expect(h.uffd.continue(r.page(1), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      expect((await h.nextFault()).address).toBe(r.page(0));
      expect(h.uffd.continue(r.page(0), r.length)).toEqual({ bytes: r.pageSize, status: 'EAGAIN' });
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
      expect(r.read(1).equals(pattern(r.pageSize, SEED + 1))).toBe(true);
    }),
  );

  itOnKinds(FILE_KINDS, 'a page that is not in the page cache is an EFAULT errno error', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['minor']);
      let err: unknown;
      try {
        h.uffd.continue(r.page(0), r.pageSize);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'EFAULT', errno: -14, syscall: 'ioctl(UFFDIO_CONTINUE)', address: r.page(0), length: r.pageSize });
    }),
  );

  itOnKinds(FILE_KINDS, 'MISSING + MINOR: a hole raises a MISSING fault (COPY), a cached page a MINOR fault (CONTINUE)', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      r.fillAlias(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['missing', 'minor']);
      const touch = h.touch(r.page(0), r.length, { stride: r.pageSize });
      const cached = await h.nextFault();
      expect(cached).toMatchObject({ address: r.page(0), minor: true });
      h.uffd.continue(cached.address, r.pageSize);
      const hole = await h.nextFault();
      expect(hole).toMatchObject({ address: r.page(1), minor: false, wp: false });
      h.uffd.copy(hole.address, pattern(r.pageSize, SEED + 1));
      expect([...(await h.finished(touch)).values]).toEqual([SEED, SEED + 1]);
      expect(r.readAlias(1).equals(pattern(r.pageSize, SEED + 1))).toBe(true);
    }),
  );
});
