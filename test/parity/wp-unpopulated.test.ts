// uffd-unit-tests "wp-unpopulated" on anon (PAGEFAULT_FLAG_WP +
// WP_UNPOPULATED): write-protecting an unpopulated pte installs a marker
// (pagemap shows PM_UFFD_WP); unprotecting clears it; MADV_DONTNEED zaps a
// marker; a write after that raises no userfault and leaves no bit; and a
// read on a marker works (it maps the zero page, still protected).
//
// The accesses are made by a native thread: a userfault there would block it,
// and the handler below fails the case at once instead of resolving it.
import { expect } from 'vitest';
import { readPagemap } from '../../lib/index';
import { parityCase, serveFaults } from './parity-case';

parityCase('wp-unpopulated', 'anon', { features: ['PAGEFAULT_FLAG_WP', 'WP_UNPOPULATED'], modes: ['wp'] }, async ({ areas, uffd, touch }) => {
  const { dst, pageSize } = areas;
  const at = dst.address;
  const entry = () => readPagemap(at, pageSize)[0];
  const noUserfault = async (access: Promise<Uint32Array>): Promise<Uint32Array> => {
    const counts = await serveFaults(uffd, access, (f) => expect.fail(`unexpected userfault at 0x${f.address.toString(16)} (flags ${f.flags})`));
    expect(counts).toEqual({ missing: 0, minor: 0, wp: 0 });
    return access;
  };

  uffd.register(dst, ['wp']);

  // A pte marker on an unpopulated anonymous pte.
  expect(uffd.writeProtect(at, pageSize, true)).toEqual({ bytes: pageSize, status: 'complete' });
  expect(entry()).toMatchObject({ uffdWp: true, present: false });

  // Unprotect on the marker.
  uffd.writeProtect(at, pageSize, false);
  expect(entry()).toMatchObject({ uffdWp: false, present: false });

  // A zap removes the marker.
  uffd.writeProtect(at, pageSize, true);
  dst.madvise('DONTNEED', 0, pageSize);
  expect(entry()).toMatchObject({ uffdWp: false, present: false });

  // A fault after the marker is gone: no userfault, no bit.
  expect([...(await noUserfault(touch(at, pageSize, { write: true, value: 1 })))]).toEqual([1]);
  expect(entry()).toMatchObject({ uffdWp: false, present: true });
  dst.madvise('DONTNEED', 0, pageSize);

  // A read fault on a marker: the zero page, mapped protected.
  uffd.writeProtect(at, pageSize, true);
  expect([...(await noUserfault(touch(at, pageSize)))]).toEqual([0]);
  expect(entry()).toMatchObject({ uffdWp: true, present: true });
  dst.madvise('DONTNEED', 0, pageSize);
  expect(entry()).toMatchObject({ uffdWp: false, present: false });
});
