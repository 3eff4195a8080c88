// uffd-unit-tests "minor-wp" on shmem and hugetlb: registered MINOR | WP and
// resolved with CONTINUE_MODE_WP (see minor-common.ts). The kernel test
// requires WP_UNPOPULATED as its stand-in for "minor mode supports WP"; we
// also check that every page ends up mapped write-protected (PM_UFFD_WP).
import { minorCase } from './minor-common';
import { modeFeatures } from './areas';
import { parityCase } from './parity-case';

for (const memory of ['shmem', 'hugetlb'] as const) {
  const features = [...modeFeatures(memory, ['minor', 'wp']), 'WP_UNPOPULATED' as const];
  parityCase('minor-wp', memory, { features, modes: ['minor', 'wp'] }, (c) => minorCase(c, { wp: true }));
}
