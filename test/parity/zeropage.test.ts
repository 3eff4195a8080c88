// uffd-unit-tests "zeropage": register one page of dst (and of its alias, if
// any) MISSING and read whether UFFDIO_ZEROPAGE is allowed there. If it is,
// ZEROPAGE must map the whole page, the page must read as zeros, and a retry
// through the alias must find it there (EEXIST). If it is not (hugetlb), the
// ioctl must fail with EINVAL.
//
// The C suite's shmem-private maps MAP_SHARED, so its alias retry always
// sees the page. Ours is really private: the zero page is dst's own and the
// file stays a hole, so the retry through the (shared) alias maps a page
// there ('complete'), while a retry on dst itself gives EEXIST. For anon the
// kernel's alias_mapping is the identity: the retry is on dst.
import { constants } from 'node:os';
import { expect } from 'vitest';
import { PARITY_MEMORY } from './areas';
import { parityCase } from './parity-case';

const { EINVAL } = constants.errno;

for (const memory of PARITY_MEMORY) {
  parityCase('zeropage', memory, { features: [], modes: ['missing'] }, async ({ areas, uffd }) => {
    const size = areas.pageSize;
    const dst = { address: areas.dst.address, length: size };
    const hasZeropage = uffd.register(dst, ['missing']).has('ZEROPAGE');
    const alias = areas.dstAlias ? { address: areas.dstAlias.address, length: size } : undefined;
    if (alias) uffd.register(alias, ['missing']);
    expect(hasZeropage).toBe(!memory.startsWith('hugetlb'));

    if (!hasZeropage) {
      expect(() => uffd.zeropage(dst.address, size)).toThrow(expect.objectContaining({ code: 'EINVAL', errno: -EINVAL, syscall: 'ioctl(UFFDIO_ZEROPAGE)' }));
    } else {
      expect(uffd.zeropage(dst.address, size)).toEqual({ bytes: size, status: 'complete' });
      if (memory === 'shmem-private') {
        expect(uffd.zeropage(dst.address, size)).toEqual({ bytes: 0, status: 'EEXIST' });
        expect(uffd.zeropage(alias!.address, size)).toEqual({ bytes: size, status: 'complete' });
      } else {
        expect(uffd.zeropage((alias ?? dst).address, size)).toEqual({ bytes: 0, status: 'EEXIST' });
      }
      // Mapped now: reading from this thread raises no fault.
      expect(areas.dst.buffer(0, size).equals(Buffer.alloc(size))).toBe(true);
      if (alias) expect(areas.dstAlias!.buffer(0, size).equals(Buffer.alloc(size))).toBe(true);
    }
    uffd.unregister(dst);
    if (alias) uffd.unregister(alias);
    expect(uffd.registrations).toEqual([]);
  });
}
