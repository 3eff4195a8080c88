// forkChild() steps 40+ (userfaultfd/testing): 'readSigbus' (reads that
// survive SIGBUS in the child), 'readWriteBack' and 'scanZero'. Bad steps are
// TypeError / RangeError before any fork; the rest run in real children.
import { ftruncateSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Mapping, MemoryFile, PAGE_SIZE, Userfaultfd } from '../lib';
import { forkChild, SIGBUS_CODES, type ForkStep } from '../lib/testing';
import { nextOf, page, useCleanup } from './helpers/events';
import { useForkedChildren } from './helpers/fork';

const { track } = useCleanup();
const fork = useForkedChildren();
const P = PAGE_SIZE;

describe('forkChild steps readSigbus, readWriteBack, scanZero', () => {
  it('rejects bad steps with TypeError / RangeError', () => {
    const a = 0x10000;
    const bad: [unknown[], ErrorConstructor, RegExp][] = [
      [[{ op: 'readSigbus', length: 4 }], TypeError, /steps\[0\]\.address must be an integer/],
      [[{ op: 'readSigbus', address: a, length: 0 }], RangeError, /steps\[0\]\.length must be between 1/],
      [[{ op: 'readSigbus', address: a, length: P, stride: 2 }], RangeError, /steps\[0\]\.stride must be between 4/],
      [[{ op: 'readWriteBack', address: a, length: P, stride: 'x' }], TypeError, /steps\[0\]\.stride must be an integer/],
      [[{ op: 'readWriteBack', address: -1, length: P }], RangeError, /steps\[0\]\.address must be between 1/],
      [[{ op: 'read', address: a, length: P }, { op: 'scanZero', address: a, length: 1.5 }], TypeError, /steps\[1\]\.length must be an integer/],
      [[{ op: 'scanZero', address: a }], TypeError, /steps\[0\]\.length must be an integer/],
      [[{ op: 'readsigbus', address: a, length: P }], TypeError, /steps\[0\]\.op must be one of .*'readSigbus', 'readWriteBack', 'scanZero'/],
      // Five report words per stride.
      [[{ op: 'readSigbus', address: a, length: 2 ** 22 * 4, stride: 4 }], RangeError, /more than 16777216 values/],
      [[{ op: 'readWriteBack', address: a, length: 2 ** 24 * 4 + 4, stride: 4 }], RangeError, /more than 16777216 values/],
    ];
    for (const [steps, type, message] of bad) {
      expect(() => forkChild(steps as ForkStep[]), JSON.stringify(steps)).toThrow(type);
      expect(() => forkChild(steps as ForkStep[])).toThrow(message);
    }
  });

  it('readSigbus: pages past the end of a truncated file are counted and skipped; a later plain read of one still kills the child', async () => {
    const file = track(MemoryFile.memfd(4 * P));
    const m = track(file.map());
    for (let i = 0; i < 4; i++) m.buffer().writeUInt32LE(50 + i, i * P);
    ftruncateSync(file.fd, 2 * P);
    const r = await fork([
      { op: 'read', address: m.address, length: P },
      { op: 'readSigbus', address: m.address, length: 4 * P },
      { op: 'readSigbus', address: m.address + 3 * P, length: 8, stride: 4 },
      { op: 'read', address: m.address + 3 * P, length: 4 },
    ]).exited;
    // The last step got the default action of a genuine SIGBUS.
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGBUS' });
    expect([...r.values]).toEqual([50]);
    expect(r.sigbusReads).toHaveLength(2);
    const [all, twice] = r.sigbusReads ?? [];
    expect(all.step).toBe(1);
    expect([...all.values]).toEqual([50, 51, 0, 0]);
    expect([...all.signals]).toEqual([0, 0, 1, 1]);
    expect([...all.codes]).toEqual([0, 0, SIGBUS_CODES.BUS_ADRERR, SIGBUS_CODES.BUS_ADRERR]);
    expect([...all.faultAddresses]).toEqual([0, 0, m.address + 2 * P, m.address + 3 * P]);
    expect(twice.step).toBe(2);
    expect([...twice.signals]).toEqual([1, 1]);
    expect([...twice.faultAddresses]).toEqual([m.address + 3 * P, m.address + 3 * P + 4]);
  });

  it('readSigbus: a child killed part way reports the strides it got through', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
    const m = track(Mapping.anonymous(3 * P));
    uffd.register(m, ['missing']);
    uffd.copy(m.address, page(7));
    const events = uffd.events();
    const child = fork([{ op: 'readSigbus', address: m.address, length: 3 * P }]);
    const childUffd = track((await nextOf(events, 'fork')).uffd);
    // The child blocks in its fault on page 1 (no SIGBUS feature): kill it there.
    await nextOf(childUffd.events(), 'pagefault');
    child.kill('SIGKILL');
    const r = await child.exited;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(r.sigbusReads).toHaveLength(1);
    expect([...(r.sigbusReads ?? [])[0].values]).toEqual([7]);
  });

  it('readWriteBack: reports each value like read, and really writes it (a WP fault in the child)', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK', 'PAGEFAULT_FLAG_WP'] }));
    const m = track(Mapping.anonymous(2 * P));
    uffd.register(m, ['missing', 'wp']);
    uffd.copy(m.address, page(31, 2 * P), { writeProtect: true });
    const events = uffd.events();
    const child = fork([{ op: 'readWriteBack', address: m.address, length: 2 * P }]);
    const childUffd = track((await nextOf(events, 'fork')).uffd);
    const childEvents = childUffd.events();
    for (const offset of [0, P]) {
      const f = await nextOf(childEvents, 'pagefault');
      expect([f.address, f.wp, f.write]).toEqual([m.address + offset, true, true]);
      childUffd.writeProtect(f.address, P, false);
    }
    const r = await child.exited;
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    expect([...r.values]).toEqual([31, 31]);
  });

  it('readWriteBack on a read-only mapping: the child dies of SIGSEGV at the first write', async () => {
    const m = track(Mapping.anonymous(2 * P));
    m.buffer().writeUInt32LE(5, 0);
    m.protect('read');
    const r = await fork([
      { op: 'read', address: m.address, length: 2 * P },
      { op: 'readWriteBack', address: m.address, length: 2 * P },
    ]).exited;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGSEGV' });
    expect([...r.values]).toEqual([5, 0]);
  });

  it('scanZero: counts the nonzero 32-bit words and finds the first', async () => {
    const m = track(Mapping.anonymous(4 * P));
    const b = m.buffer();
    b.writeUInt32LE(1, P + 8);
    b.writeUInt32LE(0xffffffff, 3 * P + 4);
    b.writeUInt8(1, 3 * P + 100);
    const r = await fork([
      { op: 'scanZero', address: m.address, length: P },
      { op: 'scanZero', address: m.address, length: 4 * P },
      { op: 'read', address: m.address + P, length: 12, stride: 8 },
      { op: 'scanZero', address: m.address + 2 * P, length: 2 * P },
    ]).exited;
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    expect([...r.values]).toEqual([0, 1]);
    expect(r.zeroScans).toEqual([
      { step: 0, nonzeroWords: 0, firstNonzeroOffset: -1 },
      { step: 1, nonzeroWords: 3, firstNonzeroOffset: P + 8 },
      { step: 3, nonzeroWords: 2, firstNonzeroOffset: P + 4 },
    ]);
  });
});
