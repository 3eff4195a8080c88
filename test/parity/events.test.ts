// uffd-unit-tests "events" on every memory type: see events-case.ts.
import { it } from 'vitest';
import { caseName, PARITY_MEMORY } from './areas';
import { eventsCase } from './events-case';

for (const memory of PARITY_MEMORY) {
  it(caseName('events', memory), async (ctx) => {
    await eventsCase(memory, false, (reason) => ctx.skip(reason));
  });
}
