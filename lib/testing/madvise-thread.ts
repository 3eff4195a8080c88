// madvise() from a native thread. With EVENT_REMOVE on a registered range,
// MADV_DONTNEED and MADV_REMOVE sleep in the kernel until the monitor reads
// the REMOVE event, so the call must come from a thread that may block: this
// is how a test holds a range's "mmap changing" window open (together with
// Userfaultfd.pauseReading()).
import { native } from '../native';
import { errnoName } from '../errors';
import { MADV, PAGE_SIZE, type Advice } from '../memory/constants';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf } from '../validate';

export interface MadviseResult {
  /** 0, or the negative errno of madvise() (as Node's errors). */
  readonly errno: number;
  readonly code: string | undefined;
}

export interface MadviseThread {
  /** The thread's kernel id: watch /proc/self/task/<tid>/stat to see it block. */
  readonly tid: number;
  /** Settles when madvise() has returned. */
  readonly done: Promise<MadviseResult>;
}

export interface MadviseThreadOptions {
  /** Keep the event loop alive until madvise() returns (default true). */
  ref?: boolean;
}

/** Starts a native thread that calls madvise(address, length, advice) once. */
export function madviseInThread(address: number, length: number, advice: Advice, options?: MadviseThreadOptions): MadviseThread {
  const opts = checkObject<MadviseThreadOptions>('options', options);
  const start = checkInteger('address', address, 1);
  checkAligned('address', start, PAGE_SIZE);
  const bytes = checkInteger('length', length, 1);
  const name = checkOneOf('advice', advice, Object.keys(MADV) as Advice[]);
  const ref = opts.ref === undefined ? true : checkBoolean('options.ref', opts.ref);
  const [tid, done] = native.madviseThread(start, bytes, MADV[name], ref);
  return {
    tid,
    done: done.then((errno) => (errno === 0 ? { errno: 0, code: undefined } : { errno: -errno, code: errnoName(errno) })),
  };
}
