// uffd-unit-tests "poison" (uffd_poison_test) on every memory type.
//
// Four pages of dst are registered MISSING and must advertise COPY and
// POISON. A native thread reads every byte of each page, catching SIGBUS;
// the monitor resolves even pages with UFFDIO_POISON and odd pages with
// UFFDIO_COPY of zeros. Odd pages must read all zeros; even pages must
// raise SIGBUS: exactly two, at the page.
import { expect, it } from 'vitest';
import { Userfaultfd } from '../../lib';
import { SIGBUS_CODES, touchCatchingSigbus } from '../../lib/testing';
import { allocateAreas, caseName, PARITY_MEMORY } from './areas';
import { caseSetup, expectEach, monitorUntil } from './sigbus-events-common';

/** UFFD_POISON_TEST_NPAGES: covers odd and even pages with the fewest MCE messages in the kernel log. */
const POISON_PAGES = 4;

for (const memory of PARITY_MEMORY) {
  it(caseName('poison', memory), async (ctx) => {
    const setup = caseSetup(memory, ['POISON'], ['missing']);
    if (setup.skip) return ctx.skip(setup.skip);

    const areas = allocateAreas(memory);
    const { dst, src, pageSize } = areas;
    const length = POISON_PAGES * pageSize;
    const uffd = Userfaultfd.open({ features: setup.features });
    try {
      const ioctls = uffd.register({ address: dst.address, length }, ['missing']);
      expect([...ioctls]).toEqual(expect.arrayContaining(['COPY', 'POISON']));
      src.buffer(0, length).fill(0);

      const faults: { page: number; write: boolean; wp: boolean; minor: boolean }[] = [];
      const touching = touchCatchingSigbus(dst.address, length, { stride: pageSize, scan: true });
      const touched = await monitorUntil(uffd.events(), touching, (e) => {
        expect(e.type).toBe('pagefault');
        if (e.type !== 'pagefault') return;
        const page = Math.floor((e.address - dst.address) / pageSize);
        faults.push({ page, write: e.write, wp: e.wp, minor: e.minor });
        const address = dst.address + page * pageSize;
        const resolved = page % 2 === 1 ? uffd.copyFromAddress(address, src.address + page * pageSize, pageSize) : uffd.poison(address, pageSize);
        expect(resolved).toEqual({ bytes: pageSize, status: 'complete' });
      });

      // One missing (read) fault per page, in order.
      expect(faults).toEqual([0, 1, 2, 3].map((page) => ({ page, write: false, wp: false, minor: false })));
      const even = (i: number) => i % 2 === 0;
      expectEach('signals per page', touched.signals, (i) => (even(i) ? 1 : 0));
      expect(touched.signals.reduce((a, b) => a + b, 0)).toBe(POISON_PAGES / 2);
      // A poisoned page is BUS_MCEERR_AR with CONFIG_MEMORY_FAILURE, else a plain BUS_ADRERR.
      const poisonCodes: number[] = [SIGBUS_CODES.BUS_MCEERR_AR, SIGBUS_CODES.BUS_ADRERR];
      expectEach('si_code', touched.codes, (i) => (even(i) ? (poisonCodes.includes(touched.codes[i]) ? touched.codes[i] : poisonCodes[0]) : 0));
      expectEach('si_addr', touched.faultAddresses, (i) => (even(i) ? dst.address + i * pageSize : 0));
      // Odd pages were read whole, and are zero.
      expectEach('pages read', touched.completed, (i) => (even(i) ? 0 : 1));
      expectEach('nonzero words', touched.nonzeroWords, () => 0);
      expectEach('first words', touched.values, () => 0);
    } finally {
      uffd.close();
      areas.dispose();
    }
  });
}
