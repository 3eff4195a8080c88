// An async iterator of events shaped like events.on(): an AbortSignal ends it
// with an AbortError (with `cause`), events are queued against waiting
// next() calls, its buffer is bounded (the dispatcher stops draining the
// native queue when it is full, and the kernel holds the rest), and return()
// tears the subscription down.
import { abortError } from '../errors';

export interface EventSource<E> {
  /** Called when the iterator has room again. */
  pull(): void;
  /** Called once when the iterator ends. */
  detach(iterator: EventIterator<E>): void;
  /** Called with every event still buffered when the iterator ends early. */
  discard(event: E): void;
  /** A waiting next() keeps the event loop alive while this says so. */
  waiting(delta: number): void;
}

interface Waiter<E> {
  resolve(r: IteratorResult<E>): void;
  reject(err: unknown): void;
}

export class EventIterator<E> implements AsyncIterableIterator<E> {
  readonly highWaterMark: number;
  #source: EventSource<E>;
  #buffer: E[] = [];
  #waiters: Waiter<E>[] = [];
  #finished = false;
  #error: unknown = undefined;
  #signal: AbortSignal | undefined;
  #onAbort = () => this.fail(abortError(this.#signal?.reason));

  constructor(source: EventSource<E>, highWaterMark: number, signal?: AbortSignal) {
    this.#source = source;
    this.highWaterMark = highWaterMark;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Room left before the buffer is full. */
  get room(): number {
    return this.#finished ? Infinity : this.highWaterMark - this.#buffer.length + this.#waiters.length;
  }

  push(event: E): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#source.waiting(-1);
      waiter.resolve({ value: event, done: false });
    } else {
      this.#buffer.push(event);
    }
  }

  /** Ends the iterator with an error for the next next() call. */
  fail(err: unknown): void {
    if (this.#finished) return;
    this.#error = err;
    const waiters = this.#finish();
    for (const w of waiters) w.reject(err);
    if (waiters.length) this.#error = undefined;
  }

  /** Ends the iterator normally (the userfaultfd was closed). */
  end(): void {
    if (this.#finished) return;
    for (const w of this.#finish()) w.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<E>> {
    if (this.#buffer.length) {
      const value = this.#buffer.shift() as E;
      if (this.#buffer.length < this.highWaterMark) this.#source.pull();
      return Promise.resolve({ value, done: false });
    }
    if (this.#error !== undefined) {
      const err = this.#error;
      this.#error = undefined;
      return Promise.reject(err);
    }
    if (this.#finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#source.waiting(1);
      this.#source.pull();
    });
  }

  return(): Promise<IteratorResult<E>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(err: unknown): Promise<IteratorResult<E>> {
    this.end();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #finish(): Waiter<E>[] {
    this.#finished = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const waiters = this.#waiters;
    this.#waiters = [];
    if (waiters.length) this.#source.waiting(-waiters.length);
    for (const e of this.#buffer) this.#source.discard(e);
    this.#buffer = [];
    this.#source.detach(this);
    return waiters;
  }
}
