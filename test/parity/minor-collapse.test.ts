// uffd-unit-tests "minor-collapse" on shmem: the minor flow (minor-common.ts),
// then MADV_COLLAPSE of the registered range. It must become PMD-mapped
// (ShmemPmdMapped in /proc/self/smaps = the whole 32 MiB, 16 × 2M) with the
// data unchanged. As in the kernel test, the case is skipped only if
// MADV_COLLAPSE itself fails.
//
// A PMD can map the range only if its address and file offset agree modulo
// 2 MiB. The kernel test maps its alias at a 2 MiB-aligned hint; memfd
// mappings are not aligned by the kernel when shmem THP is "never", so the
// alias registered here is mapped at an aligned address too.
import { expect } from 'vitest';
import { HUGE_2M, Mapping, type MemoryFile } from '../../lib/index';
import { AREA_SIZE } from './areas';
import { expectMemoryContents, minorCase } from './minor-common';
import { parityCase, smapsField } from './parity-case';

/** A mapping of [offset, offset + length) of the areas' file at a 2 MiB-aligned address. */
function alignedAlias(file: MemoryFile, offset: number, length: number): Mapping {
  const reservation = Mapping.anonymous(length + HUGE_2M, { protection: 'none' });
  const aligned = Math.ceil(reservation.address / HUGE_2M) * HUGE_2M;
  reservation.unmap();
  const alias = file.map({ offset, length, address: aligned });
  if (alias.address !== aligned) {
    alias.unmap();
    throw new Error(`could not map the alias at 0x${aligned.toString(16)}`);
  }
  return alias;
}

parityCase('minor-collapse', 'shmem', { features: ['MINOR_SHMEM'], modes: ['minor'] }, async (c) => {
  const { areas, uffd } = c;
  const alias = alignedAlias(areas.file!, AREA_SIZE, AREA_SIZE);
  try {
    await minorCase(c, { wp: false, alias });
    try {
      alias.madvise('COLLAPSE');
    } catch (err) {
      c.skip(`skip: MADV_COLLAPSE failed: ${(err as Error).message}`);
      return;
    }
    expect(smapsField(alias.address, 'ShmemPmdMapped')).toBe(((areas.nrPages * areas.pageSize) / HUGE_2M) * (HUGE_2M / 1024));
    // No userfault here: every page is mapped. Only proves nothing was corrupted.
    expectMemoryContents(alias, areas.pageSize, areas.nrPages);
    expect(uffd.jsThreadFaultsResolved).toBe(0);
  } finally {
    // munmap unregisters it; a touching thread still on it keeps it mapped
    // until the uffd is closed and the thread is done (it pins the region).
    alias.unmap();
  }
});
