// Connects a userfaultfd's native fault reader to its event iterators and its
// synchronous fault handler (onFault). The dispatcher drains only while every
// iterator has room, so an idle or slow consumer leaves messages in the
// native queue or the kernel (and the faulting threads blocked) instead of
// growing JS memory.
//
// Two reader modes (docs/architecture.md, "The fault loop"):
// - 'loop' (opt-in): the fd is polled on this thread's event loop; when it
//   is readable, onReadable() runs here and readerDrain() reads it directly,
//   so a fault is read and resolved in one tick with no thread hop. The
//   native thread is a watchdog that reads only when this thread has not
//   for a whole tick (it is blocked in a fault of its own, or busy).
// - 'thread' (default): the native thread reads every batch and calls onReadable()
//   through a ThreadSafeFunction.
import { native } from '../native';
import { abortError, errnoError } from '../errors';
import { EventIterator, type EventSource } from './event-iterator';
import { decodeMessage, MSG_SIZE, type UffdEventOf } from './events';

/** What a fault raised by the owning environment's JS thread is resolved with. */
export type JsThreadFaultPolicy = 'zero' | 'poison';
/** Messages taken per native call at most. */
const BATCH_MESSAGES = 1024;

/** Who reads the fd: this thread's event loop (with a watchdog thread) or a native thread. */
export type ReaderMode = 'loop' | 'thread';
const POLICY_CODES: Record<JsThreadFaultPolicy, number> = { zero: 0, poison: 1 };

export interface FaultDispatcherOwner<U> {
  adoptFork(fd: number): U;
  closeForked(uffd: U): void;
  /** Called for remap/remove/unmap so registrations follow the memory. */
  observe(event: UffdEventOf<U>): void;
}

export class FaultDispatcher<U> implements EventSource<UffdEventOf<U>> {
  #readerId: number;
  #owner: FaultDispatcherOwner<U>;
  #iterators = new Set<EventIterator<UffdEventOf<U>>>();
  #waiting = 0;
  #refed = true;
  #loopRef = false;
  #readable = false;
  #warnedJsFaults = 0;
  #loop: boolean;
  #polling = false;
  #handler: ((event: UffdEventOf<U>) => void) | undefined;
  #draining = false;
  // The batch buffer, filled by the native side, decoded before the next drain.
  #batch = new ArrayBuffer(BATCH_MESSAGES * MSG_SIZE);
  #view = new DataView(this.#batch);
  /**
   * For each fork event's uffd: how many iterators it was pushed to and have
   * not dropped it unread. It is closed only when every one of them dropped
   * it (ended with it still buffered); once any handed it out, it is the
   * user's to close.
   */
  #forkHolders = new WeakMap<object, number>();

  constructor(fd: number, owner: FaultDispatcherOwner<U>, policy: JsThreadFaultPolicy, mode: ReaderMode = 'thread') {
    this.#owner = owner;
    this.#loop = mode === 'loop';
    this.#readerId = native.readerStart(fd, () => this.#onReadable(), this.#loop, () => this.#onPoll());
    native.readerSetPolicy(this.#readerId, POLICY_CODES[policy]);
  }

  get mode(): ReaderMode {
    return this.#loop ? 'loop' : 'thread';
  }

  /**
   * The synchronous fault handler: called with every pagefault event in the
   * tick it is read, before iterators see it. undefined removes it.
   */
  setFaultHandler(handler: ((event: UffdEventOf<U>) => void) | undefined): void {
    if (this.#readerId === 0) return;
    const had = this.#handler !== undefined;
    this.#handler = handler;
    if (had !== (handler !== undefined)) this.waiting(handler ? 1 : -1);
    this.#updatePolling();
    if (handler) this.#drain();
  }

  /** The native reader's id (0 once stopped): a Pager attaches to it. */
  get readerId(): number {
    return this.#readerId;
  }

  /** Faults the reader resolved for the JS thread so far. */
  get resolvedByReader(): number {
    return native.readerStatus(this.#readerId)[0];
  }

  subscribe(highWaterMark: number, signal?: AbortSignal): EventIterator<UffdEventOf<U>> {
    const it = new EventIterator<UffdEventOf<U>>(this, highWaterMark, signal);
    this.#iterators.add(it);
    if (signal?.aborted) it.fail(abortError(signal.reason));
    this.#updatePolling();
    return it;
  }

  ref(refed: boolean): void {
    this.#refed = refed;
    this.#updateLoopRef();
  }

  /**
   * Whether the reader is paused (pause()). The reader resumes by itself if
   * the JS thread blocks in a userfault while paused, so ask it.
   */
  get paused(): boolean {
    return this.#readerId !== 0 && native.readerStatus(this.#readerId)[2];
  }

  /**
   * Stops (true) or resumes the native reader. Once pause(true) returns no
   * read() of the fd is under way, so every later message stays in the kernel.
   */
  pause(paused: boolean): void {
    native.readerPause(this.#readerId, paused);
  }

  setPolicy(policy: JsThreadFaultPolicy): void {
    native.readerSetPolicy(this.#readerId, POLICY_CODES[policy]);
  }

  /** Stops and joins the reader; iterators end. */
  stop(): void {
    if (this.#readerId === 0) return;
    // Releasing the reader's TSFN drops its hold on the event loop too.
    native.readerStop(this.#readerId);
    this.#readerId = 0;
    this.#loopRef = false;
    this.#polling = false;
    this.#handler = undefined;
    for (const it of [...this.#iterators]) it.end();
  }

  // EventSource
  pull(): void {
    // Loop mode reads the fd itself: there may be messages although no
    // onReadable() said so.
    if (this.#readable || this.#loop) this.#drain();
    else this.#updatePolling();
  }
  detach(it: EventIterator<UffdEventOf<U>>): void {
    this.#iterators.delete(it);
    // A full iterator may have been what held the queue back: the others
    // must now get the events already read, or their threads stay blocked.
    this.pull();
  }
  discard(event: UffdEventOf<U>): void {
    if (event.type !== 'fork') return;
    const key = event.uffd as object;
    const holders = (this.#forkHolders.get(key) ?? 1) - 1;
    this.#forkHolders.set(key, holders);
    if (holders === 0) this.#owner.closeForked(event.uffd);
  }
  waiting(delta: number): void {
    this.#waiting += delta;
    this.#updateLoopRef();
  }

  #updateLoopRef(): void {
    // Once stopped there is no reader to (un)ref: iterators ending because of
    // close() land here, and must not make close() throw EBADF.
    if (this.#readerId === 0) return;
    const want = this.#refed && this.#waiting > 0;
    if (want !== this.#loopRef) {
      this.#loopRef = want;
      // A stopped reader has released its TSFN: nothing holds the loop any more.
      if (this.#readerId !== 0) native.readerRef(this.#readerId, want);
    }
  }

  /** Loop mode: watch the fd while some consumer can take events, not otherwise (a level-triggered poll would spin). */
  #updatePolling(): void {
    if (!this.#loop || this.#readerId === 0) return;
    let want = this.#handler !== undefined;
    if (!want && this.#iterators.size > 0) {
      want = true;
      for (const it of this.#iterators) if (it.room <= 0) want = false;
    }
    if (want !== this.#polling) {
      this.#polling = want;
      native.readerPoll(this.#readerId, want);
    }
  }

  /**
   * Loop mode: the fd is readable. No status call per batch (the fast
   * path): a read error shows as nothing read, and is looked up then.
   */
  #onPoll(): void {
    if (this.#readerId === 0) return;
    this.#readable = true;
    if (this.#drain() > 0) return;
    const readErrno = this.#checkStatus();
    if (readErrno !== 0) {
      const err = errnoError(readErrno, 'read');
      for (const it of [...this.#iterators]) it.fail(err);
    }
  }

  #onReadable(): void {
    if (this.#readerId === 0) return;
    this.#readable = true;
    const readErrno = this.#checkStatus();
    if (readErrno !== 0) {
      const err = errnoError(readErrno, 'read');
      for (const it of [...this.#iterators]) it.fail(err);
    }
    try {
      this.#drain();
    } catch (error) {
      // This runs in a ThreadSafeFunction call, where Node only prints an
      // exception (DEP0168) instead of raising 'uncaughtException': rethrow
      // it from a tick of its own so that a throwing onFault() handler is an
      // ordinary uncaught exception, as in loop mode.
      process.nextTick(() => {
        throw error;
      });
    }
  }

  /** Warns once the reader resolved faults of the JS thread; returns the reader's read errno. */
  #checkStatus(): number {
    const [resolved, readErrno] = native.readerStatus(this.#readerId);
    if (resolved > this.#warnedJsFaults) {
      if (this.#warnedJsFaults === 0) {
        process.emitWarning(
          'A fault raised by the JavaScript thread on its own userfaultfd was resolved natively ' +
            '(jsThreadFaults policy); touch registered memory from other threads.',
          { code: 'UFFD_JS_THREAD_FAULT', type: 'UserfaultfdWarning' },
        );
      }
      this.#warnedJsFaults = resolved;
    }
    return readErrno;
  }

  /** Delivers what there is while every consumer has room; returns how many messages. */
  #drain(): number {
    // A handler that calls back into the dispatcher (onFault(), events())
    // must not reuse the batch buffer under the loop that decodes it: the
    // outer drain goes on reading until the fd is empty anyway.
    if (this.#draining) return 0;
    this.#draining = true;
    let total = 0;
    let failure: { error: unknown } | undefined;
    try {
      for (;;) {
        const handler = this.#handler;
        let room = Infinity;
        for (const it of this.#iterators) room = Math.min(room, it.room);
        if ((this.#iterators.size === 0 && handler === undefined) || room <= 0 || this.#readerId === 0) break;
        const max = Math.min(room, BATCH_MESSAGES);
        const batch = max === BATCH_MESSAGES ? this.#batch : this.#batch.slice(0, max * MSG_SIZE);
        const count = native.readerDrainInto(this.#readerId, batch);
        total += count;
        if (count < max) this.#readable = false;
        const view = batch === this.#batch ? this.#view : new DataView(batch);
        for (let i = 0; i < count; i++) {
          const event = decodeMessage(view, i * MSG_SIZE, (fd) => this.#owner.adoptFork(fd));
          if (event === undefined) continue;
          if (event.type !== 'pagefault') this.#owner.observe(event);
          else if (event.resolvedByReader) this.#checkStatus();
          else if (this.#handler !== undefined) {
            // A throwing handler must not cost the rest of the batch: the
            // first error is rethrown once the batch is delivered.
            try {
              this.#handler(event);
            } catch (error) {
              failure ??= { error };
            }
          }
          if (event.type === 'fork') this.#forkHolders.set(event.uffd as object, this.#iterators.size);
          for (const it of this.#iterators) it.push(event);
        }
        // Loop mode reads again after a non-empty batch: the thread woken by
        // the handler has often faulted again by now (it ran on this CPU),
        // and reading it here saves a trip through libuv and epoll_wait().
        if (count < max && !(this.#loop && count > 0)) break;
      }
    } finally {
      this.#draining = false;
    }
    this.#updatePolling();
    if (failure) throw failure.error;
    return total;
  }
}
