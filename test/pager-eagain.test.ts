// The pager's EAGAIN path made to happen, not hoped for: reading is paused,
// a native thread's madvise(DONTNEED) blocks on its unread REMOVE event (the
// kernel's mmap_changing window: a probe ZEROPAGE on a spare page answers
// EAGAIN), another thread faults on a served page, then reading resumes. The
// reader reads the fault and the REMOVE in one batch; a COPY issued before
// the madvise thread has left the window gets EAGAIN, and the fault must be
// deferred and retried, not lost. Rounds repeat until the pager counted an
// EAGAIN, each round checking the value the thread read. Child process: a
// lost fault would hang.
import { describe, expect, it } from 'vitest';
import { describeChild, resultOf, runScript } from './helpers/child';

describe('Pager EAGAIN', () => {
  it('a fault whose COPY meets a changing mapping is deferred and retried: the thread reads the source, no hang', async () => {
    const r = await runScript(
      `
      const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
      (async () => {
        const pages = 64, length = pages * PAGE_SIZE;
        const data = Buffer.alloc(length);
        for (let i = 0; i < length; i += 4) data.writeUInt32LE(i + 1, i);
        const uffd = Userfaultfd.open({ features: ['EVENT_REMOVE'] });
        const m = Mapping.anonymous(length + PAGE_SIZE);
        uffd.register(m, ['missing']);
        const pager = Pager.create(uffd, { readAhead: false, afterRemove: 'source' });
        pager.serve({ address: m.address, length }, { kind: 'buffer', buffer: data });
        const spare = m.address + length;  // registered, not served: the probe
        const wrong = [];
        let rounds = 0;
        for (; rounds < 500 && pager.stats().eagain === 0; rounds++) {
          uffd.pauseReading();
          const mad = testing.madviseInThread(m.address, 8 * PAGE_SIZE, 'DONTNEED');
          while (uffd.zeropage(spare, PAGE_SIZE).status !== 'EAGAIN') await new Promise((r) => setImmediate(r));
          const page = 16 + (rounds % 40);
          const touch = testing.touchPages(m.address + page * PAGE_SIZE, PAGE_SIZE);
          await new Promise((r) => setTimeout(r, 5));  // let the fault be queued behind the REMOVE
          uffd.resumeReading();
          const [madvised, touched] = await Promise.all([mad.done, touch]);
          if (madvised.errno !== 0 || touched.values[0] !== data.readUInt32LE(page * PAGE_SIZE)) wrong.push({ page, madvised, value: touched.values[0] });
          m.madvise('DONTNEED', 16 * PAGE_SIZE, 40 * PAGE_SIZE);
        }
        // Everything still served right afterwards.
        await testing.touchPages(m.address, length);
        const whole = Buffer.from(m.buffer(0, length)).equals(data);
        const s = pager.stats();
        console.log('RESULT ' + JSON.stringify({ eagain: s.eagain, failures: s.failures, wrong, whole, rounds }));
        pager.close(); uffd.close(); m.unmap();
      })();`,
      60_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    const res = resultOf<{ eagain: number; failures: number; wrong: unknown[]; whole: boolean; rounds: number }>(r);
    expect(res.eagain, `no EAGAIN in ${res.rounds} rounds`).toBeGreaterThan(0);
    expect(res).toMatchObject({ failures: 0, wrong: [], whole: true });
  });
});
