// Waiting for an fd to become readable or writable, on the event loop
// (native/net/fd_poll.cc: uv_poll). The I/O itself is a non-blocking system
// call made by the caller, which waits here only after EAGAIN. The watcher
// is armed only while someone waits, so an idle one keeps no loop alive.
import { native } from '../native';
import { abortError, closedError, errnoError } from '../errors';

const READABLE = 1;
const WRITABLE = 2;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class FdWatch {
  #id: number;
  #readers: Waiter[] = [];
  #writers: Waiter[] = [];
  #armed = 0;
  #closed = false;
  #ref = true;

  constructor(fd: number) {
    this.#id = native.pollStart(fd, 0, (events, errno) => this.#ready(events, errno));
  }

  /** Resolves once the fd is readable (or has hung up / failed: the next read says which). */
  readable(signal?: AbortSignal): Promise<void> {
    return this.#wait(this.#readers, signal);
  }

  writable(signal?: AbortSignal): Promise<void> {
    return this.#wait(this.#writers, signal);
  }

  /** Whether a pending wait keeps the event loop alive (default: it does). */
  ref(ref: boolean): void {
    this.#ref = ref;
    if (!this.#closed) native.pollRef(this.#id, ref);
  }

  /** Stops watching; pending waits reject with EBADF. Call before closing the fd. */
  close(what: string): void {
    if (this.#closed) return;
    this.#closed = true;
    native.pollStop(this.#id);
    const err = closedError(what, 'poll');
    for (const w of [...this.#readers, ...this.#writers]) w.reject(err);
    this.#readers = [];
    this.#writers = [];
  }

  #wait(list: Waiter[], signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(closedError('socket', 'poll'));
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        this.#arm();
        reject(abortError(signal?.reason));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      list.push(waiter);
      this.#arm();
    });
  }

  #arm(): void {
    if (this.#closed) return;
    const want = (this.#readers.length ? READABLE : 0) | (this.#writers.length ? WRITABLE : 0);
    if (want === this.#armed) return;
    this.#armed = want;
    native.pollUpdate(this.#id, want);
    if (!this.#ref) native.pollRef(this.#id, false);
  }

  #ready(events: number, errno: number): void {
    if (errno !== 0) {
      const err = errnoError(errno, 'poll');
      for (const w of [...this.#readers, ...this.#writers]) w.reject(err);
      this.#readers = [];
      this.#writers = [];
    } else {
      // A hang-up or error shows as readable (the read then reports it).
      if (events & READABLE || events === 0) this.#readers.splice(0).forEach((w) => w.resolve());
      if (events & WRITABLE) this.#writers.splice(0).forEach((w) => w.resolve());
    }
    this.#arm();
  }
}
