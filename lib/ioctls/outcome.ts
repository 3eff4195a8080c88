// Decoding the kernel's progress field. uffdio_copy.copy and its siblings
// are __s64: -errno when nothing was done, the bytes done otherwise. Read as
// unsigned, a -EAGAIN would look like 18446744073709551605 bytes.
import { constants } from 'node:os';
import { errnoError } from '../errors';
import type { IoctlReturn } from '../native';

const { EAGAIN, EEXIST } = constants.errno;

/**
 * How a range ioctl ended, when it did not fail outright:
 * - 'complete': the whole range was done;
 * - 'EEXIST': the first page was already mapped (another thread or an
 *   earlier ioctl resolved it). For a pager this is success. The kernel
 *   wakes nothing on EEXIST; whoever mapped the page woke the waiters,
 *   unless it used DONTWAKE (then call wake());
 * - 'EAGAIN': the mapping is changing (an event is pending: read it and
 *   retry), or the kernel stopped part way; `bytes` says how far it got, and
 *   the caller retries from address + bytes.
 */
export type IoctlStatus = 'complete' | 'EEXIST' | 'EAGAIN';

export interface IoctlResult {
  /** Bytes done (copied, zeroed, mapped, moved, poisoned, protected). */
  readonly bytes: number;
  readonly status: IoctlStatus;
}

const COMPLETE_CACHE = new Map<number, IoctlResult>();

function complete(bytes: number): IoctlResult {
  let r = COMPLETE_CACHE.get(bytes);
  if (r === undefined) {
    r = Object.freeze({ bytes, status: 'complete' as const });
    if (COMPLETE_CACHE.size < 64) COMPLETE_CACHE.set(bytes, r);
  }
  return r;
}

/**
 * `fieldless` ioctls (WRITEPROTECT, WAKE) report nothing on success, so the
 * whole length was done.
 */
export function decodeOutcome(ret: IoctlReturn, syscall: string, address: number, length: number, fieldless = false): IoctlResult {
  if (typeof ret === 'number') return complete(fieldless ? length : ret);
  const [errno, field] = ret;
  if (errno === EAGAIN) return { bytes: field > 0 ? field : 0, status: 'EAGAIN' };
  if (errno === EEXIST && field <= 0) return { bytes: 0, status: 'EEXIST' };
  throw errnoError(errno, syscall, address, length);
}
