// uffd-unit-tests "sigbus" on every memory type: see sigbus-case.ts.
import { it } from 'vitest';
import { caseName, PARITY_MEMORY } from './areas';
import { sigbusCase } from './sigbus-case';

for (const memory of PARITY_MEMORY) {
  it(caseName('sigbus', memory), async (ctx) => {
    await sigbusCase(memory, false, (reason) => ctx.skip(reason));
  });
}
