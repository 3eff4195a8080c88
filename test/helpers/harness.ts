// A userfaultfd with the regions and touching threads of one test, and the
// teardown that keeps a failed test from hanging or crashing the runner:
// close the uffd first (that wakes every thread blocked in a fault, which
// then sees the memory as unregistered), wait for the touching threads, and
// only then unmap (a thread still touching an unmapped page would SIGSEGV).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Userfaultfd, type EventIterator, type OpenOptions, type PageFaultEvent, type UffdEvent } from '../../lib/index';
import { touchPages, type TouchOptions, type TouchResult } from '../../lib/testing/index';
import { makeRegion, type MemoryKind, type Region } from './memory';

/** How long a test waits for an event or a thread before it fails (below vitest's testTimeout). */
export const WAIT_MS = 10_000;

export interface Touch {
  readonly promise: Promise<TouchResult>;
  /** True once the touching thread has finished. */
  readonly settled: boolean;
}

/** A loop that resolves every page fault with `resolve` and records them (FaultHarness.serve()). */
export interface FaultLoop {
  readonly faults: PageFaultEvent[];
  /** Ends the loop; rejects with the first error `resolve` threw. */
  stop(): Promise<void>;
}

/** `promise`, or a rejection saying `${what} within ${ms} ms` once `ms` have passed. */
export function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class FaultHarness {
  readonly uffd: Userfaultfd;
  #events: EventIterator<UffdEvent> | undefined;
  #touches: Touch[] = [];
  #regions: Region[] = [];

  constructor(options?: OpenOptions) {
    this.uffd = Userfaultfd.open(options);
  }

  region(kind: MemoryKind, pages: number): Region {
    const r = makeRegion(kind, pages);
    this.#regions.push(r);
    return r;
  }

  /** touchPages() from a native thread, tracked so teardown waits for it. */
  touch(address: number, length: number, options?: TouchOptions): Touch {
    const state = { settled: false, promise: undefined as unknown as Promise<TouchResult> };
    state.promise = touchPages(address, length, options);
    state.promise.then(
      () => (state.settled = true),
      () => (state.settled = true),
    );
    this.#touches.push(state);
    return state;
  }

  /** Awaits a touch, failing (instead of hanging) if its thread stays blocked. */
  finished(touch: Touch): Promise<TouchResult> {
    return withTimeout(touch.promise, 'the touching thread did not finish');
  }

  /** The next event of this harness's own iterator. */
  async nextEvent(): Promise<UffdEvent> {
    this.#events ??= this.uffd.events();
    const r = await withTimeout(this.#events.next(), 'no userfaultfd event');
    if (r.done) throw new Error('the event iterator ended');
    return r.value;
  }

  async nextFault(): Promise<PageFaultEvent> {
    const e = await this.nextEvent();
    if (e.type !== 'pagefault') throw new Error(`expected a pagefault event, got ${e.type}`);
    return e;
  }

  /** Resolves every fault with `resolve` from a separate iterator, recording them. */
  serve(resolve: (fault: PageFaultEvent) => void): FaultLoop {
    const events = this.uffd.events();
    const faults: PageFaultEvent[] = [];
    const loop = (async () => {
      for await (const e of events) {
        if (e.type !== 'pagefault') continue;
        faults.push(e);
        resolve(e);
      }
    })();
    return {
      faults,
      async stop() {
        await events.return();
        await loop;
      },
    };
  }

  async dispose(): Promise<void> {
    this.uffd.close();
    const pending = Promise.allSettled(this.#touches.map((t) => t.promise));
    const waited = await Promise.race([pending.then(() => true), sleep(WAIT_MS).then(() => false)]);
    // A thread still touching would fault on unmapped memory (SIGSEGV, the
    // whole runner): leak the regions rather than unmap under it.
    if (!waited) throw new Error('a touching thread did not finish after the userfaultfd was closed; regions leaked');
    for (const r of this.#regions) r.dispose();
  }
}

/** Runs `fn` with a fresh harness and always tears it down. */
export async function withHarness(fn: (h: FaultHarness) => Promise<void>, options?: OpenOptions): Promise<void> {
  const h = new FaultHarness(options);
  try {
    await fn(h);
  } finally {
    await h.dispose();
  }
}

/** /proc/self/task/<tid>/wchan: where a thread sleeps ('handle_userfault' while blocked in a fault). */
export function wchan(tid: number): string {
  try {
    return readFileSync(`/proc/self/task/${tid}/wchan`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The scheduler state letter of thread `tid` of this process ('S' while it sleeps, 'D' uninterruptible), or '' if it is gone. */
export function threadState(tid: number): string {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

/**
 * Thread `tid` sleeps in handle_userfault(). Without kallsyms the kernel
 * prints wchan as '0'; then a sleeping touch thread is taken to be in its
 * fault (it does nothing else that sleeps).
 */
function blockedInFault(tid: number): boolean {
  const where = wchan(tid);
  return where === 'handle_userfault' || (where === '0' && threadState(tid) === 'S');
}

/**
 * Waits until thread `tid` sleeps in handle_userfault(). After that only a
 * wake (UFFDIO_WAKE, or a resolving ioctl without DONTWAKE) lets it go on,
 * which is what makes the DONTWAKE tests deterministic: the fault message
 * is readable slightly before the thread goes to sleep.
 */
export async function waitUntilBlockedInFault(tid: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!blockedInFault(tid)) {
    if (Date.now() > deadline) throw new Error(`thread ${tid} is not blocked in a fault (wchan '${wchan(tid)}', state '${threadState(tid)}')`);
    await sleep(2);
  }
}

/**
 * True if thread `tid` is still blocked in its fault a little later. A thread
 * that was wrongly woken is running by then in practice; on a very slow
 * machine this can only miss a bug, never fail a correct run.
 */
export async function stillBlocked(touch: Touch, tid: number): Promise<boolean> {
  await sleep(50);
  return !touch.settled && blockedInFault(tid);
}
