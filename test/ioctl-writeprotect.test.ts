// UFFDIO_WRITEPROTECT: protecting populated pages of a WP range, the WP
// faults a writing native thread raises, and clearing the protection to
// resolve them (waking, or DONTWAKE then WAKE), on every memory kind.
import { describe, expect } from 'vitest';
import { stillBlocked, waitUntilBlockedInFault, withHarness } from './helpers/harness';
import { ALL_KINDS, itOnKinds, pattern, patternWithFirstWord } from './helpers/memory';

const SEED = 0x3e000000;
const WRITTEN = 0xabad1dea;

describe('UFFDIO_WRITEPROTECT', () => {
  itOnKinds(ALL_KINDS, 'a write to a protected page is a WP fault; clearing the protection lets it complete', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.prefill(0, pattern(r.pageSize, SEED));
      expect(h.uffd.register(r.mapping, ['wp']).has('WRITEPROTECT')).toBe(true);
      expect(h.uffd.writeProtect(r.page(0), r.pageSize, true)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      const f = await h.nextFault();
      expect(f).toMatchObject({ type: 'pagefault', address: r.page(0), write: true, wp: true, minor: false, resolvedByReader: false });
      // The write waits for us: the page still holds the old data.
      expect(touch.settled).toBe(false);
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
      expect(h.uffd.writeProtect(r.page(0), r.pageSize, false)).toEqual({ bytes: r.pageSize, status: 'complete' });
      const t = await h.finished(touch);
      expect(f.threadId).toBe(t.tid);
      expect([...t.values]).toEqual([WRITTEN]);
      expect(r.read(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
      if (r.alias) expect(r.readAlias(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'reads of a protected page do not fault', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      r.prefill(0, pattern(r.pageSize, SEED));
      r.prefill(1, pattern(r.pageSize, SEED + 1));
      h.uffd.register(r.mapping, ['wp']);
      h.uffd.writeProtect(r.mapping.address, r.length, true);
      // Should a read fault after all, the fault loop records it and lets it go.
      const faultLoop = h.serve((f) => h.uffd.writeProtect(f.address, r.pageSize, false));
      const t = await h.finished(h.touch(r.page(0), r.length, { stride: r.pageSize }));
      await faultLoop.stop();
      expect(faultLoop.faults).toEqual([]);
      expect([...t.values]).toEqual([SEED, SEED + 1]);
    }),
  );

  itOnKinds(ALL_KINDS, 'protection is per page: clearing one page leaves the next protected', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 2);
      r.prefill(0, pattern(r.pageSize, SEED));
      r.prefill(1, pattern(r.pageSize, SEED + 1));
      h.uffd.register(r.mapping, ['wp']);
      expect(h.uffd.writeProtect(r.mapping.address, r.length, true)).toEqual({ bytes: r.length, status: 'complete' });
      const touch = h.touch(r.page(0), r.length, { stride: r.pageSize, write: true, value: WRITTEN });
      expect(await h.nextFault()).toMatchObject({ address: r.page(0), wp: true });
      h.uffd.writeProtect(r.page(0), r.pageSize, false);
      expect(await h.nextFault()).toMatchObject({ address: r.page(1), wp: true });
      h.uffd.writeProtect(r.page(1), r.pageSize, false);
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN, WRITTEN + 1]);
      expect(r.read(1).equals(patternWithFirstWord(r.pageSize, SEED + 1, WRITTEN + 1))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'protecting again makes the next write fault again', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.prefill(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['wp']);
      for (const value of [WRITTEN, WRITTEN + 0x100]) {
        h.uffd.writeProtect(r.page(0), r.pageSize, true);
        const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value });
        expect(await h.nextFault()).toMatchObject({ address: r.page(0), wp: true, write: true });
        h.uffd.writeProtect(r.page(0), r.pageSize, false);
        expect([...(await h.finished(touch)).values]).toEqual([value]);
      }
      expect(r.read(0).equals(patternWithFirstWord(r.pageSize, SEED, WRITTEN + 0x100))).toBe(true);
    }),
  );

  itOnKinds(ALL_KINDS, 'clearing with DONTWAKE leaves the thread blocked until WAKE', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      r.prefill(0, pattern(r.pageSize, SEED));
      h.uffd.register(r.mapping, ['wp']);
      h.uffd.writeProtect(r.page(0), r.pageSize, true);
      const touch = h.touch(r.page(0), r.pageSize, { stride: r.pageSize, write: true, value: WRITTEN });
      const f = await h.nextFault();
      await waitUntilBlockedInFault(f.threadId);
      expect(h.uffd.writeProtect(r.page(0), r.pageSize, false, { dontWake: true })).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect(await stillBlocked(touch, f.threadId)).toBe(true);
      expect(r.read(0).equals(pattern(r.pageSize, SEED))).toBe(true);
      expect(h.uffd.wake(r.page(0), r.pageSize)).toEqual({ bytes: r.pageSize, status: 'complete' });
      expect([...(await h.finished(touch)).values]).toEqual([WRITTEN]);
    }),
  );

  itOnKinds(ALL_KINDS, 'a range registered without WP is an ENOENT errno error', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      expect(h.uffd.register(r.mapping, ['missing']).has('WRITEPROTECT')).toBe(false);
      let err: unknown;
      try {
        h.uffd.writeProtect(r.page(0), r.pageSize, true);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'ioctl(UFFDIO_WRITEPROTECT)', address: r.page(0), length: r.pageSize });
    }),
  );

  itOnKinds(['anon'], 'bad arguments are TypeError / RangeError', (kind) =>
    withHarness(async (h) => {
      const r = h.region(kind, 1);
      h.uffd.register(r.mapping, ['wp']);
      expect(() => h.uffd.writeProtect(r.page(0), r.pageSize, 1 as unknown as boolean)).toThrow(TypeError);
      expect(() => h.uffd.writeProtect(r.page(0) + 1, r.pageSize, true)).toThrow(RangeError);
      expect(() => h.uffd.writeProtect(r.page(0), 2 * r.pageSize, true)).toThrow(RangeError);
      expect(() => h.uffd.writeProtect(r.page(0), 0, true)).toThrow(RangeError);
    }),
  );
});
