// The read-ahead window's exact growth, as documented (CRIU-like): it starts
// at 64 KiB and doubles while faults are sequential, up to the maximum (4 MiB
// by default), and stays there. A sequential touch of N pages therefore takes
// a computable number of faults. Synchronous read-ahead here: with
// `async` (the default) a thread that catches up with the background inside
// a window takes one fault more there (pager-readahead-async.test.ts).
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Pager, Userfaultfd, type PagerOptions } from '../lib';
import { touchPages } from '../lib/testing';

/** Faults for a sequential touch of `pages` pages: windows min, 2·min, … capped at max. */
function expectedFaults(pages: number, min: number, max: number): number {
  let faults = 0;
  let window = min / PAGE_SIZE;
  for (let done = 0; done < pages; faults++) {
    done += Math.min(window, pages - done);
    window = Math.min(window * 2, max / PAGE_SIZE);
  }
  return faults;
}

async function sequentialTouch(pages: number, readAhead: PagerOptions['readAhead']) {
  const uffd = Userfaultfd.open();
  const m = Mapping.anonymous(pages * PAGE_SIZE);
  try {
    uffd.register(m, ['missing']);
    const pager = Pager.create(uffd, { readAhead });
    pager.serve(m, { kind: 'zero' });
    await touchPages(m.address, m.length);
    const { faults, readAheadPages } = pager.stats();
    pager.close();
    return { faults, readAheadPages };
  } finally {
    uffd.close();
    m.unmap();
  }
}

describe('Pager read-ahead window', () => {
  it('default sizes: 64 KiB doubling to 4 MiB, then 4 MiB windows (16 MiB in 10 faults)', async () => {
    const pages = 4096;
    expect(expectedFaults(pages, 64 << 10, 4 << 20)).toBe(10);
    expect(await sequentialTouch(pages, { async: false })).toEqual({ faults: 10, readAheadPages: pages - 10 });
  });

  it('{ min: 64K, max: 256K }: the cap holds (16 MiB in 66 faults)', async () => {
    const pages = 4096;
    expect(expectedFaults(pages, 64 << 10, 256 << 10)).toBe(66);
    expect(await sequentialTouch(pages, { min: 64 << 10, max: 256 << 10, async: false })).toEqual({ faults: 66, readAheadPages: pages - 66 });
  });
});
