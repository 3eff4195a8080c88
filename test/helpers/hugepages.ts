// Whether the 2M hugetlb pool has enough free pages for a test. Hugetlb
// tests skip with this reason instead of failing (or worse: a hugetlb
// mapping made with MAP_NORESERVE raises SIGBUS when a fault finds the pool
// empty, which would kill the test runner).
import { existsSync, readFileSync } from 'node:fs';

export const POOL_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB';

/** Free 2M huge pages now (0 when the pool does not exist or cannot be read). */
export function freeHugePages2M(): number {
  try {
    const n = Number(readFileSync(`${POOL_2M}/free_hugepages`, 'utf8').trim());
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * Why a test needing `pages` free 2M pages cannot run, or undefined if it can.
 * Test files run in parallel: keep `pages` a little above what the test maps.
 */
export function hugetlbSkipReason(pages: number): string | undefined {
  if (!existsSync(POOL_2M)) return 'this kernel has no 2M hugetlb pool';
  const free = freeHugePages2M();
  if (free < pages) {
    return `needs ${pages} free 2M huge pages but ${POOL_2M}/free_hugepages is ${free} (run \`node scripts/reserve-hugepages.mjs\` as root)`;
  }
  return undefined;
}
