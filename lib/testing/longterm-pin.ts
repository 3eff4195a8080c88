// Test support: a real long-term page pin, as the kernel's wp-fork-pin
// selftest takes through /sys/kernel/debug/gup_test (CONFIG_GUP_TEST, absent
// from most kernels). io_uring fixed buffers (IORING_REGISTER_BUFFERS) pin
// pages the same way, with pin_user_pages(FOLL_LONGTERM), on any kernel
// with io_uring (native/testing/longterm_pin.cc).
//
// io_uring's pin is writable (FOLL_WRITE), gup_test's read-only: pinning
// breaks CoW like a write does, and on a page write-protected by
// userfaultfd it first raises a WP fault.
import { readFileSync } from 'node:fs';
import { native } from '../native';
import { withRange, type UffdError } from '../errors';
import { checkInteger } from '../validate';
import { Mapping } from '../memory/mapping';
import { PAGE_SIZE } from '../memory/constants';

/** The largest range one pin covers (io_uring: 1 GiB per buffer, 64 buffers here). */
export const MAX_LONGTERM_PIN_BYTES = 64 * 2 ** 30;

export interface LongtermPin {
  readonly address: number;
  readonly length: number;
  /** The io_uring fd that holds the pin (-1 once released). */
  readonly fd: number;
  readonly released: boolean;
  /** Unpins (synchronously) and closes the ring. Idempotent. */
  release(): void;
  [Symbol.dispose](): void;
}

/**
 * Pins [address, address + length) long-term (FOLL_LONGTERM | FOLL_WRITE)
 * through io_uring fixed buffers until `release()`, or until the environment
 * ends. Absent pages are faulted in for writing by the calling thread: on a
 * userfaultfd-registered range, pin present, writable pages (or pin first
 * and register after), or the fault goes through the `jsThreadFaults`
 * policy. Throws an errno error naming `io_uring_setup` or
 * `io_uring_register` (probeLongtermPin() says why it cannot work here).
 */
export function longtermPin(address: number, length: number): LongtermPin {
  const start = checkInteger('address', address, 1);
  const bytes = checkInteger('length', length, 1, MAX_LONGTERM_PIN_BYTES);
  let fd: number;
  let nativeRelease: () => boolean;
  try {
    [fd, nativeRelease] = native.longtermPin(start, bytes);
  } catch (err) {
    withRange(err, start, bytes);
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    fd = -1;
    try {
      nativeRelease();
    } catch (err) {
      withRange(err, start, bytes);
    }
  };
  return {
    address: start,
    length: bytes,
    get fd() {
      return fd;
    },
    get released() {
      return released;
    },
    release,
    [Symbol.dispose]: release,
  };
}

export type LongtermPinSupport =
  | { readonly ok: true; readonly mechanism: 'io_uring' }
  | { readonly ok: false; readonly reason: string; readonly error: UffdError };

let probed: LongtermPinSupport | undefined;

function ioUringDisabled(): string {
  try {
    return readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Why a failed pin cannot work here, in words a skip message can carry. */
function reasonOf(err: UffdError): string {
  const call = `${err.syscall} ${err.code}`;
  if (err.code === 'ENOSYS') return `io_uring is not in this kernel (CONFIG_IO_URING): ${call}`;
  if (err.syscall === 'io_uring_setup' && err.code === 'EPERM') {
    const disabled = ioUringDisabled();
    if (disabled === '2') return `io_uring is disabled (sysctl kernel.io_uring_disabled = 2): ${call}`;
    if (disabled === '1') {
      return `io_uring is restricted to CAP_SYS_ADMIN and the kernel.io_uring_group group (sysctl kernel.io_uring_disabled = 1): ${call}`;
    }
    return `io_uring_setup is refused (a seccomp filter, such as a container's?): ${call}`;
  }
  if (err.code === 'ENOMEM') return `the pin exceeds RLIMIT_MEMLOCK (ulimit -l) without CAP_IPC_LOCK: ${call}`;
  return `a long-term pin through io_uring fixed buffers failed: ${call}`;
}

/**
 * Whether longtermPin() works here, decided once per process by pinning a
 * page of fresh anonymous memory; otherwise the precise reason (io_uring
 * missing, disabled by sysctl or seccomp, memlock limit).
 */
export function probeLongtermPin(): LongtermPinSupport {
  if (probed) return probed;
  const page = Mapping.anonymous(PAGE_SIZE);
  try {
    longtermPin(page.address, PAGE_SIZE).release();
    probed = { ok: true, mechanism: 'io_uring' };
  } catch (err) {
    const e = err as UffdError;
    if (typeof e.syscall !== 'string') throw err;
    probed = { ok: false, reason: reasonOf(e), error: e };
  } finally {
    page.unmap();
  }
  return probed;
}
