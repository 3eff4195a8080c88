// A uffd-stress equivalent (tools/testing/selftests/mm/uffd-stress.c) whose
// fault handler is this library: native locking threads and background
// copiers (native/testing/stress_threads.cc) race on the dst area while
// JavaScript resolves their faults from events() with copy() and
// writeProtect(). Unlike the kernel's (6.17+), the write-protect mode is
// really exercised, and an EEXIST retry happens on every bounce rather
// than after a 10 s alarm.
//
// Per bounce: register dst (MISSING, and WP with `wp`), release it, run the
// threads and the handler, clear WP, unregister, verify every page (header,
// counter, pattern) and that each page was mapped exactly once, then swap
// src and dst. Bounce modes cycle: sequential, random, sequential racing,
// random racing.
import { availableParallelism } from 'node:os';
import { native, type StressBounceResult, type StressMismatch, type StressSession } from '../native';
import { errnoError } from '../errors';
import { checkBoolean, checkInteger, checkObject, checkOneOf } from '../validate';
import { Userfaultfd, type UffdEvent } from '../uffd/userfaultfd';
import type { RegisterMode } from '../uffd/features';
import type { Mapping } from '../memory/mapping';
import type { EventIterator } from '../faults/event-iterator';
import type { IoctlResult } from '../ioctls/outcome';
import {
  allocateStressAreas,
  freeHugetlbPages2M,
  StressError,
  STRESS_MEMORY_TYPES,
  stressFeatures,
  stressHugetlbPagesNeeded,
  type Area,
  type Areas,
  type StressMemory,
} from './stress-areas';

export { freeHugetlbPages2M, stressHugetlbPagesNeeded, STRESS_MEMORY_TYPES, type StressMemory } from './stress-areas';

export interface StressOptions {
  memory: StressMemory;
  /** Size of each area (src and dst) in MiB; even for hugetlb (2M pages). */
  mib: number;
  bounces: number;
  /** Register MISSING|WP, copy write-protected, resolve the WP faults (default false). */
  wp?: boolean;
  /** Locking threads, and as many background copiers (default: the number of CPUs). */
  threads?: number;
  /** Resolve every Nth missing fault twice (the first of every bounce too); the second copy must give EEXIST. Default 16. */
  eexistEvery?: number;
  /** Called after each verified bounce. */
  onBounce?: (stats: BounceStats) => void;
}

export interface BounceStats {
  /** 0-based. */
  readonly bounce: number;
  /** 'seq', 'rnd', 'seq racing' or 'rnd racing'. */
  readonly mode: string;
  /** Missing-fault events the handler resolved. */
  readonly faults: number;
  /** Of those, the ones its copy() mapped. */
  readonly handlerCopies: number;
  /** Of those, the ones a background copier had mapped first (copy() gave 'EEXIST'). */
  readonly raced: number;
  /** Deliberate second copies of a resolved page; every one gave 'EEXIST'. */
  readonly eexistRetries: number;
  /** Of those, the ones made through the alias mapping (shmem, hugetlb: the page-cache EEXIST path). */
  readonly eexistRetriesViaAlias: number;
  /** Write-protect faults resolved with writeProtect(…, false). */
  readonly wpFaults: number;
  /** Pages the background copiers mapped, and found mapped (EEXIST). */
  readonly backgroundCopies: number;
  readonly backgroundEexist: number;
  /** Every EEXIST outcome: raced + eexistRetries + backgroundEexist. */
  readonly eexist: number;
  /** EAGAIN outcomes retried (handler and copiers). */
  readonly eagain: number;
  /** Events of a finished bounce still queued when it ended, ignored. */
  readonly stale: number;
  /** Counters incremented by the locking threads. */
  readonly locks: number;
  readonly durationMs: number;
  /** (faults + wpFaults) per second of the bounce. */
  readonly faultsPerSecond: number;
  /** Every page's header, counter and pattern were checked after the bounce. */
  readonly verified: true;
}

export interface StressResult {
  readonly memory: StressMemory;
  readonly mib: number;
  readonly wp: boolean;
  readonly threads: number;
  readonly pageSize: number;
  /** Pages per area. */
  readonly pages: number;
  readonly bounces: BounceStats[];
}

const FLAG_RANDOM = 1;
const FLAG_RACING = 2;
const FLAG_WP = 4;
const MODE_NAMES = ['seq', 'rnd', 'seq racing', 'rnd racing'];

function mismatchText(m: StressMismatch): string {
  return `page ${m.page}: ${m.field} is ${m.actual}, expected ${m.expected}`;
}

/** The bounce the handler is serving: its areas and its counters. */
interface ActiveBounce {
  bounce: number;
  dst: Area;
  src: Area;
  live: boolean;
  faults: number;
  handlerCopies: number;
  raced: number;
  eexistRetries: number;
  eexistRetriesViaAlias: number;
  wpFaults: number;
  eagain: number;
  stale: number;
  threadIds: Set<number>;
}

interface Handler {
  active: ActiveBounce | undefined;
  error: unknown;
  done: Promise<void>;
}

/** Copies one page, retrying on EAGAIN; returns 'complete' or 'EEXIST'. */
function copyPage(uffd: Userfaultfd, dst: number, src: ArrayBuffer, srcOffset: number, pageSize: number, wp: boolean, b: ActiveBounce): IoctlResult['status'] {
  for (;;) {
    const r = uffd.copy(dst, src, { srcOffset, length: pageSize, writeProtect: wp });
    if (r.status !== 'EAGAIN') return r.status;
    b.eagain++;
  }
}

/**
 * The fault handler: the library under test. Missing faults are resolved
 * with copy() (EEXIST means a copier won the race: fine); every
 * `eexistEvery`th is resolved a second time, alternately through the same
 * address and (shmem, hugetlb) through the alias, and that copy must give
 * EEXIST. WP faults are resolved with writeProtect(page, false).
 */
function startHandler(uffd: Userfaultfd, events: EventIterator<UffdEvent>, pageSize: number, wp: boolean, eexistEvery: number, onError: () => void): Handler {
  const h: Handler = { active: undefined, error: undefined, done: Promise.resolve() };
  h.done = (async () => {
    try {
      for await (const ev of events) {
        const b = h.active;
        if (ev.type !== 'pagefault') throw new Error(`stress: unexpected ${ev.type} event`);
        if (ev.resolvedByReader) throw new Error(`stress: the JavaScript thread faulted at 0x${ev.address.toString(16)}`);
        const page = ev.address - (ev.address % pageSize);
        const offset = b === undefined ? -1 : page - b.dst.mapping.address;
        if (b === undefined || !b.live || offset < 0 || offset >= b.dst.mapping.length) {
          // Read before the bounce ended, its thread woken by someone else.
          if (b !== undefined) b.stale++;
          continue;
        }
        b.threadIds.add(ev.threadId);
        if (ev.wp) {
          uffd.writeProtect(page, pageSize, false);
          b.wpFaults++;
          continue;
        }
        b.faults++;
        if (copyPage(uffd, page, b.src.view, offset, pageSize, wp, b) === 'EEXIST') {
          b.raced++;
          continue;
        }
        b.handlerCopies++;
        if ((b.handlerCopies - 1) % eexistEvery === 0) {
          // Alternate, starting with the alias on odd bounces, so that short
          // runs take both paths (pte EEXIST and page-cache EEXIST).
          const viaAlias = b.dst.alias !== undefined && (b.eexistRetries + b.bounce) % 2 === 1;
          const target = viaAlias ? (b.dst.alias as Mapping).address + offset : page;
          const status = copyPage(uffd, target, b.src.view, offset, pageSize, wp, b);
          if (status !== 'EEXIST') {
            throw new Error(`stress: copying page ${offset / pageSize} a second time${viaAlias ? ' (through the alias)' : ''} gave ${status}, not EEXIST`);
          }
          b.eexistRetries++;
          if (viaAlias) b.eexistRetriesViaAlias++;
        }
      }
    } catch (err) {
      h.error = err;
      // Wake every thread blocked in a fault, so the bounce ends.
      onError();
    }
  })();
  return h;
}

function validate(options: StressOptions): Required<Omit<StressOptions, 'onBounce'>> & Pick<StressOptions, 'onBounce'> {
  const o = checkObject<StressOptions>('options', options);
  const memory = checkOneOf('options.memory', o.memory, STRESS_MEMORY_TYPES);
  const mib = checkInteger('options.mib', o.mib, 1, 1 << 20);
  if (memory === 'hugetlb' && mib % 2 !== 0) throw new RangeError(`options.mib must be even for hugetlb (2M pages) (got ${mib})`);
  const bounces = checkInteger('options.bounces', o.bounces, 1);
  const wp = o.wp === undefined ? false : checkBoolean('options.wp', o.wp);
  const threads = o.threads === undefined ? availableParallelism() : checkInteger('options.threads', o.threads, 1, 1024);
  const eexistEvery = o.eexistEvery === undefined ? 16 : checkInteger('options.eexistEvery', o.eexistEvery, 1);
  if (o.onBounce !== undefined && typeof o.onBounce !== 'function') throw new TypeError('options.onBounce must be a function');
  return { memory, mib, bounces, wp, threads, eexistEvery, onBounce: o.onBounce };
}

/**
 * Runs the stress test and returns per-bounce statistics. Throws (a
 * StressError with `code` and `details`) on memory corruption, a page
 * mapped twice or never, a second copy that did not give EEXIST, or a fault
 * from a thread that is not a locking thread. A broken handler can leave
 * threads blocked in faults: run it in a child process with a timeout.
 */
export async function runStress(options: StressOptions): Promise<StressResult> {
  const { memory, mib, bounces, wp, threads, eexistEvery, onBounce } = validate(options);
  const size = mib * 1024 * 1024;
  if (memory === 'hugetlb') {
    const need = stressHugetlbPagesNeeded(mib, threads);
    const free = freeHugetlbPages2M();
    if (free < need) {
      throw new StressError(`stress: hugetlb ${mib} MiB needs ${need} free 2M hugetlb pages, ${free} are free`, 'ERR_UFFD_HUGETLB_POOL', { need, free });
    }
  }
  const uffd = Userfaultfd.open({ features: stressFeatures(memory, wp) });
  let areas: Areas | undefined;
  let events: EventIterator<UffdEvent> | undefined;
  let handler: Handler | undefined;
  try {
    areas = allocateStressAreas(memory, size);
    const { pageSize } = areas;
    const pages = size / pageSize;
    const session: StressSession = native.stressSession(pageSize, pages);
    let src = areas.a;
    let dst = areas.b;
    native.stressInit(session, src.mapping.address);
    const modes: RegisterMode[] = wp ? ['missing', 'wp'] : ['missing'];
    events = uffd.events();
    handler = startHandler(uffd, events, pageSize, wp, eexistEvery, () => uffd.close());
    const stats: BounceStats[] = [];

    for (let bounce = 0; bounce < bounces; bounce++) {
      const dstRanges = dst.alias ? [dst.mapping, dst.alias] : [dst.mapping];
      for (const r of dstRanges) uffd.register(r, modes);
      // After registering, as uffd-stress does: a late copy from the
      // previous bounce's released src may have faulted zeros into it.
      if (areas.file) areas.file.punchHole(dst.fileOffset, size);
      else dst.mapping.madvise('DONTNEED');

      const b: ActiveBounce = { bounce, dst, src, live: true, faults: 0, handlerCopies: 0, raced: 0, eexistRetries: 0, eexistRetriesViaAlias: 0, wpFaults: 0, eagain: 0, stale: 0, threadIds: new Set() };
      handler.active = b;
      const flags = (bounce & 1 ? FLAG_RANDOM : 0) | (bounce & 2 ? FLAG_RACING : 0) | (wp ? FLAG_WP : 0);
      const started = performance.now();
      const result: StressBounceResult = await native.stressBounce(session, uffd.fd, dst.mapping.address, src.mapping.address, threads, flags, areas.releaseAdvice, bounce);
      const durationMs = performance.now() - started;
      b.live = false;

      if (handler.error !== undefined) throw handler.error;
      if (result.corruption) {
        throw new StressError(`stress: memory corruption seen by locking thread ${result.corruption.thread} in bounce ${bounce}: ${mismatchText(result.corruption)}`, 'ERR_UFFD_STRESS_CORRUPTION', { bounce, ...result.corruption });
      }
      if (result.error) throw errnoError(result.error.errno, result.error.syscall, dst.mapping.address + result.error.page * pageSize, pageSize);

      if (wp) uffd.writeProtect(dst.mapping.address, size, false);
      for (const r of dstRanges) uffd.unregister(r);

      const bad = native.stressVerify(session, dst.mapping.address);
      if (bad) {
        throw new StressError(`stress: bounce ${bounce}: ${bad.badPages} page(s) wrong after the bounce; first: ${mismatchText(bad)}`, 'ERR_UFFD_STRESS_CORRUPTION', { bounce, ...bad });
      }
      // Each page is mapped exactly once: by the handler or by a copier.
      if (b.handlerCopies + result.copies !== pages || result.copies + result.copyEexist !== pages) {
        throw new StressError(
          `stress: bounce ${bounce}: ${pages} pages but the handler mapped ${b.handlerCopies} and the copiers ${result.copies} (${result.copyEexist} EEXIST)`,
          'ERR_UFFD_STRESS_ACCOUNTING',
          { bounce, pages, handlerCopies: b.handlerCopies, copies: result.copies, copyEexist: result.copyEexist },
        );
      }
      const lockers = new Set(result.tids);
      for (const tid of b.threadIds) {
        if (!lockers.has(tid)) throw new StressError(`stress: bounce ${bounce}: a fault from thread ${tid}, which is not a locking thread`, 'ERR_UFFD_STRESS_THREAD', { bounce, tid });
      }

      const s: BounceStats = {
        bounce,
        mode: MODE_NAMES[bounce & 3] as string,
        faults: b.faults,
        handlerCopies: b.handlerCopies,
        raced: b.raced,
        eexistRetries: b.eexistRetries,
        eexistRetriesViaAlias: b.eexistRetriesViaAlias,
        wpFaults: b.wpFaults,
        backgroundCopies: result.copies,
        backgroundEexist: result.copyEexist,
        eexist: b.raced + b.eexistRetries + result.copyEexist,
        eagain: b.eagain + result.copyEagain,
        stale: b.stale,
        locks: result.locks.reduce((x, y) => x + y, 0),
        durationMs,
        faultsPerSecond: ((b.faults + b.wpFaults) * 1000) / durationMs,
        verified: true,
      };
      stats.push(s);
      onBounce?.(s);
      [src, dst] = [dst, src];
    }
    return { memory, mib, wp, threads, pageSize, pages, bounces: stats };
  } finally {
    events?.return();
    uffd.close();
    await handler?.done;
    areas?.dispose();
  }
}
