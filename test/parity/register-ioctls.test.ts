// uffd-unit-tests "register-ioctls": for each of the 8 (missing, wp, minor)
// mode combinations, register one page of dst. No mode at all, and MINOR on
// anonymous memory, must fail with EINVAL; otherwise the ioctls the kernel
// allows on the range must include WAKE, plus COPY for missing, WRITEPROTECT
// for wp and CONTINUE for minor (ZEROPAGE is the zeropage case's).
//
// The public register() refuses an empty mode list itself (TypeError, before
// any system call), so the kernel's own answer to mode 0 is asked through the
// raw facility of userfaultfd/testing, on a uffd with the same features.
import { constants } from 'node:os';
import { expect } from 'vitest';
import type { Feature, RegisterMode } from '../../lib/index';
import { UFFD_API, rawUffd } from '../../lib/testing/index';
import { FEATURE_BITS } from '../../lib/index';
import { PARITY_MEMORY } from './areas';
import { parityCase } from './parity-case';

const { EINVAL } = constants.errno;
const REQUIRED: Feature[] = ['MISSING_HUGETLBFS', 'MISSING_SHMEM', 'PAGEFAULT_FLAG_WP', 'WP_HUGETLBFS_SHMEM', 'MINOR_HUGETLBFS', 'MINOR_SHMEM'];

for (const memory of PARITY_MEMORY) {
  const modes: RegisterMode[] = memory === 'anon' ? ['missing', 'wp'] : ['missing', 'wp', 'minor'];
  parityCase('register-ioctls', memory, { features: REQUIRED, modes }, async ({ areas, uffd }) => {
    const page = { address: areas.dst.address, length: areas.pageSize };
    let checked = 0;
    for (const miss of [false, true]) {
      for (const wp of [false, true]) {
        for (const minor of [false, true]) {
          const combo: RegisterMode[] = [...(miss ? ['missing' as const] : []), ...(wp ? ['wp' as const] : []), ...(minor ? ['minor' as const] : [])];
          const what = `register(${JSON.stringify(combo)})`;
          if (combo.length === 0) {
            expect(() => uffd.register(page, combo), what).toThrow(TypeError);
            const raw = rawUffd.open();
            try {
              let features = 0n;
              for (const f of REQUIRED) features |= 1n << BigInt(FEATURE_BITS[f]);
              expect(rawUffd.api(raw, UFFD_API, features).errno).toBe(0);
              expect(rawUffd.register(raw, page.address, page.length, 0), what).toEqual({ errno: -EINVAL, code: 'EINVAL', ioctls: 0n });
            } finally {
              rawUffd.close(raw);
            }
            checked++;
            continue;
          }
          if (minor && memory === 'anon') {
            expect(() => uffd.register(page, combo), what).toThrow(expect.objectContaining({ code: 'EINVAL', errno: -EINVAL, syscall: 'ioctl(UFFDIO_REGISTER)' }));
            checked++;
            continue;
          }
          const ioctls = uffd.register(page, combo);
          expect(ioctls.has('WAKE'), `${what} allows WAKE`).toBe(true);
          if (miss) expect(ioctls.has('COPY'), `${what} allows COPY`).toBe(true);
          if (wp) expect(ioctls.has('WRITEPROTECT'), `${what} allows WRITEPROTECT`).toBe(true);
          if (minor) expect(ioctls.has('CONTINUE'), `${what} allows CONTINUE`).toBe(true);
          uffd.unregister(page);
          checked++;
        }
      }
    }
    expect(checked).toBe(8);
  });
}
