// uffd-unit-tests "move-pmd" on anon: src and dst MADV_HUGEPAGE, each missing
// fault resolved by one 2 MiB UFFDIO_MOVE (a THP PMD move where the source is
// a huge page); one fault per aligned 2 MiB chunk.
import { HUGE_2M } from '../../lib/index';
import { moveCase } from './move-common';
import { parityCase } from './parity-case';

parityCase('move-pmd', 'anon', { features: ['MOVE'], modes: ['missing'] }, (c) =>
  moveCase(c, { chunk: HUGE_2M, srcAdvice: 'HUGEPAGE', dstAdvice: 'HUGEPAGE' }),
);
