// The memory of the kernel's uffd-unit-tests, and its skip decisions.
//
// Each case has a `src` and a `dst` area of 32 MiB (8192 4K pages, or 16 2M
// pages for hugetlb), as in tools/testing/selftests/mm/uffd-unit-tests.c:
// - anon:            MAP_PRIVATE | MAP_ANONYMOUS;
// - shmem:           one memfd, each area MAP_SHARED, plus an alias mapping of
//                    each area (where a MINOR handler fills the page cache);
// - shmem-private:   the same memfd, but the areas really MAP_PRIVATE (the C
//                    suite still maps them MAP_SHARED); aliases stay shared;
// - hugetlb:         a hugetlb memfd, MAP_SHARED, plus aliases;
// - hugetlb-private: the hugetlb memfd mapped MAP_PRIVATE, no alias.
// Skips use the doctor's probe (probeSupport), so the reasons are the ones
// `npx userfaultfd doctor` prints.
import { readFileSync } from 'node:fs';
import { HUGE_2M, Mapping, MemoryFile, PAGE_SIZE, probeSupport, requiredFeatures } from '../../lib/index';
import type { DoctorReport, Feature, MemoryType, RegisterMode } from '../../lib/index';

export const PARITY_MEMORY = ['anon', 'shmem', 'shmem-private', 'hugetlb', 'hugetlb-private'] as const;
export type ParityMemory = (typeof PARITY_MEMORY)[number];

export const AREA_SIZE = 32 * 1024 * 1024;
/** Free 2M pages a hugetlb case needs: 16 for src, 16 for dst (the alias shares dst's). */
export const HUGETLB_PAGES_NEEDED = 32;

const DOCTOR_TYPE: Record<ParityMemory, MemoryType> = {
  anon: 'anon',
  shmem: 'shmem',
  'shmem-private': 'shmem-private',
  hugetlb: 'hugetlb-2M',
  'hugetlb-private': 'hugetlb-2M-private',
};

let report: DoctorReport | undefined;
function doctor(): DoctorReport {
  report ??= probeSupport();
  return report;
}

function freeHuge2M(): number {
  const dir = '/sys/kernel/mm/hugepages/hugepages-2048kB';
  try {
    const free = Number(readFileSync(`${dir}/free_hugepages`, 'utf8'));
    const reserved = Number(readFileSync(`${dir}/resv_hugepages`, 'utf8'));
    return free - reserved;
  } catch {
    return 0;
  }
}

/**
 * Why a case cannot run on `memory` with `features` requested and `modes`
 * registered, or '' when it can. Never silent: the reason names the missing
 * feature, mode or resource.
 */
export function skipReason(memory: ParityMemory, features: readonly Feature[], modes: readonly RegisterMode[]): string {
  const r = doctor();
  // The cases open their uffds the ordinary way (not USER_MODE_ONLY) and
  // request EVENT_FORK as the kernel suite does: say so when this user cannot.
  if (!r.open.device.ok && !r.open.syscall.ok) {
    return `skip: no userfaultfd for this user but a USER_MODE_ONLY one (device: ${r.open.device.reason}; syscall: ${r.open.syscall.reason})`;
  }
  if (features.includes('EVENT_FORK') && !r.capSysPtrace) return 'skip: UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE (UFFDIO_API fails with EPERM)';
  const missing = features.filter((f) => !r.supportedFeatures.includes(f));
  if (missing.length) return `skip: the kernel lacks ${missing.map((f) => `UFFD_FEATURE_${f}`).join(', ')}`;
  for (const mode of modes) {
    const cell = r.matrix[DOCTOR_TYPE[memory]][mode];
    if (!cell.ok) return `skip: ${mode.toUpperCase()} on ${memory}: ${cell.reason}`;
  }
  if (memory.startsWith('hugetlb')) {
    const free = freeHuge2M();
    if (free < HUGETLB_PAGES_NEEDED) {
      return `skip: needs ${HUGETLB_PAGES_NEEDED} free 2M hugetlb pages, ${free} free (run scripts/reserve-hugepages.mjs as root)`;
    }
  }
  return '';
}

/** The features a register mode needs on `memory` (as uffd-unit-tests requests them). */
export function modeFeatures(memory: ParityMemory, modes: readonly RegisterMode[]): Feature[] {
  return [...new Set(modes.flatMap((m) => requiredFeatures(DOCTOR_TYPE[memory], m)))];
}

export interface Areas {
  readonly memory: ParityMemory;
  readonly pageSize: number;
  readonly nrPages: number;
  /** Whether the registered areas are MAP_SHARED. */
  readonly shared: boolean;
  readonly src: Mapping;
  readonly dst: Mapping;
  /** Unregistered shared mappings of the same file pages (shmem, shmem-private, hugetlb). */
  readonly srcAlias: Mapping | undefined;
  readonly dstAlias: Mapping | undefined;
  readonly file: MemoryFile | undefined;
  /** Address of page `i` of dst. */
  dstPage(i: number): number;
  dispose(): void;
}

export function allocateAreas(memory: ParityMemory, areaSize = AREA_SIZE): Areas {
  const huge = memory.startsWith('hugetlb');
  const pageSize = huge ? HUGE_2M : PAGE_SIZE;
  const shared = memory === 'shmem' || memory === 'hugetlb';
  let file: MemoryFile | undefined;
  let src: Mapping;
  let dst: Mapping;
  let srcAlias: Mapping | undefined;
  let dstAlias: Mapping | undefined;
  if (memory === 'anon') {
    src = Mapping.anonymous(areaSize);
    dst = Mapping.anonymous(areaSize);
  } else {
    file = MemoryFile.memfd(2 * areaSize, huge ? { hugePageSize: HUGE_2M, name: 'uffd-parity' } : { name: 'uffd-parity' });
    src = file.map({ shared, offset: 0, length: areaSize });
    dst = file.map({ shared, offset: areaSize, length: areaSize });
    if (memory !== 'hugetlb-private') {
      srcAlias = file.map({ offset: 0, length: areaSize });
      dstAlias = file.map({ offset: areaSize, length: areaSize });
    }
  }
  return {
    memory,
    pageSize,
    nrPages: areaSize / pageSize,
    shared,
    src,
    dst,
    srcAlias,
    dstAlias,
    file,
    dstPage: (i) => dst.address + i * pageSize,
    dispose() {
      for (const m of [src, dst, srcAlias, dstAlias]) m?.unmap();
      file?.close();
    },
  };
}

/** The test name: `<kernel test name> <memory type>`, as uffd-unit-tests prints it. */
export function caseName(test: string, memory: ParityMemory | ''): string {
  return memory ? `${test} ${memory}` : test;
}
