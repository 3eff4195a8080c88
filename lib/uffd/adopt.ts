// What can be learnt about a userfaultfd another process opened and sent us
// (SCM_RIGHTS), without disturbing it: the kernel shows the UFFDIO_API state
// in /proc/self/fdinfo/<fd> ("API:\t<api>:<features>:<ioctls>"), so the
// enabled features are read, not guessed. What it does not show: whether the
// fd was opened with UFFD_USER_MODE_ONLY, and what the sender registered.
import { readFileSync, readlinkSync } from 'node:fs';
import { conditionError } from '../errors';
import { FEATURE_BITS, type RegisterMode, type IoctlName } from './features';

/** Kernel-internal bit set in ctx->features once UFFDIO_API has been done (6.x). */
const UFFD_FEATURE_INITIALIZED = 1n << 31n;
const KNOWN_FEATURES = Object.values(FEATURE_BITS).reduce((m, bit) => m | (1n << BigInt(bit)), 0n);

export interface UffdFdInfo {
  /** Features the sender enabled with UFFDIO_API (known bits only). */
  features: bigint;
  /** Ioctls UFFDIO_API allows (as its uffdio_api.ioctls). */
  ioctls: bigint;
  /** Whether the kernel marks UFFDIO_API as done (false also on kernels that do not show it, before 6.x). */
  initialized: boolean;
}

/** Reads /proc/self/fdinfo of `fd`; throws unless it is a userfaultfd. */
export function inspectUffdFd(fd: number): UffdFdInfo {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    throw conditionError('EBADF', 'fromFd', `fd ${fd} is not open`);
  }
  if (target !== 'anon_inode:[userfaultfd]') {
    throw conditionError('EINVAL', 'fromFd', `fd ${fd} is not a userfaultfd (it is ${target})`);
  }
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const api = /^API:\s*([0-9a-f]+):([0-9a-f]+):([0-9a-f]+)$/m.exec(info);
  if (!api) throw new Error(`fromFd: /proc/self/fdinfo/${fd} has no API line:\n${info}`);
  const raw = BigInt(`0x${api[2]}`);
  return { features: raw & KNOWN_FEATURES, ioctls: BigInt(`0x${api[3]}`), initialized: (raw & UFFD_FEATURE_INITIALIZED) !== 0n };
}

/**
 * The ioctls the kernel allows on a range registered with `modes` (what
 * UFFDIO_REGISTER would have returned), for a range the sender registered.
 */
export function rangeIoctlsFor(modes: readonly RegisterMode[], pageSize: number): IoctlName[] {
  const names = new Set<IoctlName>(['WAKE']);
  if (modes.includes('missing')) {
    names.add('COPY');
    names.add('POISON');
    if (pageSize === 4096) {
      names.add('ZEROPAGE');
      names.add('MOVE');
    }
  }
  if (modes.includes('wp')) names.add('WRITEPROTECT');
  if (modes.includes('minor')) names.add('CONTINUE');
  return [...names];
}
