// Connects a userfaultfd's native fault reader to its event iterators. The
// reader thread reads the fd in batches and calls onReadable() once per
// batch; the dispatcher drains the native queue only while every iterator
// has room, so an idle or slow consumer leaves messages in the native queue
// (and the faulting threads blocked in the kernel) instead of growing JS memory.
import { native } from '../native';
import { abortError, errnoError } from '../errors';
import { EventIterator, type EventSource } from './event-iterator';
import { decodeMessage, MSG_SIZE, type UffdEventOf } from './events';

/** What a fault raised by the owning environment's JS thread is resolved with. */
export type JsThreadFaultPolicy = 'zero' | 'poison';
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
  /**
   * For each fork event's uffd: how many iterators it was pushed to and have
   * not dropped it unread. It is closed only when every one of them dropped
   * it (ended with it still buffered); once any handed it out, it is the
   * user's to close.
   */
  #forkHolders = new WeakMap<object, number>();

  constructor(fd: number, owner: FaultDispatcherOwner<U>, policy: JsThreadFaultPolicy) {
    this.#owner = owner;
    this.#readerId = native.readerStart(fd, () => this.#onReadable());
    native.readerSetPolicy(this.#readerId, POLICY_CODES[policy]);
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
    for (const it of [...this.#iterators]) it.end();
  }

  // EventSource
  pull(): void {
    if (this.#readable) this.#drain();
  }
  detach(it: EventIterator<UffdEventOf<U>>): void {
    this.#iterators.delete(it);
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

  #onReadable(): void {
    if (this.#readerId === 0) return;
    this.#readable = true;
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
    if (readErrno !== 0) {
      const err = errnoError(readErrno, 'read');
      for (const it of [...this.#iterators]) it.fail(err);
    }
    this.#drain();
  }

  #drain(): void {
    for (;;) {
      let room = Infinity;
      for (const it of this.#iterators) room = Math.min(room, it.room);
      if (this.#iterators.size === 0 || room <= 0 || this.#readerId === 0) return;
      const max = Math.min(room, 4096);
      const batch = native.readerDrain(this.#readerId, max);
      const count = batch.byteLength / MSG_SIZE;
      if (count < max) this.#readable = false;
      const view = new DataView(batch);
      for (let i = 0; i < count; i++) {
        const event = decodeMessage(view, i * MSG_SIZE, (fd) => this.#owner.adoptFork(fd));
        if (event === undefined) continue;
        if (event.type !== 'pagefault') this.#owner.observe(event);
        if (event.type === 'fork') this.#forkHolders.set(event.uffd as object, this.#iterators.size);
        for (const it of this.#iterators) it.push(event);
      }
      if (count < max) return;
    }
  }
}
