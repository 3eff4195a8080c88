// uffd-unit-tests "minor" on shmem and hugetlb (see minor-common.ts).
import { minorCase } from './minor-common';
import { modeFeatures } from './areas';
import { parityCase } from './parity-case';

for (const memory of ['shmem', 'hugetlb'] as const) {
  parityCase('minor', memory, { features: modeFeatures(memory, ['minor']), modes: ['minor'] }, (c) => minorCase(c, { wp: false }));
}
