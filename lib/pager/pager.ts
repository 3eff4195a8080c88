/**
 * Pager: serve registered ranges of a userfaultfd from a source, natively.
 *
 * API (stable):
 *   const pager = Pager.create(uffd, { readAhead?, onFailure?, afterRemove?, statsIntervalMs? });
 *   pager.serve({ address, length }, source, { pageSize? })  // source: see PagerSource in ./sources;
 *                                               // pageSize: for ranges registered by another process
 *     { kind: 'zero' } | { kind: 'buffer', buffer, offset? } | { kind: 'file', path | fd, offset?, mmap? }
 *     | { kind: 'memoryFile', file, offset? } | { kind: 'function', read(address, length, { offset, threadId, write }) }
 *   pager.unserve({ address, length })          // faults there go back to uffd.events()
 *   await pager.prefetch(range?, { signal? })   // fill the rest in the background (SCHED_IDLE)
 *   pager.stats()                               // faults, bytes, read-ahead (async), per thread, latency histogram
 *   pager.on('failure', (f: PagerFailure) => …) // a source failed; the page was poisoned or zeroed
 *   pager.on('remap' | 'remove' | 'unmap' | 'fork' | 'stats', …)
 *   pager.ref() / pager.unref()                 // serving holds the event loop (default), as a server does
 *   pager.close()  /  await using pager         // idempotent; uffd.close() closes it too
 *
 * How it runs: the pager attaches to the uffd's native reader thread as a
 * fault filter (Userfaultfd.readerIdFor). Faults in served ranges are
 * resolved on that thread with one ioctl per fault or read-ahead window, no
 * JavaScript per fault (the asynchronous read-ahead also fills windows on
 * that thread, between batches), except for 'function' sources, whose pages are
 * requested from JavaScript in batches. Everything else (faults outside
 * served ranges, WP faults, remap/remove/unmap events) still reaches
 * uffd.events(). FORK events are the exception: the pager serves the
 * child's uffd itself (same ranges and sources; zero pages elsewhere), since
 * two readers of one fd would race. close() gives the stream back. The
 * pager follows only the events the uffd was opened for (EVENT_REMOVE,
 * EVENT_REMAP, EVENT_UNMAP, EVENT_FORK).
 */
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { native } from '../native';
import { abortError, closedError, errnoError, withRange } from '../errors';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf } from '../validate';
import { PAGE_SIZE } from '../memory/constants';
import type { RangeLike, Userfaultfd } from '../uffd/userfaultfd';
import { prepareSource, SOURCE_CODES, SOURCE_KINDS, type PageBytes, type PageReader, type PagerSource } from './sources';
import { decodeStats, type PagerStats } from './stats';
import type { FailurePolicy, PagerFailure, PagerOptions, PrefetchOptions, PrefetchResult, ServedRange, ServeOptions } from './options';

export type { FailurePolicy, PagerOptions, ServeOptions, ServedRange, PagerFailure, PrefetchOptions, PrefetchResult } from './options';

const PAGE_SIZES = [PAGE_SIZE, 2 << 20, 1 << 30];

const NOTE = { REQUEST: 1, FAILURE: 2, EVENT: 3, PREFETCH_DONE: 4, FORK: 5, STATS: 6 } as const;
const EVENT = { REMAP: 0x14, REMOVE: 0x15, UNMAP: 0x16 } as const;
const { EAGAIN, ESTALE } = constants.errno;
const MAX_COMPLETE_RETRIES = 5000;

interface PendingPrefetch {
  resolve(r: PrefetchResult): void;
  reject(e: unknown): void;
  cleanup(): void;
}

export class Pager extends EventEmitter {
  readonly uffd: Userfaultfd;
  readonly onFailure: FailurePolicy;
  #id: number;
  #closed = false;
  #removeHook: () => void;
  #tags = 0;
  #readers = new Map<number, PageReader>();
  #keep = new Set<unknown>();
  #prefetches = new Map<number, PendingPrefetch>();
  #refed = true;
  #serving = false;
  #loopRef = false;

  /** Same as `new Pager(uffd, options)`. */
  static create(uffd: Userfaultfd, options?: PagerOptions): Pager {
    return new Pager(uffd, options);
  }

  constructor(uffd: Userfaultfd, options?: PagerOptions) {
    super();
    if (uffd === null || typeof uffd !== 'object' || typeof (uffd as Partial<Userfaultfd>).readerIdFor !== 'function') {
      throw new TypeError('uffd must be a Userfaultfd');
    }
    const opts = checkObject<PagerOptions>('options', options);
    let min = 64 << 10;
    let max = 4 << 20;
    let async = true;
    if (opts.readAhead === false) {
      max = 0;
      async = false;
    } else if (opts.readAhead !== undefined && opts.readAhead !== true) {
      const ra = checkObject<{ min?: number; max?: number; async?: boolean }>('options.readAhead', opts.readAhead);
      min = ra.min === undefined ? min : checkInteger('options.readAhead.min', ra.min, PAGE_SIZE, 1 << 30);
      max = ra.max === undefined ? Math.max(max, min) : checkInteger('options.readAhead.max', ra.max, 0, 1 << 30);
      if (max !== 0 && max < min) throw new RangeError(`options.readAhead.max (${max}) is below options.readAhead.min (${min})`);
      async = ra.async === undefined ? async : checkBoolean('options.readAhead.async', ra.async);
    }
    this.onFailure = opts.onFailure === undefined ? 'poison' : checkOneOf('options.onFailure', opts.onFailure, ['poison', 'zero']);
    const afterRemove = opts.afterRemove === undefined ? 'zero' : checkOneOf('options.afterRemove', opts.afterRemove, ['zero', 'source']);
    const interval = opts.statsIntervalMs === undefined ? 0 : checkInteger('options.statsIntervalMs', opts.statsIntervalMs, 0);
    const readerId = uffd.readerIdFor('pager');
    try {
      this.#id = native.pagerCreate(readerId, uffd.fd, () => this.#onNotes(), min, max, async, this.onFailure === 'poison' ? 0 : 1, afterRemove === 'zero' ? 0 : 1, interval);
    } catch (err) {
      if ((err as { code?: string }).code === 'EBUSY') (err as Error).message += ': this userfaultfd already has a pager';
      throw err;
    }
    this.uffd = uffd;
    this.#removeHook = uffd.beforeClose(() => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Serves `range` (inside a range registered with 'missing' and/or
   * 'minor', aligned to its page size, overlapping no served range) from
   * `source`. Minor faults are resolved with CONTINUE whatever the source:
   * the page cache already holds the page.
   */
  serve(range: RangeLike, source: PagerSource, options?: ServeOptions): ServedRange {
    const id = this.#idFor('serve');
    const { address, length } = this.#range(range, 'serve');
    const opts = checkObject<ServeOptions>('options', options);
    let pageSize: number;
    if (opts.pageSize !== undefined) {
      // Registered elsewhere (another process, before the uffd was sent here):
      // the kernel is the judge.
      pageSize = checkInteger('options.pageSize', opts.pageSize, PAGE_SIZE);
      if (!PAGE_SIZES.includes(pageSize)) throw new RangeError(`options.pageSize must be one of ${PAGE_SIZES.join(', ')} (got ${pageSize})`);
    } else {
      const reg = this.uffd.registrationFor(address, length, 'serve');
      pageSize = reg.pageSize;
      if (!reg.modes.has('missing') && !reg.modes.has('minor')) {
        throw new RangeError(`serve: 0x${address.toString(16)}+0x${length.toString(16)} is registered for write-protect faults only; register it with 'missing' or 'minor'`);
      }
    }
    checkAligned('range.address', address, pageSize);
    checkAligned('range.length', length, pageSize);
    const prepared = prepareSource(source, length);
    const tag = ++this.#tags;
    let served: boolean;
    try {
      served = native.pagerServe(id, address, length, pageSize, prepared.offset, prepared.code, prepared.data, tag, prepared.mapFile ?? false);
    } catch (err) {
      withRange(err, address, length);
    } finally {
      prepared.done();
    }
    if (!served) {
      throw new RangeError(`serve: 0x${address.toString(16)}+0x${length.toString(16)} overlaps a range this pager already serves`);
    }
    if (prepared.read) this.#readers.set(tag, prepared.read);
    if (prepared.keep) this.#keep.add(prepared.keep);
    this.#serving = true;
    this.#updateLoopRef();
    return { address, length, offset: prepared.offset, kind: prepared.kind };
  }

  /** Stops serving `range` (or the served parts of it). Returns the bytes that were served. */
  unserve(range: RangeLike): number {
    const id = this.#idFor('unserve');
    const { address, length } = this.#range(range, 'unserve');
    checkAligned('range.address', address, PAGE_SIZE);
    checkAligned('range.length', length, PAGE_SIZE);
    const bytes = native.pagerUnserve(id, address, length);
    if (bytes === 0) throw new RangeError(`unserve: 0x${address.toString(16)}+0x${length.toString(16)} overlaps no served range`);
    return bytes;
  }

  /** The served ranges now (they follow remaps; REMOVE turns parts into 'zero' with afterRemove 'zero'). */
  ranges(): ServedRange[] {
    const raw = native.pagerRanges(this.#idFor('ranges'));
    const out: ServedRange[] = [];
    for (let i = 0; i < raw.length; i += 4) {
      const kind = SOURCE_KINDS.find((k) => SOURCE_CODES[k] === raw[i + 3]) ?? 'zero';
      out.push({ address: raw[i], length: raw[i + 1] - raw[i], offset: raw[i + 2], kind });
    }
    return out;
  }

  /**
   * Fills the served pages of `range` (default: every served range) that are
   * not there yet, on a background thread at SCHED_IDLE, so that later
   * accesses do not fault. 'function' ranges are skipped. Stops on abort
   * (AbortError) or close() (resolves with stopped: true).
   */
  prefetch(range?: RangeLike, options?: PrefetchOptions): Promise<PrefetchResult> {
    const id = this.#idFor('prefetch');
    const opts = checkObject<PrefetchOptions>('options', options);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
    let start = 0;
    let end = 2 ** 53;
    if (range !== undefined) {
      const r = this.#range(range, 'prefetch');
      checkAligned('range.address', r.address, PAGE_SIZE);
      checkAligned('range.length', r.length, PAGE_SIZE);
      start = r.address;
      end = r.address + r.length;
    }
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal.reason));
    const prefetchId = native.pagerPrefetch(id, start, end);
    return new Promise<PrefetchResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#closed) native.pagerStopPrefetch(id, prefetchId);
        this.#settlePrefetch(prefetchId);
        reject(abortError(opts.signal?.reason));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#prefetches.set(prefetchId, { resolve, reject, cleanup: () => opts.signal?.removeEventListener('abort', onAbort) });
      this.#updateLoopRef();
    });
  }

  /**
   * While it serves ranges, a pager keeps the event loop alive (default), as
   * a listening server does: the process must live on for the memory it
   * serves (its 'exit' closes the uffd). unref() lets the process exit
   * anyway; a running prefetch always holds the loop.
   */
  ref(): this {
    this.#refed = true;
    this.#updateLoopRef();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.#updateLoopRef();
    return this;
  }

  stats(): PagerStats {
    return decodeStats(native.pagerStats(this.#idFor('stats')));
  }

  /**
   * Detaches from the uffd (its faults go to events() again), stops the
   * prefetch and child-serving threads, and wakes faults still waiting for a
   * function source (they fault again, now as events). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    const last = this.listenerCount('stats') > 0 ? this.stats() : undefined;
    this.#closed = true;
    this.#removeHook();
    native.pagerClose(this.#id);
    for (const [prefetchId, p] of [...this.#prefetches]) {
      this.#settlePrefetch(prefetchId);
      p.resolve({ bytes: 0, stopped: true });
    }
    this.#readers.clear();
    this.#keep.clear();
    // The last numbers, for whoever watched them.
    if (last) this.emit('stats', last);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #idFor(syscall: string): number {
    if (this.#closed) throw closedError('pager', syscall);
    return this.#id;
  }

  #range(range: RangeLike, what: string): { address: number; length: number } {
    if (range === null || typeof range !== 'object') throw new TypeError(`${what}: range must be a Mapping or {address, length}`);
    return { address: checkInteger('range.address', range.address, 1), length: checkInteger('range.length', range.length, 1) };
  }

  #settlePrefetch(prefetchId: number): PendingPrefetch | undefined {
    const p = this.#prefetches.get(prefetchId);
    if (!p) return undefined;
    p.cleanup();
    this.#prefetches.delete(prefetchId);
    this.#updateLoopRef();
    return p;
  }

  #updateLoopRef(): void {
    if (this.#closed) return;
    const want = (this.#refed && this.#serving) || this.#prefetches.size > 0;
    if (want === this.#loopRef) return;
    this.#loopRef = want;
    native.pagerRef(this.#id, want);
  }

  #onNotes(): void {
    if (this.#closed) return;
    const notes = native.pagerDrain(this.#id);
    // A listener that throws must not cost the rest of the batch (function
    // requests among them would leave their threads blocked): the first
    // error is rethrown once every note is handled.
    let thrown: { error: unknown } | undefined;
    for (let i = 0; i < notes.length; i += 8) {
      const n = notes.subarray(i, i + 8);
      try {
        this.#handleNote(n);
      } catch (error) {
        thrown ??= { error };
      }
      if (this.#closed) break;
    }
    if (thrown) throw thrown.error;
  }

  #handleNote(n: Float64Array): void {
    switch (n[0]) {
      case NOTE.REQUEST:
        this.#fulfil(n[1], n[2], n[3], n[4], n[5], n[6] === 1, n[7]);
        break;
      case NOTE.FAILURE: {
        const cause = n[4] === 1 ? shortReadError(n[1], n[2], n[5]) : errnoError(n[3], 'ioctl', n[1], n[2]);
        this.#fail(n[1], n[2], n[5], cause);
        break;
      }
      case NOTE.EVENT:
        if (n[1] === EVENT.REMAP) this.emit('remap', { from: n[2], to: n[3], length: n[4], child: n[5] === 1 });
        else this.emit(n[1] === EVENT.REMOVE ? 'remove' : 'unmap', { start: n[2], end: n[3], child: n[5] === 1 });
        break;
      case NOTE.PREFETCH_DONE: {
        const p = this.#settlePrefetch(n[1]);
        p?.resolve({ bytes: n[2], stopped: n[4] === 1 });
        break;
      }
      case NOTE.FORK:
        this.emit('fork', { nested: n[1] === 1 });
        break;
      case NOTE.STATS:
        this.emit('stats', this.stats());
        break;
    }
  }

  #fail(address: number, length: number, offset: number, cause: unknown): void {
    const failure: PagerFailure = { address, length, offset, resolvedAs: this.onFailure, cause };
    this.emit('failure', failure);
  }

  /**
   * A function source's page: call it, then COPY (EAGAIN: retry shortly;
   * failure: the policy). A function that returns bytes directly (not a
   * promise) is completed in the same turn, without a microtask.
   */
  #fulfil(request: number, address: number, length: number, offset: number, threadId: number, write: boolean, tag: number): void {
    const read = this.#readers.get(tag);
    let result: PageBytes | Promise<PageBytes>;
    try {
      if (!read) throw new Error('no function for this range');
      result = read(address, length, { offset, threadId, write });
    } catch (err) {
      this.#complete(request, address, length, offset, undefined, err);
      return;
    }
    if (result !== null && typeof (result as Promise<PageBytes>).then === 'function') {
      (result as Promise<PageBytes>).then(
        (data) => this.#complete(request, address, length, offset, data, undefined),
        (err: unknown) => this.#complete(request, address, length, offset, undefined, err),
      );
    } else {
      this.#complete(request, address, length, offset, result as PageBytes, undefined);
    }
  }

  #complete(request: number, address: number, length: number, offset: number, data: unknown, cause: unknown): void {
    if (this.#closed) return;
    if (cause === undefined) {
      if (!(ArrayBuffer.isView(data) || data instanceof ArrayBuffer)) {
        cause = new TypeError(`the read function returned ${data === null ? 'null' : typeof data}, not bytes`);
      } else if (data.byteLength < length) {
        cause = new RangeError(`the read function returned ${data.byteLength} bytes for a ${length}-byte page`);
      }
    }
    if (cause !== undefined) {
      if (native.pagerComplete(this.#id, request, null) !== ESTALE) this.#fail(address, length, offset, cause);
      return;
    }
    const bytes = data as PageBytes;
    const attempt = (tries: number): void => {
      if (this.#closed) return;
      const rc = native.pagerComplete(this.#id, request, bytes);
      if (rc === EAGAIN && tries < MAX_COMPLETE_RETRIES) {
        // The mapping is changing: the reader thread is reading the event.
        setTimeout(() => attempt(tries + 1), 1);
        return;
      }
      if (rc !== 0 && rc !== ESTALE) this.#fail(address, length, offset, errnoError(rc, 'ioctl(UFFDIO_COPY)', address, length));
    };
    attempt(0);
  }
}

function shortReadError(address: number, length: number, offset: number): Error {
  const err = new Error(`the source file ends before offset ${offset + length} (the page at 0x${address.toString(16)})`) as Error & { code: string };
  err.code = 'ERR_PAGER_SHORT_READ';
  return err;
}

// Re-exported for the public index.
export type { PagerSource, PageReader, PagerStats };
