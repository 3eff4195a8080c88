// Small helpers for event tests: typed next(), page contents, and cleanup
// that closes every userfaultfd a test opened (which wakes any thread still
// blocked in one of its faults) and unmaps its mappings.
import { afterEach, expect } from 'vitest';
import type { EventIterator, Mapping, UffdEvent, Userfaultfd } from '../../lib';

export type EventOf<T extends UffdEvent['type']> = Extract<UffdEvent, { type: T }>;

export async function nextEvent(it: EventIterator<UffdEvent>): Promise<UffdEvent> {
  const r = await it.next();
  if (r.done) throw new Error('the event iterator ended');
  return r.value;
}

export async function nextOf<T extends UffdEvent['type']>(it: EventIterator<UffdEvent>, type: T): Promise<EventOf<T>> {
  const e = await nextEvent(it);
  expect(e.type).toBe(type);
  return e as EventOf<T>;
}

/** A page whose every 32-bit word is `value`. */
export function page(value: number, size = 4096): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(value, i);
  return b;
}

/** Registers an afterEach that closes/unmaps everything passed to the returned function. */
export function useCleanup(): <T extends Userfaultfd | Mapping | { close(): void }>(thing: T) => T {
  const things: (Userfaultfd | Mapping | { close(): void })[] = [];
  afterEach(() => {
    // Userfaultfds first: closing wakes blocked threads before memory goes away.
    for (const t of things.splice(0).reverse().sort((a, b) => Number('unmap' in a) - Number('unmap' in b))) {
      if ('unmap' in t) t.unmap();
      else t.close();
    }
  });
  return (thing) => {
    things.push(thing);
    return thing;
  };
}
