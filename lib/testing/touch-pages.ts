// touchPages(): a native thread (native/testing/touch_threads.cc) that reads
// or writes a range, page by page, so that faults are raised off the
// JavaScript thread; and threadId(), the id such faults report.
import { native } from '../native';
import { checkBoolean, checkInteger, checkObject } from '../validate';

export interface TouchResult {
  /** The kernel thread id of the thread that touched the pages. */
  readonly tid: number;
  /** The first 32-bit word of every stride, as read after the access. */
  readonly values: Uint32Array;
}

export interface TouchOptions {
  /** Bytes between touches (default 4096). */
  stride?: number;
  /** Write `value + index` to each word before reading it back (default: read only). */
  write?: boolean;
  value?: number;
  /**
   * Keep the event loop alive until the thread has touched every page
   * (default true), as a pending fs call does. With false, a thread left
   * blocked in a fault nobody resolves does not hold the process open: the
   * loop ends, the userfaultfd is closed on 'exit', and the thread is woken.
   */
  ref?: boolean;
}

/**
 * Starts a native thread that touches [address, address + length) every
 * `stride` bytes. The promise settles when the thread has touched every
 * page: it may never settle if a fault is never resolved.
 */
export function touchPages(address: number, length: number, options?: TouchOptions): Promise<TouchResult> {
  return native.touch(...touchArguments(address, length, options));
}

/** Checks touchPages()' arguments: native.touch's first six, in order (also for touchPagesTimed()). */
export function touchArguments(address: number, length: number, options: TouchOptions | undefined): [number, number, number, boolean, number, boolean] {
  const opts = checkObject<TouchOptions>('options', options);
  const start = checkInteger('address', address, 1);
  const bytes = checkInteger('length', length, 1);
  const stride = checkInteger('options.stride', opts.stride ?? 4096, 4);
  const value = checkInteger('options.value', opts.value ?? 0, 0, 0xffffffff);
  const write = opts.write === undefined ? false : checkBoolean('options.write', opts.write);
  const ref = opts.ref === undefined ? true : checkBoolean('options.ref', opts.ref);
  return [start, bytes, stride, write, value, ref];
}

/** The calling thread's kernel thread id (what pagefault events report as threadId). */
export function threadId(): number {
  return native.threadId();
}
