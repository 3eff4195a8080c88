// Opening a userfaultfd and negotiating its features (UFFDIO_API), for
// Userfaultfd.open() and fromFd(); and the exit hook that closes every open
// userfaultfd so that no thread blocked in a fault keeps the process alive.
import { native } from '../native';
import { errnoError, type UffdError } from '../errors';
import { FEATURES, FEATURE_BITS, featureMask, isFeature, type Feature } from './features';

const UFFD_API = 0xaan;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
const UFFD_USER_MODE_ONLY = 1;

export type OpenVia = 'auto' | 'device' | 'syscall';

export interface Negotiated {
  supported: bigint;
  enabled: bigint;
  ioctls: bigint;
}

export interface OpenedFd {
  fd: number;
  openedVia: 'device' | 'syscall';
  negotiated: Negotiated;
}

function openFd(via: OpenVia, flags: number): { fd: number; openedVia: 'device' | 'syscall' } {
  if (via === 'device') return { fd: native.openViaDevice(flags), openedVia: 'device' };
  if (via === 'syscall') return { fd: native.openViaSyscall(flags), openedVia: 'syscall' };
  try {
    return { fd: native.openViaDevice(flags), openedVia: 'device' };
  } catch (deviceError) {
    try {
      return { fd: native.openViaSyscall(flags), openedVia: 'syscall' };
    } catch (syscallError) {
      (syscallError as Error & { deviceError?: unknown }).deviceError = deviceError;
      throw syscallError;
    }
  }
}

/** The kernel's supported feature set, asked on a throwaway fd (UFFDIO_API can be done once per fd). */
export function probeSupported(via: OpenVia, flags = O_CLOEXEC | O_NONBLOCK): bigint {
  const probe = openFd(via, flags);
  try {
    return native.api(probe.fd, UFFD_API, 0n)[0];
  } finally {
    native.closeFd(probe.fd);
  }
}

/**
 * Opens a non-blocking, close-on-exec userfaultfd with `requested` enabled.
 * The supported set is read first, so an unsupported feature is an error
 * naming it. THREAD_ID is always enabled when supported: the reader needs
 * it to recognise faults of the JS thread.
 */
export function openNegotiated(via: OpenVia, userModeOnly: boolean, requested: readonly unknown[]): OpenedFd {
  for (const f of requested) {
    if (!isFeature(f)) throw new TypeError(`unknown userfaultfd feature ${JSON.stringify(f)}; known: ${FEATURES.join(', ')}`);
  }
  const features = requested as readonly Feature[];
  const flags = O_CLOEXEC | O_NONBLOCK | (userModeOnly ? UFFD_USER_MODE_ONLY : 0);
  const supported = probeSupported(via, flags);
  const missing = features.filter((f) => ((supported >> BigInt(FEATURE_BITS[f])) & 1n) === 0n);
  if (missing.length) {
    const err = new Error(`userfaultfd: the kernel does not support ${missing.map((f) => `UFFD_FEATURE_${f}`).join(', ')}`) as Error & {
      code: string;
      features: Feature[];
    };
    err.code = 'ERR_UFFD_FEATURE_UNSUPPORTED';
    err.features = missing;
    throw err;
  }
  let enabled = featureMask(features);
  if ((supported >> BigInt(FEATURE_BITS.THREAD_ID)) & 1n) enabled |= 1n << BigInt(FEATURE_BITS.THREAD_ID);

  const { fd, openedVia } = openFd(via, flags);
  let ioctls: bigint;
  try {
    ioctls = native.api(fd, UFFD_API, enabled)[1];
  } catch (err) {
    native.closeFd(fd);
    // The kernel refuses EVENT_FORK without CAP_SYS_PTRACE with a bare
    // EPERM: say which feature and which capability.
    const e = err as UffdError;
    if (e.code === 'EPERM' && features.includes('EVENT_FORK')) {
      throw errnoError(-e.errno, e.syscall, undefined, undefined, 'UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE (or root)');
    }
    throw err;
  }
  return { fd, openedVia, negotiated: { supported, enabled, ioctls } };
}

interface Closable {
  close(): void;
}

/** Open userfaultfds of this environment, closed when the process exits so no thread stays blocked. */
const openHandles = new Set<Closable>();
let exitHookInstalled = false;

/** Closes `handle` at process exit unless forgotten first (closeAtExit(handle, false)). */
export function closeAtExit(handle: Closable, enable = true): void {
  if (!enable) {
    openHandles.delete(handle);
    return;
  }
  openHandles.add(handle);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // process.exit() runs no environment cleanup hooks, but it does emit
  // 'exit'. Closing every uffd here wakes threads blocked in faults (they
  // then see zero pages), so exit and Worker termination never hang.
  process.on('exit', () => {
    for (const u of [...openHandles]) {
      // One failing close (its fd closed behind our back: EBADF) must not
      // leave the others open, with their blocked threads, nor turn 'exit'
      // into an uncaught exception.
      try {
        u.close();
      } catch {
        // The handle is marked closed before the syscall; nothing to retry.
      }
    }
  });
}
