// parityCase(), the declaration of most parity cases (register-ioctls,
// zeropage, move*, wp-unpopulated, minor*, mmap-changing; the wp-fork family
// has its own in wp-fork-common.ts): one vitest test per kernel case,
// skipped with the doctor's reason when it cannot run, with the areas and a
// uffd set up and always torn down in the safe order (close the uffd, which
// wakes any thread still blocked in one of its faults; wait for the touching
// threads; only then unmap).
//
// Faults are raised by native threads (touchPages) and resolved in
// JavaScript from uffd.events(), as the kernel test's poll thread does.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'vitest';
import { Userfaultfd } from '../../lib/index';
import type { Feature, PageFaultEvent, RegisterMode } from '../../lib/index';
import { touchPages, type TouchOptions } from '../../lib/testing/index';
import { threadState, withTimeout } from '../helpers/harness';
import { allocateAreas, caseName, skipReason, type Areas, type ParityMemory } from './areas';

export { threadState };

/** How long a parity case waits for a thread, a child or an event before it fails instead of hanging. */
export const WAIT_MS = 20_000;

export interface CaseContext {
  readonly areas: Areas;
  readonly uffd: Userfaultfd;
  /** Skips the case (vitest's ctx.skip) with this reason; a case must never skip silently. */
  skip(reason: string): void;
  /** touchPages(), tracked so that teardown waits for the thread before unmapping. */
  touch(address: number, length: number, options?: TouchOptions): Promise<Uint32Array>;
  /**
   * The same range touched by `threads` native threads, each taking a
   * contiguous share of whole pages, so that several faults are outstanding
   * at once and the handler sees them in batches. Values in address order.
   */
  touchSplit(address: number, length: number, pageSize: number, threads: number, options?: TouchOptions): Promise<Uint32Array>;
}

export interface CaseOptions {
  /** Features requested in UFFDIO_API (the kernel test requests what it requires). */
  features: readonly Feature[];
  /** Modes the case registers: a mode the doctor says does not work here skips it. */
  modes: readonly RegisterMode[];
  /** Area size (default 32 MiB, as the kernel test). */
  areaSize?: number;
}

/** Declares the vitest test `<kernel test> <memory>`. */
export function parityCase(kernelTest: string, memory: ParityMemory, options: CaseOptions, body: (c: CaseContext) => Promise<void>): void {
  test(caseName(kernelTest, memory), async (ctx) => {
    const reason = skipReason(memory, options.features, options.modes);
    if (reason) {
      ctx.skip(reason);
      return;
    }
    const areas = allocateAreas(memory, options.areaSize);
    let uffd: Userfaultfd | undefined;
    const touching: Promise<unknown>[] = [];
    try {
      uffd = Userfaultfd.open({ features: [...options.features] });
      const touch = (address: number, length: number, opts?: TouchOptions): Promise<Uint32Array> => {
        const p = touchPages(address, length, opts);
        touching.push(p);
        return withTimeout(p, `the thread touching 0x${address.toString(16)}+0x${length.toString(16)} did not finish`, WAIT_MS).then((r) => r.values);
      };
      const touchSplit = async (address: number, length: number, pageSize: number, threads: number, opts?: TouchOptions): Promise<Uint32Array> => {
        const pages = length / pageSize;
        const share = Math.ceil(pages / threads);
        const parts: Promise<Uint32Array>[] = [];
        for (let first = 0; first < pages; first += share) {
          const n = Math.min(share, pages - first);
          const value = opts?.value === undefined ? undefined : opts.value + (first * pageSize) / (opts.stride ?? 4096);
          parts.push(touch(address + first * pageSize, n * pageSize, { ...opts, ...(value === undefined ? {} : { value }) }));
        }
        const all = await Promise.all(parts);
        const out = new Uint32Array(all.reduce((s, a) => s + a.length, 0));
        let at = 0;
        for (const a of all) {
          out.set(a, at);
          at += a.length;
        }
        return out;
      };
      await body({ areas, uffd, touch, touchSplit, skip: (r) => ctx.skip(r) });
    } finally {
      uffd?.close();
      const done = await Promise.race([Promise.allSettled(touching).then(() => true), sleep(WAIT_MS).then(() => false)]);
      // A thread still touching would fault on unmapped memory (SIGSEGV for
      // the whole runner): leak the areas rather than unmap under it.
      if (!done) throw new Error('a touching thread did not finish after the userfaultfd was closed; areas leaked');
      areas.dispose();
    }
  });
}

export interface FaultCounts {
  missing: number;
  minor: number;
  wp: number;
}

/**
 * Resolves every page fault of `uffd` with `handle` until `work` settles (the
 * touching threads are done), like the kernel test's uffd_poll_thread, and
 * counts them by kind as its uffd_args do. Other events fail the case.
 */
export async function serveFaults(uffd: Userfaultfd, work: Promise<unknown>, handle: (fault: PageFaultEvent) => void): Promise<FaultCounts> {
  const counts: FaultCounts = { missing: 0, minor: 0, wp: 0 };
  const stop = new AbortController();
  const events = uffd.events({ signal: stop.signal });
  const loop = (async () => {
    try {
      for await (const e of events) {
        if (e.type !== 'pagefault') throw new Error(`unexpected ${e.type} event`);
        if (e.resolvedByReader) throw new Error(`the JS thread faulted at 0x${e.address.toString(16)}`);
        if (e.minor) counts.minor++;
        else if (e.wp) counts.wp++;
        else counts.missing++;
        handle(e);
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    }
  })();
  // A handler that throws ends the loop: report that rather than waiting for
  // threads that will never be woken.
  await Promise.race([work, loop]);
  await work;
  stop.abort();
  await loop;
  return counts;
}

/** A page whose every byte is `byte`. */
export function filledPage(byte: number, size: number): Buffer {
  return Buffer.alloc(size, byte & 0xff);
}

/** Waits until thread `tid` is in scheduler state `state` (e.g. 'D'), failing after WAIT_MS. */
export async function untilThreadState(tid: number, state: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (threadState(tid) !== state) {
    if (Date.now() > deadline) throw new Error(`thread ${tid} never reached state ${state} (it is '${threadState(tid)}')`);
    await sleep(1);
  }
}

/** The value of field `field` (in kB) of the /proc/self/smaps entry of the mapping that starts at `address`. */
export function smapsField(address: number, field: string): number {
  const smaps = readFileSync('/proc/self/smaps', 'utf8').split('\n');
  const head = address.toString(16).padStart(8, '0');
  let inside = false;
  for (const line of smaps) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inside = line.startsWith(`${head}-`);
      continue;
    }
    if (inside && line.startsWith(`${field}:`)) return Number(line.slice(field.length + 1).trim().split(/\s+/)[0]);
  }
  throw new Error(`no ${field} for a mapping at 0x${address.toString(16)} in /proc/self/smaps`);
}
