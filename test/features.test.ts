// Userfaultfd.open(): the device and the syscall, userModeOnly, feature
// negotiation (supported vs enabled), and features whose effect a real
// fault shows.
import { closeSync, openSync, readSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FEATURES, PAGE_SIZE, Userfaultfd, type Feature } from '../lib/index';
import { withHarness } from './helpers/harness';
import { pattern } from './helpers/memory';

function openClosed(options: Parameters<typeof Userfaultfd.open>[0]) {
  const u = Userfaultfd.open(options);
  const snapshot = {
    openedVia: u.openedVia,
    userModeOnly: u.userModeOnly,
    supported: new Set(u.supportedFeatures),
    enabled: new Set(u.enabledFeatures),
    ioctls: new Set(u.ioctls),
  };
  u.close();
  return snapshot;
}

describe('open', () => {
  it("opens through /dev/userfaultfd with via: 'device', and by default", () => {
    expect(openClosed({ via: 'device' }).openedVia).toBe('device');
    expect(openClosed({ via: 'auto' }).openedVia).toBe('device');
    expect(openClosed(undefined).openedVia).toBe('device');
  });

  it("opens through userfaultfd(2) with via: 'syscall', with the same features", () => {
    const s = openClosed({ via: 'syscall' });
    expect(s.openedVia).toBe('syscall');
    expect(s.supported).toEqual(openClosed({ via: 'device' }).supported);
  });

  it('the fd allows REGISTER, UNREGISTER and API (UFFD_API_IOCTLS)', () => {
    expect([...openClosed({}).ioctls].sort()).toEqual(['API', 'REGISTER', 'UNREGISTER']);
  });

  it('enables what was asked plus THREAD_ID; the kernel supports more', () => {
    const plain = openClosed({});
    expect(plain.supported.has('THREAD_ID')).toBe(true);
    expect([...plain.enabled]).toEqual(['THREAD_ID']);
    // This machine's kernel (6.18) offers every feature through MOVE.
    for (const f of FEATURES) expect(plain.supported.has(f), f).toBe(true);

    const asked: Feature[] = ['MINOR_SHMEM', 'POISON', 'EXACT_ADDRESS', 'EVENT_FORK'];
    const s = openClosed({ features: asked });
    expect([...s.enabled].sort()).toEqual([...asked, 'THREAD_ID'].sort());
    for (const f of s.enabled) expect(s.supported.has(f)).toBe(true);
    expect(s.supported).toEqual(plain.supported);
  });

  it('an unknown feature name is a TypeError naming it', () => {
    expect(() => Userfaultfd.open({ features: ['NOPE' as Feature] })).toThrow(TypeError);
    expect(() => Userfaultfd.open({ features: ['NOPE' as Feature] })).toThrow(/"NOPE"/);
    expect(() => Userfaultfd.open({ features: ['thread_id' as Feature] })).toThrow(TypeError);
    expect(() => Userfaultfd.open({ features: [42 as unknown as Feature] })).toThrow(TypeError);
    expect(() => Userfaultfd.open({ features: 'MOVE' as unknown as Feature[] })).toThrow(TypeError);
    // Inherited names are not features.
    expect(() => Userfaultfd.open({ features: ['toString' as Feature] })).toThrow(TypeError);
  });

  it('bad options are TypeErrors', () => {
    expect(() => Userfaultfd.open({ via: 'socket' as 'device' })).toThrow(TypeError);
    expect(() => Userfaultfd.open({ userModeOnly: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => Userfaultfd.open({ jsThreadFaults: 'ignore' as 'zero' })).toThrow(TypeError);
    expect(() => Userfaultfd.open(7 as unknown as object)).toThrow(TypeError);
  });

  for (const via of ['device', 'syscall'] as const) {
    it(`a fd opened via ${via} resolves a real fault`, () =>
      withHarness(
        async (h) => {
          expect(h.uffd.openedVia).toBe(via);
          const r = h.region('anon', 1);
          h.uffd.register(r.mapping, ['missing']);
          const touch = h.touch(r.page(0), PAGE_SIZE);
          const f = await h.nextFault();
          expect(f.address).toBe(r.page(0));
          expect(h.uffd.copy(f.address, pattern(PAGE_SIZE, 0xabc0))).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
          expect([...(await h.finished(touch)).values]).toEqual([0xabc0]);
        },
        { via },
      ));
  }

  it('userModeOnly: user-mode faults are delivered, kernel-mode accesses fail with EFAULT', () =>
    withHarness(
      async (h) => {
        expect(h.uffd.userModeOnly).toBe(true);
        const r = h.region('anon', 2);
        h.uffd.register(r.mapping, ['missing']);
        // A user-mode access from a native thread: an ordinary fault.
        const touch = h.touch(r.page(0), PAGE_SIZE);
        const f = await h.nextFault();
        expect(f.address).toBe(r.page(0));
        h.uffd.zeropage(r.page(0), PAGE_SIZE);
        expect([...(await h.finished(touch)).values]).toEqual([0]);
        // The kernel writing into the missing page 1 (read(2) from /dev/zero)
        // is not handled (UFFD_USER_MODE_ONLY): the access fails at once
        // instead of blocking this thread. Without the flag this read
        // would block the JS thread in a fault.
        const fd = openSync('/dev/zero', 'r');
        try {
          expect(() => readSync(fd, r.mapping.buffer(PAGE_SIZE, PAGE_SIZE), 0, PAGE_SIZE, null)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
        } finally {
          closeSync(fd);
        }
        expect(h.uffd.jsThreadFaultsResolved).toBe(0);
      },
      { userModeOnly: true },
    ));

  it('without userModeOnly the flag is off', () => {
    expect(openClosed({}).userModeOnly).toBe(false);
    expect(openClosed({ userModeOnly: false }).userModeOnly).toBe(false);
  });

  it('THREAD_ID: the fault carries the id of the faulting native thread', () =>
    withHarness(async (h) => {
      const r = h.region('anon', 1);
      h.uffd.register(r.mapping, ['missing']);
      const touch = h.touch(r.page(0), PAGE_SIZE);
      const f = await h.nextFault();
      h.uffd.zeropage(r.page(0), PAGE_SIZE);
      const { tid } = await h.finished(touch);
      expect(tid).toBeGreaterThan(0);
      expect(tid).not.toBe(process.pid);
      expect(f.threadId).toBe(tid);
    }));

  for (const exact of [false, true]) {
    it(`EXACT_ADDRESS ${exact ? 'on: the fault reports the byte touched' : 'off: the fault reports the page'}`, () =>
      withHarness(
        async (h) => {
          const r = h.region('anon', 1);
          h.uffd.register(r.mapping, ['missing']);
          const touch = h.touch(r.page(0) + 0x124, 4);
          const f = await h.nextFault();
          expect(f.address).toBe(exact ? r.page(0) + 0x124 : r.page(0));
          h.uffd.copy(r.page(0), pattern(PAGE_SIZE, 0x7000));
          // Word 0x124 / 4 of the pattern.
          expect([...(await h.finished(touch)).values]).toEqual([0x7000 + 0x124 / 4]);
        },
        exact ? { features: ['EXACT_ADDRESS'] } : {},
      ));
  }
});
