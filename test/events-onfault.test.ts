// The synchronous fault handler (uffd.onFault) and the two reader modes:
// 'loop' (default: the fd is read on the JS thread's event loop, with a
// watchdog thread) and 'thread' (a native thread reads every batch). Faults
// come from native threads (touchPages); the handler resolves each in the
// tick it is read.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd, type PageFaultEvent } from '../lib';
import { touchPages } from '../lib/testing';
import { describeChild, runChild } from './helpers/child';
import { nextOf, page, useCleanup } from './helpers/events';

const { track } = useCleanup();
const PAGES = 256;

describe('onFault', () => {
  for (const reader of ['loop', 'thread'] as const) {
    it(`resolves every fault of two threads in the handler (reader: '${reader}')`, async () => {
      const uffd = track(Userfaultfd.open({ reader }));
      expect(uffd.readerMode).toBe(reader);
      const m = track(Mapping.anonymous(PAGES * PAGE_SIZE));
      uffd.register(m, ['missing']);
      const seen: PageFaultEvent[] = [];
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      uffd.onFault((e) => {
        seen.push(e);
        const index = (e.address - m.address) / PAGE_SIZE;
        expect(uffd.copy(e.address, page(0x51000000 + index)).status).toBe('complete');
        if (seen.length === PAGES) done();
      });
      const half = (PAGES / 2) * PAGE_SIZE;
      const touched = await Promise.all([touchPages(m.address, half), touchPages(m.address + half, half)]);
      await all;
      uffd.onFault(null);
      expect([...touched[0]!.values, ...touched[1]!.values]).toEqual(Array.from({ length: PAGES }, (_, i) => 0x51000000 + i));
      expect(new Set(seen.map((e) => e.address)).size).toBe(PAGES);
      expect(new Set(seen.map((e) => e.threadId))).toEqual(new Set(touched.map((t) => t.tid)));
      for (const e of seen) expect(e).toMatchObject({ type: 'pagefault', write: false, resolvedByReader: false });
    });
  }

  it('iterators still see every fault; removing the handler hands faults back to them', async () => {
    const uffd = track(Userfaultfd.open());
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const handled: number[] = [];
    uffd.onFault((e) => {
      handled.push(e.address);
      uffd.zeropage(e.address, PAGE_SIZE);
    });
    const first = touchPages(m.address, PAGE_SIZE);
    expect((await nextOf(events, 'pagefault')).address).toBe(m.address);
    await first;
    expect(handled).toEqual([m.address]);

    uffd.onFault(null);
    const second = touchPages(m.address + PAGE_SIZE, PAGE_SIZE);
    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(m.address + PAGE_SIZE);
    expect(handled).toEqual([m.address]);
    uffd.copy(e.address, page(9));
    expect([...(await second).values]).toEqual([9]);
  });

  it('bad input and closed handles', () => {
    const uffd = Userfaultfd.open();
    expect(() => uffd.onFault(42 as never)).toThrow(TypeError);
    expect(() => Userfaultfd.open({ reader: 'fiber' as never })).toThrow(TypeError);
    uffd.close();
    expect(() => uffd.onFault(() => {})).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('a throwing handler: the error is uncaught, the rest of the batch is still handled, nothing hangs', async () => {
    const r = await runChild(
      {
        code: `
const { Userfaultfd, Mapping } = require(${JSON.stringify(require.resolve('../dist'))});
const { touchPages } = require(${JSON.stringify(require.resolve('../dist/testing'))});
const uffd = Userfaultfd.open();
const m = Mapping.anonymous(4 * 4096);
uffd.register(m, ['missing']);
let calls = 0;
process.on('uncaughtException', (err) => {
  console.log(JSON.stringify({ uncaught: err.message }));
  uffd.zeropage(m.address, 4096); // the fault the handler left unresolved
});
uffd.onFault((e) => {
  calls++;
  if (e.address === m.address) throw new Error('boom');
  uffd.zeropage(e.address, 4096);
});
Promise.all([touchPages(m.address, 4096), touchPages(m.address + 4096, 3 * 4096)]).then(([a, b]) => {
  console.log(JSON.stringify({ done: true, values: [...a.values, ...b.values], calls }));
  uffd.close();
});
`,
      },
      { timeoutMs: 20_000 },
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual({ uncaught: 'boom' });
    expect(lines).toContainEqual({ done: true, values: [0, 0, 0, 0], calls: 4 });
  });
});
