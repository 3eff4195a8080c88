// remove, remap and unmap events produced by the JavaScript thread itself
// (Mapping#madvise, #remap, #unmap). Such a call blocks in the kernel until
// the event is read; it returns only because the native reader thread reads
// continuously, whatever JavaScript does. If that ever broke, the JS thread
// would hang, so this runs in a child process killed by pid on a timeout.
// (The same events from a forked child: test/events-fork.test.ts.)
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../lib';
import { resultOf, runScript } from './helpers/child';

const script = `
const { Userfaultfd, Mapping, MemoryFile } = lib;
const P = ${PAGE_SIZE};
const regs = (u) => u.registrations.map((r) => [r.start, r.end]);
(async () => {
  const out = {};
  const uffd = Userfaultfd.open({ features: ['EVENT_REMOVE', 'EVENT_REMAP', 'EVENT_UNMAP'] });
  const events = uffd.events();
  const next = async () => (await events.next()).value;

  const m = Mapping.anonymous(4 * P);
  uffd.register(m, ['missing']);
  out.a = m.address;
  m.madvise('DONTNEED', P, 2 * P);
  out.remove = await next();

  const file = MemoryFile.memfd(2 * P);
  const shm = file.map();
  uffd.register(shm, ['missing']);
  out.s = shm.address;
  shm.madvise('REMOVE', P, P);
  out.shmemRemove = await next();

  // Move m onto an address just freed.
  const hole = Mapping.anonymous(4 * P);
  out.t = hole.address;
  hole.unmap();
  out.remapReturned = m.remap(4 * P, { address: out.t });
  out.remap = await next();
  out.remapOldUnmapped = await next();
  out.registrationsAfterRemap = regs(uffd);

  // The registration followed in the kernel and in the library.
  const touching = testing.touchPages(out.t + 2 * P + 8, 4);
  const fault = await next();
  out.faultAddress = fault.address;
  out.copy = uffd.copy(fault.address, Buffer.alloc(P, 0x2a));
  out.touched = [...(await touching).values];

  m.unmap();
  out.unmap = await next();
  shm.unmap();
  out.shmemUnmap = await next();
  out.registrationsAfterUnmap = regs(uffd);
  console.log('RESULT ' + JSON.stringify(out));
  uffd.close();
  file.close();
})().catch((err) => { console.error(err); process.exit(1); });
`;

describe('non-cooperative events from the JS thread', () => {
  it('madvise DONTNEED / REMOVE, mremap and munmap each return and deliver their event', async () => {
    const outcome = await runScript(script);
    expect(outcome.timedOut, outcome.stderr).toBe(false);
    expect(outcome.code, outcome.stderr).toBe(0);
    const r = resultOf<Record<string, any>>(outcome);
    const { a, s, t } = r as { a: number; s: number; t: number };
    const P = PAGE_SIZE;

    expect(r.remove).toEqual({ type: 'remove', start: a + P, end: a + 3 * P });
    expect(r.shmemRemove).toEqual({ type: 'remove', start: s + P, end: s + 2 * P });

    expect(r.remapReturned).toBe(t);
    expect(r.remap).toEqual({ type: 'remap', from: a, to: t, length: 4 * P });
    // With EVENT_UNMAP on, the kernel also reports mremap's old range.
    expect(r.remapOldUnmapped).toEqual({ type: 'unmap', start: a, end: a + 4 * P });
    expect(r.registrationsAfterRemap).toEqual([[s, s + 2 * P], [t, t + 4 * P]].sort((x, y) => x[0] - y[0]));

    expect(r.faultAddress).toBe(t + 2 * P);
    expect(r.copy).toEqual({ bytes: P, status: 'complete' });
    expect(r.touched).toEqual([0x2a2a2a2a]);

    expect(r.unmap).toEqual({ type: 'unmap', start: t, end: t + 4 * P });
    expect(r.shmemUnmap).toEqual({ type: 'unmap', start: s, end: s + 2 * P });
    expect(r.registrationsAfterUnmap).toEqual([]);
  });
});
