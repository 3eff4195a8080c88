// wpForkCase(), the declaration of the wp-fork family of parity cases
// (wp-fork, wp-fork-with-event, wp-fork-pin, wp-fork-pin-with-event; the
// others use parity-case.ts): one vitest test per kernel case,
// skipped with the precise reason when it cannot run, with the areas, the
// uffd, the forked children and the pins always torn down in a safe order
// (kill the children, close the uffds, which wakes any thread still blocked
// in one of their faults, wait for the touching threads, release the pins,
// only then unmap).
//
// The page is touched by native threads (touchPages) and the children are
// forked natively (forkChild): the JS thread never faults on registered memory.
import { test } from 'vitest';
import { probeSupport, readPagemap, Userfaultfd } from '../../lib/index';
import type { EventIterator, Feature, PagemapEntry, UffdEvent } from '../../lib/index';
import { forkChild, probeLongtermPin, touchPages, type ForkedChild, type ForkStep, type LongtermPin } from '../../lib/testing/index';
import { withTimeout } from '../helpers/harness';
import { allocateAreas, caseName, modeFeatures, skipReason, type Areas, type ParityMemory } from './areas';
import { WAIT_MS } from './parity-case';


let capSysPtrace: boolean | undefined;
/** UFFDIO_API refuses EVENT_FORK without CAP_SYS_PTRACE (EPERM). */
function eventForkSkipReason(): string {
  capSysPtrace ??= probeSupport().capSysPtrace;
  return capSysPtrace ? '' : 'skip: UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE (UFFDIO_API gives EPERM without it)';
}

export interface WpForkContext {
  readonly areas: Areas;
  readonly uffd: Userfaultfd;
  /** Every event of the parent's uffd (opened before any fork). */
  readonly events: EventIterator<UffdEvent>;
  /** The first page of dst, the one the kernel test works on. */
  readonly page: number;
  readonly pageSize: number;
  /** Writes `value` to the page's first word from a native thread; resolves with the value read back. */
  write(value: number): Promise<number>;
  /** The parent's pagemap entry of the page. */
  entry(): PagemapEntry;
  /** forkChild(), killed at teardown if still running. */
  fork(steps: ForkStep[]): ForkedChild;
  /** The child's uffd from the next event, which must be a fork event; closed at teardown. */
  forkEvent(): Promise<Userfaultfd>;
  /** The next event of `events`. */
  nextEvent(it: EventIterator<UffdEvent>, what: string): Promise<UffdEvent>;
  /** A pin released at teardown if the case did not. */
  track(pin: LongtermPin): LongtermPin;
  /** Userfaultfds (of forked children) closed at teardown. */
  trackUffd(uffd: Userfaultfd): Userfaultfd;
  /** A note shown with the test's result (vitest annotation): what this machine could not exercise. */
  note(message: string): Promise<void>;
}

export interface WpForkOptions {
  /** Request UFFD_FEATURE_EVENT_FORK (the "-with-event" cases). */
  withEvent: boolean;
  /** The case takes long-term pins (wp-fork-pin*): skips when probeLongtermPin() says they cannot work. */
  pin?: boolean;
}

/** Declares the vitest test `<kernel test> <memory>` of a wp-fork family case. */
export function wpForkCase(kernelTest: string, memory: ParityMemory, options: WpForkOptions, body: (c: WpForkContext) => Promise<void>): void {
  test(caseName(kernelTest, memory), async (ctx) => {
    const features: Feature[] = [...modeFeatures(memory, ['wp']), ...(options.withEvent ? (['EVENT_FORK'] as const) : [])];
    let reason = skipReason(memory, features, ['wp']);
    if (!reason && options.withEvent) reason = eventForkSkipReason();
    if (!reason && options.pin) {
      const pin = probeLongtermPin();
      if (!pin.ok) reason = `skip: no long-term pin here: ${pin.reason}`;
    }
    if (reason) {
      ctx.skip(reason);
      return;
    }

    const areas = allocateAreas(memory);
    const children: ForkedChild[] = [];
    const uffds: Userfaultfd[] = [];
    const touching: Promise<unknown>[] = [];
    const pins: LongtermPin[] = [];
    try {
      const uffd = Userfaultfd.open({ features });
      uffds.push(uffd);
      const events = uffd.events();
      const page = areas.dst.address;
      const nextEvent = async (it: EventIterator<UffdEvent>, what: string): Promise<UffdEvent> => {
        const r = await withTimeout(it.next(), `no ${what} event arrived`, WAIT_MS);
        if (r.done) throw new Error(`the event iterator ended before the ${what} event`);
        return r.value;
      };
      const c: WpForkContext = {
        areas,
        uffd,
        events,
        page,
        pageSize: areas.pageSize,
        async write(value) {
          const p = touchPages(page, 4, { write: true, value });
          touching.push(p);
          const r = await withTimeout(p, `the thread writing ${value} to the page did not finish`, WAIT_MS);
          return r.values[0];
        },
        entry: () => readPagemap(page, 4096)[0],
        fork(steps) {
          const child = forkChild(steps);
          children.push(child);
          return child;
        },
        async forkEvent() {
          const e = await nextEvent(events, 'fork');
          if (e.type !== 'fork') throw new Error(`expected a fork event, got ${e.type}`);
          uffds.push(e.uffd);
          return e.uffd;
        },
        nextEvent,
        track(pin) {
          pins.push(pin);
          return pin;
        },
        trackUffd(u) {
          uffds.push(u);
          return u;
        },
        async note(message) {
          await ctx.annotate(message, 'notice');
        },
      };
      await body(c);
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await Promise.allSettled(children.map((child) => child.exited));
      for (const u of uffds.reverse()) u.close();
      await Promise.allSettled(touching);
      for (const pin of pins) pin.release();
      areas.dispose();
    }
  });
}

/** What a forked child reported: exit 0, no failed step, and its pagemap entries. */
export async function childEntries(child: ForkedChild, what: string): Promise<readonly PagemapEntry[]> {
  const r = await withTimeout(child.exited, `the child (${what}) did not exit`, WAIT_MS);
  if (r.failedStep) throw r.failedStep.error;
  if (r.exitCode !== 0) throw new Error(`the child (${what}) ended with ${r.signal ?? `exit code ${r.exitCode}`}`);
  return r.pagemap ?? [];
}

/** A pagemap entry in a few words, for assertion messages. */
export function describeEntry(e: PagemapEntry): string {
  const bits = [e.present && 'present', e.swapped && 'swapped', e.uffdWp && 'uffd-wp', e.exclusive && 'exclusive', e.file && 'file'].filter(Boolean);
  return `${bits.join(' ') || 'none'} (0x${e.raw.toString(16)})`;
}
