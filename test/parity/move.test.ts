// uffd-unit-tests "move" on anon: src MADV_NOHUGEPAGE, one 4K page moved per
// missing fault, 8192 faults. The faults come from 4 native threads at once,
// so the handler gets them in batches.
import { PAGE_SIZE } from '../../lib/index';
import { moveCase } from './move-common';
import { parityCase } from './parity-case';

parityCase('move', 'anon', { features: ['MOVE'], modes: ['missing'] }, (c) => moveCase(c, { chunk: PAGE_SIZE, srcAdvice: 'NOHUGEPAGE' }));
