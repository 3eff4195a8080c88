// uffd-unit-tests "move-pmd-split" on anon: the same 2 MiB moves from a
// MADV_HUGEPAGE source into a MADV_NOHUGEPAGE destination (the kernel splits
// the source PMD).
import { HUGE_2M } from '../../lib/index';
import { moveCase } from './move-common';
import { parityCase } from './parity-case';

parityCase('move-pmd-split', 'anon', { features: ['MOVE'], modes: ['missing'] }, (c) =>
  moveCase(c, { chunk: HUGE_2M, srcAdvice: 'HUGEPAGE', dstAdvice: 'NOHUGEPAGE' }),
);
