// uffd-unit-tests "events-wp" on every memory type: see events-case.ts.
import { it } from 'vitest';
import { caseName, PARITY_MEMORY } from './areas';
import { eventsCase } from './events-case';

for (const memory of PARITY_MEMORY) {
  it(caseName('events-wp', memory), async (ctx) => {
    await eventsCase(memory, true, (reason) => ctx.skip(reason));
  });
}
