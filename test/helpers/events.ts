// Small helpers for event tests: typed next(), page contents, and cleanup
// that closes every userfaultfd a test opened (which wakes any thread still
// blocked in one of its faults) and unmaps its mappings.
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import type { EventIterator, Mapping, UffdEvent, Userfaultfd } from '../../lib';
import { touchPages } from '../../lib/testing';

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

/** A page whose every 32-bit word is `value` (taken modulo 2^32). */
export function page(value: number, size = 4096): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(value >>> 0, i);
  return b;
}

export interface Cleanup {
  /** Closes (Userfaultfd, MemoryFile) or unmaps (Mapping) `thing` after the test. */
  track<T extends Userfaultfd | Mapping | { close(): void }>(thing: T): T;
  /** touchPages(), awaited after the test before any mapping is unmapped. */
  touch: typeof touchPages;
}

/**
 * Registers an afterEach that closes every tracked userfaultfd (which wakes
 * the threads still blocked in its faults), waits for every toucher to
 * finish, and only then unmaps the tracked mappings: a toucher woken by the
 * close goes on reading, and must not find its pages unmapped (SIGSEGV).
 */
export function useCleanup(): Cleanup {
  const things: (Userfaultfd | Mapping | { close(): void })[] = [];
  const touching: Promise<unknown>[] = [];
  afterEach(async () => {
    const all = things.splice(0).reverse();
    for (const t of all) if (!('unmap' in t)) t.close();
    await Promise.allSettled(touching.splice(0));
    for (const t of all) if ('unmap' in t) t.unmap();
  });
  return {
    track: (thing) => {
      things.push(thing);
      return thing;
    },
    touch: (...args) => {
      const p = touchPages(...args);
      touching.push(p);
      return p;
    },
  };
}

/** Threads of this process blocked in a userfault right now (kernel wait channel). */
export function threadsInFaults(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/wchan`, 'utf8') === 'handle_userfault') n++;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return n;
}

/** Resolves once `n` threads of this process are blocked in userfaults (the test timeout bounds it). */
export async function untilThreadsInFaults(n: number): Promise<void> {
  while (threadsInFaults() < n) await new Promise((resolve) => setTimeout(resolve, 2));
}
