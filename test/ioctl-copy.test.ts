// UFFDIO_COPY resolving real MISSING faults raised by native threads, on
// anonymous, shmem and hugetlb memory: plain, DONTWAKE then WAKE, MODE_WP,
// EEXIST, partial progress, and every kind of source.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE } from '../lib/index';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { ALL_KINDS, FILE_KINDS, itOnKinds, pattern, patternWithFirstWord } from './helpers/memory';

const SEED = 0x0c0e0000;
const WRITTEN = 0xfeedf00d;

describe('UFFDIO_COPY', () => {
  itOnKinds(ALL_KINDS, 'resolves a read fault with the copied page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      expect(f).toMatchObject({ type: 'pagefault', address: r.page(0), write: false, wp: false, minor: false, resolvedByReader: false });
      expect(h.uffd.copy(f.address, pattern(r.pageSize, SEED))).toEqual({ bytes: r.pageSize, status: 'complete' });
      const t = await h.finished(touch);
      expect(f.threadId).toBe(t.tid);
      expect([...t.values]).toEqual([SEED]);
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
    }),
  );

  itOnKinds(FILE_KINDS, 'copies into the page cache: the alias sees the page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      await h.nextFault();
      h.uffd.copy(r.page(0), pattern(r.pageSize, SEED + 1));
      expect([...(await h.finished(touch)).values]).toEqual([SEED + 1]);
      expect(r.readAlias(0).equals(pattern(r.pageSize, SEED + 1))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'resolves a write fault; the write lands on the copied page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      const f = await h.nextFault();
      expect(f).toMatchObject({ address: r.page(0), write: true, wp: false, minor: false });
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, SEED))).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
      expect(r.read(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
    }),
  );

  itOnKinds(
    ALL_KINDS,
    'one COPY of three pages resolves the fault and the pages after it',
    (kind) =>
      withHarness(async (h) => {
        const r = h.region(kind, 3);
        h.uffd.register(r.mapping, ['missing']);
        const touch = h.touch(r.page(0), r.length, { stride: r.pageSize });
        const f = await h.nextFault();
        expect(f.address).toBe(r.page(0));
        expect(h.uffd.copy(r.page(0), pattern(r.length, SEED))).toEqual({ bytes: r.length, status: 'complete' });
        // Had pages 1 and 2 not been mapped, the thread would fault again and never finish.
        const words = r.pageSize / 4;
        expect([...(await h.finished(touch)).values]).toEqual([SEED, SEED + words, SEED + 2 * words]);
        expect(Buffer.concat([r.read(0), r.read(1), r.read(2)]).equals(pattern(r.length, SEED))).toBe(true);
      }),
    3,
  );

  itOnKinds(ALL_KINDS, 'DONTWAKE maps the page but leaves the thread blocked until WAKE', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, SEED + 2), { dontWake: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      // The page is there already: reading it from JavaScript does not fault.
      expect(r.read(0).equals(pattern(r.pageSize, SEED + 2))).toBe(true);
      expect(h.uffd.wake(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([SEED + 2]);
      expect(h.uffd.jsThreadFaultsResolved).toBe(0);
    }),
  );

  itOnKinds(ALL_KINDS, 'MODE_WP maps the page write-protected: the write then raises a WP fault', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing', 'wp']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      const missing = await h.nextFault();
      expect(missing).toMatchObject({ address: r.page(0), write: true, wp: false });
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, SEED), { writeProtect: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      const wp = await h.nextFault();
      expect(wp).toMatchObject({ address: r.page(0), write: true, wp: true, minor: false, threadId: missing.threadId });
      // Blocked on the protection: the write has not happened yet.
      expect(touch.settled).toBe(false);
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
      expect(h.uffd.writeProtect(r.page(0), r.pageSize, false)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
      expect(r.read(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'a second COPY onto the resolved page is EEXIST and changes nothing', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      await h.nextFault();
      h.uffd.copy(r.page(0), pattern(r.pageSize, SEED));
      await h.finished(touch);
      expect(h.uffd.copy(r.page(0), pattern(r.pageSize, SEED + 9))).toEqual({ bytes: 0, status: 'EEXIST' });
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'a COPY of two pages whose second exists stops after one: EAGAIN with bytes = one page', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      h.uffd.register(r.mapping, ['missing']);
      expect(h.uffd.copy(r.page(1), pattern(r.pageSize, SEED + 1))).toEqual({ bytes: r.pageSize, status: 'complete' });
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize });
      const f = await h.nextFault();
      expect(f.address).toBe(r.page(0));
      expect(h.uffd.copy(r.page(0), pattern(2 * r.pageSize, SEED + 100))).toEqual({ bytes: r.pageSize, status: 'EAGAIN' });
      // The copied part woke the thread; the existing page was left alone.
      expect([...(await h.finished(touch)).values]).toEqual([SEED + 100]);
      expect(r.read(0).equals(pattern(r.pageSize, SEED + 100))).toBe(true);
      expect(r.read(1).equals(pattern(r.pageSize, SEED + 1))).toBe(true);
    }),
  );

  it('accepts a Buffer, TypedArrays with a byteOffset, a DataView, an ArrayBuffer, srcOffset/length, an address and views of a SharedArrayBuffer', () =>
    withHarness(async (h) => {
      const P = PAGE_SIZE;
      const r = h.region('anon', 9);
      h.uffd.register(r.mapping, ['missing']);
      const source = h.region('anon', 1);
      pattern(P, SEED + 6).copy(source.mapping.buffer());

      const withOffset = new Uint8Array(P + 64);
      withOffset.set(pattern(P, SEED + 1), 64);
      const dvBacking = new Uint8Array(P + 128);
      dvBacking.set(pattern(P, SEED + 2), 128);
      const arrayBuffer = new ArrayBuffer(P);
      new Uint8Array(arrayBuffer).set(pattern(P, SEED + 3));
      const u32Backing = new Uint32Array((P + 16) / 4);
      u32Backing.set(new Uint32Array(pattern(P, SEED + 4).buffer), 4);
      const threePages = Buffer.concat([pattern(P, 0xbad), pattern(P, SEED + 5), pattern(P, 0xbad)]);
      // Memory a Worker may have filled. Views of it once failed with a bare
      // 'Invalid argument' (the addon asked for the view's ArrayBuffer).
      const shared = new SharedArrayBuffer(2 * P + 32);
      new Uint8Array(shared).set(pattern(P, SEED + 7), 16);
      new Uint8Array(shared).set(pattern(P, SEED + 8), P + 32);

      const resolvers: ((dst: number) => unknown)[] = [
        (dst) => h.uffd.copy(dst, pattern(P, SEED + 0)),
        (dst) => h.uffd.copy(dst, withOffset.subarray(64)),
        (dst) => h.uffd.copy(dst, new DataView(dvBacking.buffer, 128, P)),
        (dst) => h.uffd.copy(dst, arrayBuffer),
        (dst) => h.uffd.copy(dst, u32Backing.subarray(4)),
        (dst) => h.uffd.copy(dst, threePages, { srcOffset: P, length: P }),
        (dst) => h.uffd.copyFromAddress(dst, source.mapping.address, P),
        (dst) => h.uffd.copy(dst, new Uint8Array(shared, 16, P)),
        (dst) => h.uffd.copy(dst, new DataView(shared, P + 32, P)),
      ];
      expect(withOffset.subarray(64).byteOffset).toBe(64);

      const touch = h.touch(r.page(0), r.length);
      for (let i = 0; i < resolvers.length; i++) {
        const f = await h.nextFault();
        expect(f.address).toBe(r.page(i));
        expect(resolvers[i](f.address)).toEqual({ bytes: P, status: 'complete' });
      }
      expect([...(await h.finished(touch)).values]).toEqual(resolvers.map((_, i) => SEED + i));
      for (let i = 0; i < resolvers.length; i++) expect(r.read(i).equals(pattern(P, SEED + i)), `page ${i}`).toBe(true);
      // copyFromAddress copies; its source keeps its data.
      expect(source.read(0).equals(pattern(P, SEED + 6))).toBe(true);
    }));

  it('a source too short is a RangeError, a source that is not bytes a TypeError; nothing is mapped', () =>
    withHarness(async (h) => {
      const P = PAGE_SIZE;
      const r = h.region('anon', 2);
      h.uffd.register(r.mapping, ['missing']);
      const u = h.uffd;
      const dst = r.page(0);
      expect(() => u.copy(dst, Buffer.alloc(100))).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { length: 2 * P })).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { srcOffset: P + 1 })).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { srcOffset: P })).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { srcOffset: 16 })).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(2 * P), { srcOffset: P, length: 2 * P })).toThrow(RangeError);
      expect(() => u.copy(dst, new Uint8Array(2 * P).subarray(P + 8))).toThrow(RangeError);
      expect(() => u.copy(dst, 'page' as unknown as Buffer)).toThrow(TypeError);
      expect(() => u.copy(dst, [1, 2, 3] as unknown as Buffer)).toThrow(TypeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { srcOffset: -1 })).toThrow(RangeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { length: 1.5 })).toThrow(TypeError);
      expect(() => u.copy(dst + 8, Buffer.alloc(P))).toThrow(RangeError);
      expect(() => u.copy(r.page(2), Buffer.alloc(P))).toThrow(RangeError);
      expect(() => u.copy(r.page(1), Buffer.alloc(2 * P))).toThrow(RangeError);
      expect(() => u.copyFromAddress(dst, 0, P)).toThrow(RangeError);
      expect(() => u.copyFromAddress(dst, r.page(1), 100)).toThrow(RangeError);
      // Mode options are booleans: a truthy string once mapped the page write-protected.
      expect(() => u.copy(dst, Buffer.alloc(P), { writeProtect: 'false' as unknown as boolean })).toThrow(TypeError);
      expect(() => u.copy(dst, Buffer.alloc(P), { dontWake: 1 as unknown as boolean })).toThrow(TypeError);
      expect(() => u.copyFromAddress(dst, r.page(1), P, { dontWake: 'yes' as unknown as boolean })).toThrow(TypeError);
      expect(() => u.copy(dst, Buffer.alloc(P), null as unknown as object)).toThrow(TypeError);

      // None of that mapped anything: the first touch still faults.
      const touch = h.touch(dst, P);
      expect((await h.nextFault()).address).toBe(dst);
      u.copy(dst, pattern(P, SEED));
      expect([...(await h.finished(touch)).values]).toEqual([SEED]);
    }));

  itOnKinds(['hugetlb'], 'a COPY of 4K into a hugetlb range is a RangeError', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['missing']);
      expect(() => h.uffd.copy(r.page(0), Buffer.alloc(PAGE_SIZE))).toThrow(RangeError);
      expect(() => h.uffd.copy(r.page(0) + PAGE_SIZE, Buffer.alloc(r.pageSize))).toThrow(RangeError);
    }),
  );

  it('copyFromAddress reads a mapping the library owns, at any page of it', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 1);
      h.uffd.register(r.mapping, ['missing']);
      const src = Mapping.anonymous(3 * PAGE_SIZE);
      try {
        pattern(3 * PAGE_SIZE, SEED).copy(src.buffer());
        const touch = h.touch(r.page(0), PAGE_SIZE);
        await h.nextFault();
        expect(h.uffd.copyFromAddress(r.page(0), src.address + 2 * PAGE_SIZE, PAGE_SIZE)).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
        expect([...(await h.finished(touch)).values]).toEqual([SEED + (2 * PAGE_SIZE) / 4]);
        expect(r.read(0).equals(Buffer.from(src.buffer(2 * PAGE_SIZE, PAGE_SIZE)))).toBe(true);
      } finally {
        src.unmap();
      }
    }));
});
