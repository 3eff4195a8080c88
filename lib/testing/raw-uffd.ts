// Raw userfaultfd access, for tests of the kernel interface itself (the
// UFFDIO_API and register-ioctls cases of uffd-unit-tests): open a uffd with
// any flags, issue UFFDIO_API and UFFDIO_REGISTER with any values, and get
// the errno back as a value. The public Userfaultfd never lets a caller do
// that (it validates first and negotiates the API itself), which is right for
// users and is exactly what these tests must get around.
//
// Only fds opened here can be passed back: a typo must not send UFFDIO_API
// to, or close, some other fd of the process.
import { native } from '../native';
import { conditionError } from '../errors';
import { checkInteger, checkObject, checkOneOf } from '../validate';

/** Flags of userfaultfd(2) and USERFAULTFD_IOC_NEW (x86-64 values). */
export const RAW_UFFD_FLAGS = Object.freeze({ CLOEXEC: 0o2000000, NONBLOCK: 0o4000, USER_MODE_ONLY: 1 });

/** UFFD_API, the only API version. */
export const UFFD_API = 0xaan;

export interface RawOpenOptions {
  /** 'syscall' (userfaultfd(2)) or 'device' (/dev/userfaultfd + USERFAULTFD_IOC_NEW). Default 'syscall'. */
  via?: 'syscall' | 'device';
  /** Passed to the kernel as is (RAW_UFFD_FLAGS). Default CLOEXEC | NONBLOCK. */
  flags?: number;
}

/** What an ioctl returned: errno 0 on success, else the negative errno and its code (as Node's errors). */
export interface RawErrno {
  readonly errno: number;
  readonly code: string | undefined;
}

export interface RawApiResult extends RawErrno {
  /** uffdio_api.features and .ioctls after the call (the kernel zeroes both when it fails). */
  readonly features: bigint;
  readonly ioctls: bigint;
}

export interface RawRegisterResult extends RawErrno {
  /** uffdio_register.ioctls (0 on failure). */
  readonly ioctls: bigint;
}

const U64_MAX = (1n << 64n) - 1n;
const opened = new Set<number>();

function checkU64(name: string, value: unknown): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) throw new RangeError(`${name} must be between 0 and 2^64-1 (got ${value})`);
    return value;
  }
  return BigInt(checkInteger(name, value));
}

function ownFd(fd: unknown, syscall: string): number {
  const n = checkInteger('fd', fd);
  if (!opened.has(n)) throw conditionError('EBADF', syscall, `fd ${n} is not open by rawUffd.open()`);
  return n;
}

function failure(err: unknown): RawErrno {
  const e = err as { errno?: unknown; code?: unknown };
  if (typeof e?.errno !== 'number' || typeof e.code !== 'string') throw err;
  return { errno: e.errno, code: e.code };
}

export const rawUffd = Object.freeze({
  /**
   * Opens a userfaultfd and does nothing else (no UFFDIO_API). Throws the
   * errno error of open/ioctl(USERFAULTFD_IOC_NEW)/userfaultfd on failure.
   */
  open(options?: RawOpenOptions): number {
    const opts = checkObject<RawOpenOptions>('options', options);
    const via = opts.via === undefined ? 'syscall' : checkOneOf('options.via', opts.via, ['syscall', 'device']);
    const flags = opts.flags === undefined ? RAW_UFFD_FLAGS.CLOEXEC | RAW_UFFD_FLAGS.NONBLOCK : checkInteger('options.flags', opts.flags, 0, 0x7fffffff);
    const fd = via === 'device' ? native.openViaDevice(flags) : native.openViaSyscall(flags);
    opened.add(fd);
    return fd;
  },

  /** UFFDIO_API with exactly these values. */
  api(fd: number, api: bigint | number, features: bigint | number): RawApiResult {
    const n = ownFd(fd, 'ioctl(UFFDIO_API)');
    const a = checkU64('api', api);
    const f = checkU64('features', features);
    try {
      const [gotFeatures, gotIoctls] = native.api(n, a, f);
      return { errno: 0, code: undefined, features: gotFeatures, ioctls: gotIoctls };
    } catch (err) {
      return { ...failure(err), features: 0n, ioctls: 0n };
    }
  },

  /** UFFDIO_REGISTER with a raw mode (UFFDIO_REGISTER_MODE_* bits, 0 included). */
  register(fd: number, address: number, length: number, mode: number): RawRegisterResult {
    const n = ownFd(fd, 'ioctl(UFFDIO_REGISTER)');
    const start = checkInteger('address', address);
    const len = checkInteger('length', length);
    const bits = checkInteger('mode', mode, 0, 0xffffffff);
    try {
      return { errno: 0, code: undefined, ioctls: native.register(n, start, len, bits) };
    } catch (err) {
      return { ...failure(err), ioctls: 0n };
    }
  },

  /** UFFDIO_UNREGISTER. */
  unregister(fd: number, address: number, length: number): RawErrno {
    const n = ownFd(fd, 'ioctl(UFFDIO_UNREGISTER)');
    const start = checkInteger('address', address);
    const len = checkInteger('length', length);
    try {
      native.unregister(n, start, len);
      return { errno: 0, code: undefined };
    } catch (err) {
      return failure(err);
    }
  },

  /** Closes an fd from open(); EBADF for any other fd, or a second close. */
  close(fd: number): void {
    const n = ownFd(fd, 'close');
    opened.delete(n);
    native.closeFd(n);
  },
});

export type RawUffd = typeof rawUffd;
