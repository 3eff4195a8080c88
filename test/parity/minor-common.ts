// The body shared by uffd-unit-tests "minor", "minor-wp" and
// "minor-collapse" (uffd_minor_test_common). The alias of dst is registered
// MINOR (| WP), and dst (the unregistered mapping of the same file pages) is
// filled: page p with byte p % 255, which must raise no userfault. Reading
// the alias then gives exactly one minor fault per page; the handler flips
// every bit of the page through dst and issues UFFDIO_CONTINUE (with
// CONTINUE_MODE_WP for minor-wp), and a second CONTINUE must give EEXIST.
// The alias must then read the flipped bytes, with minor == nr_pages and
// missing == 0.
import { expect } from 'vitest';
import { readPagemap } from '../../lib/index';
import type { Mapping } from '../../lib/index';
import { serveFaults, type CaseContext } from './parity-case';

export interface MinorOptions {
  /** Register MINOR | WP and continue write-protected (minor-wp). */
  wp: boolean;
  /** The registered mapping; default the areas' dst alias. */
  alias?: Mapping;
}

/** The byte the kernel test expects in page p of the alias: ~(p % 255). */
export const flippedByte = (p: number): number => ~(p % 255) & 0xff;

/** Every byte of `mapping` (resolved pages only) is that of check_memory_contents(). */
export function expectMemoryContents(mapping: Mapping, pageSize: number, nrPages: number): void {
  const expected = new Map<number, Buffer>();
  const all = mapping.buffer(0, nrPages * pageSize);
  for (let p = 0; p < nrPages; p++) {
    const page = all.subarray(p * pageSize, (p + 1) * pageSize);
    const want = flippedByte(p);
    let wanted = expected.get(want);
    if (!wanted) expected.set(want, (wanted = Buffer.alloc(pageSize, want)));
    if (!page.equals(wanted)) {
      expect.fail(`page ${p} of the registered mapping: unexpected contents (first byte 0x${page[0]!.toString(16)}, want 0x${want.toString(16)})`);
    }
  }
}

export async function minorCase({ areas, uffd, touchSplit }: CaseContext, { wp, alias = areas.dstAlias! }: MinorOptions): Promise<void> {
  const { dst, pageSize, nrPages } = areas;
  const length = nrPages * pageSize;
  const ioctls = uffd.register(alias, wp ? ['minor', 'wp'] : ['minor']);
  expect(ioctls.has('CONTINUE')).toBe(true);

  // Populate the unregistered side: no userfault (serveFaults below fails on
  // any event it did not expect, a fault of this thread included).
  dst.madvise('POPULATE_WRITE');
  for (let p = 0; p < nrPages; p++) dst.buffer(p * pageSize, pageSize).fill(p % 255);

  const words = new Uint32Array(dst.arrayBuffer());
  const perPage = pageSize / 4;
  const touched = touchSplit(alias.address, length, pageSize, nrPages >= 64 ? 4 : 2);
  const counts = await serveFaults(uffd, touched, (fault) => {
    if (!fault.minor || fault.wp || fault.write) expect.fail(`unexpected fault flags ${fault.flags} at 0x${fault.address.toString(16)}`);
    const offset = fault.address - alias.address;
    // Prove the page can be changed before it is mapped: flip it through dst.
    for (let w = offset / 4, end = w + perPage; w < end; w++) words[w] = ~words[w]!;
    const mapped = uffd.continue(fault.address, pageSize, { writeProtect: wp });
    if (mapped.status !== 'complete' || mapped.bytes !== pageSize) expect(mapped).toEqual({ bytes: pageSize, status: 'complete' });
    // The error path of CONTINUE on purpose: the page is mapped now.
    const again = uffd.continue(fault.address, pageSize, { writeProtect: wp });
    if (again.status !== 'EEXIST' || again.bytes !== 0) expect(again).toEqual({ bytes: 0, status: 'EEXIST' });
  });
  const values = await touched;
  expect(counts).toEqual({ missing: 0, minor: nrPages, wp: 0 });

  // What the touching threads read (the first word of every 4K)...
  const per4k = pageSize / 4096;
  for (let i = 0; i < values.length; i++) {
    const b = flippedByte(Math.floor(i / per4k));
    if (values[i] !== (b * 0x01010101) >>> 0) expect.fail(`word ${i} read 0x${values[i]!.toString(16)}`);
  }
  // ... and every byte, now that every page is mapped.
  expectMemoryContents(alias, pageSize, nrPages);
  expect(uffd.jsThreadFaultsResolved).toBe(0);

  if (wp) {
    // CONTINUE_MODE_WP mapped every page write-protected.
    const unprotected = readPagemap(alias.address, length).findIndex((e) => !e.present || !e.uffdWp);
    expect(unprotected, 'first 4K page of the alias not mapped write-protected').toBe(-1);
  }
}
