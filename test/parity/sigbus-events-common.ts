// Shared by the sigbus, events and poison parity cases (which set up their
// own uffd and children, see sigbus-case.ts): the per-page
// pattern of the src area, the kernel test's release_pages(), a monitor
// loop that runs until a child or a touch is done, and compact checks of
// per-page arrays (one expect per array, naming the first bad pages).
import { expect } from 'vitest';
import type { EventIterator, Feature, RegisterMode, UffdEvent } from '../../lib';
import type { Advice } from '../../lib/index';
import { allocateAreas, modeFeatures, skipReason, type Areas, type ParityMemory } from './areas';

/** The first word of src page `i` (the kernel test's count_verify, but different per page). */
export function pattern(i: number): number {
  return (0xc0de0000 + i) >>> 0;
}

/** Writes pattern(i) into the first word of every src page (src is never registered). */
export function fillSrc(areas: Areas): void {
  const view = areas.src.buffer();
  for (let i = 0; i < areas.nrPages; i++) view.writeUInt32LE(pattern(i), i * areas.pageSize);
}

/**
 * release_pages() of uffd-common.c: MADV_REMOVE frees the file pages of a
 * shared mapping; a private one (anon, and here really private shmem and
 * hugetlb) drops its pages with MADV_DONTNEED (MADV_REMOVE needs VM_SHARED).
 */
export function releaseAdvice(areas: Areas): Advice {
  return areas.shared ? 'REMOVE' : 'DONTNEED';
}

/** What a case asks for: the features it requests (plus what its modes need on `memory`), and why it cannot run. */
export function caseSetup(memory: ParityMemory, testFeatures: readonly Feature[], modes: readonly RegisterMode[]): { features: Feature[]; skip: string } {
  const features = [...new Set([...testFeatures, ...modeFeatures(memory, modes)])];
  return { features, skip: skipReason(memory, features, modes) };
}

/** allocateAreas() with the src pattern written, disposed by the returned function. */
export function patternAreas(memory: ParityMemory): Areas {
  const areas = allocateAreas(memory);
  try {
    fillSrc(areas);
  } catch (err) {
    areas.dispose();
    throw err;
  }
  return areas;
}

/**
 * Hands every event to `onEvent` (awaited, in order) until `until` settles,
 * then ends the iterator and returns what `until` gave. An event already
 * delivered when `until` settles is still handled.
 */
export async function monitorUntil<T>(
  events: EventIterator<UffdEvent>,
  until: Promise<T>,
  onEvent: (event: UffdEvent) => void | Promise<void>,
): Promise<T> {
  let settled = false;
  const ended = until.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    const next = events.next();
    const first = await Promise.race([next, ended.then(() => undefined)]);
    if (first === undefined && settled) {
      await events.return();
      const last = await next;
      if (!last.done) await onEvent(last.value);
      break;
    }
    if (first === undefined || first.done) break;
    await onEvent(first.value);
  }
  return until;
}

/** Indices where `actual[i] !== expected(i)`, with both values, for the first few: [] when all match. */
export function mismatches(actual: ArrayLike<number>, expected: (i: number) => number, limit = 5): string[] {
  const out: string[] = [];
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    const want = expected(i);
    if (actual[i] !== want) {
      if (out.length < limit) out.push(`[${i}] ${actual[i]} != ${want}`);
      count++;
    }
  }
  if (count > limit) out.push(`... ${count} in all`);
  return out;
}

/** Asserts `actual[i] === expected(i)` for every i, reporting the first bad indices. */
export function expectEach(what: string, actual: ArrayLike<number>, expected: (i: number) => number): void {
  expect(mismatches(actual, expected), what).toEqual([]);
}
