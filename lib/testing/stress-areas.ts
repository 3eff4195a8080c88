// The memory of a runStress() run (stress.ts): two areas, src and dst, as
// uffd-stress allocates them (anonymous, or one memfd with an alias mapping
// of each area on shmem and hugetlb), the features each memory type needs,
// and the 2M hugetlb pool it draws on.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { native } from '../native';
import { HUGE_2M, MADV, PAGE_SIZE } from '../memory/constants';
import { Mapping } from '../memory/mapping';
import { MemoryFile } from '../memory/memory-file';
import type { Feature } from '../uffd/features';

export type StressMemory = 'anon' | 'shmem' | 'hugetlb';
export const STRESS_MEMORY_TYPES: readonly StressMemory[] = ['anon', 'shmem', 'hugetlb'];

/** Free 2M hugetlb pages a hugetlb run needs: src and dst, plus one in flight per copier and for the handler. */
export function stressHugetlbPagesNeeded(mib: number, threads = availableParallelism()): number {
  const pages = Math.ceil((mib * 1024 * 1024) / HUGE_2M);
  return 2 * pages + Math.min(threads, pages) + 1;
}

/** free_hugepages of the 2M pool (0 if there is none). */
export function freeHugetlbPages2M(): number {
  try {
    return Number(readFileSync('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', 'utf8').trim());
  } catch {
    return 0;
  }
}

export class StressError extends Error {
  constructor(message: string, readonly code: string, readonly details: Record<string, unknown>) {
    super(message);
    this.name = 'StressError';
  }
}

/** Two areas and, for shmem and hugetlb, an alias of each (the same file pages). */
export interface Area {
  mapping: Mapping;
  alias?: Mapping;
  fileOffset: number;
  view: ArrayBuffer;
}

export interface Areas {
  pageSize: number;
  file?: MemoryFile;
  a: Area;
  b: Area;
  /** madvise() advice that releases an area (native, for src at the end of a bounce). */
  releaseAdvice: number;
  dispose(): void;
}

export function allocateStressAreas(memory: StressMemory, size: number): Areas {
  if (memory === 'anon') {
    const ma = Mapping.anonymous(size);
    const mb = Mapping.anonymous(size);
    return {
      pageSize: PAGE_SIZE,
      a: { mapping: ma, fileOffset: 0, view: ma.arrayBuffer() },
      b: { mapping: mb, fileOffset: 0, view: mb.arrayBuffer() },
      releaseAdvice: MADV.DONTNEED,
      dispose: () => {
        ma.unmap();
        mb.unmap();
      },
    };
  }
  // One file: area a at offset 0, area b at `size`, as uffd-stress does.
  const file = MemoryFile.memfd(2 * size, memory === 'hugetlb' ? { hugePageSize: HUGE_2M, name: 'uffd-stress' } : { name: 'uffd-stress' });
  const mappings: Mapping[] = [];
  try {
    if (memory === 'hugetlb') {
      // Allocate src now: a missing hugetlb page would be SIGBUS when it is
      // initialised; fallocate() says ENOSPC instead.
      try {
        native.fallocate(file.fd, 0, 0, size);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOSPC') throw err;
        const free = freeHugetlbPages2M();
        throw new StressError(`stress: fallocate() of src failed with ENOSPC: the 2M hugetlb pool ran short (${free} free)`, 'ERR_UFFD_HUGETLB_POOL', { free, cause: err });
      }
    }
    const area = (fileOffset: number): Area => {
      const mapping = file.map({ offset: fileOffset, length: size });
      mappings.push(mapping);
      const alias = file.map({ offset: fileOffset, length: size });
      mappings.push(alias);
      return { mapping, alias, fileOffset, view: mapping.arrayBuffer() };
    };
    const a = area(0);
    const b = area(size);
    return {
      pageSize: file.pageSize,
      file,
      a,
      b,
      releaseAdvice: MADV.REMOVE,
      dispose: () => {
        for (const m of mappings) m.unmap();
        file.close();
      },
    };
  } catch (err) {
    for (const m of mappings) m.unmap();
    file.close();
    throw err;
  }
}

export function stressFeatures(memory: StressMemory, wp: boolean): Feature[] {
  const features: Feature[] = [];
  if (memory === 'shmem') features.push('MISSING_SHMEM');
  if (memory === 'hugetlb') features.push('MISSING_HUGETLBFS');
  if (wp) {
    features.push('PAGEFAULT_FLAG_WP');
    if (memory !== 'anon') features.push('WP_HUGETLBFS_SHMEM');
  }
  return features;
}
