// uffd-unit-tests: "UFFDIO_API (with syscall)" and "UFFDIO_API (with
// /dev/userfaultfd)". A uffd opened with O_CLOEXEC | O_NONBLOCK |
// UFFD_USER_MODE_ONLY; UFFDIO_API must reject api != 0xAA and the unknown
// feature bit 63, accept api 0xAA with no features, and reject a second
// UFFDIO_API on the same fd. The C test only asserts that the rejected calls
// fail; the kernel's errno for each is EINVAL, and it zeroes the struct.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { expect, test } from 'vitest';
import { FEATURE_BITS } from '../../lib/index';
import { RAW_UFFD_FLAGS, UFFD_API, rawUffd } from '../../lib/testing/index';

const { EINVAL } = constants.errno;
const FLAGS = RAW_UFFD_FLAGS.CLOEXEC | RAW_UFFD_FLAGS.NONBLOCK | RAW_UFFD_FLAGS.USER_MODE_ONLY;

/** The open flags of fd (octal in /proc/self/fdinfo; O_CLOEXEC is shown from the fd flag). */
function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'));
  return parseInt(line!.slice('flags:'.length).trim(), 8);
}

for (const [label, via] of [
  ['syscall', 'syscall'],
  ['/dev/userfaultfd', 'device'],
] as const) {
  test(`UFFDIO_API (with ${label})`, (ctx) => {
    let fd: number;
    try {
      fd = rawUffd.open({ via, flags: FLAGS });
    } catch (err) {
      // The kernel test skips here too ("cannot open userfaultfd handle").
      const e = err as { code?: string; message: string };
      ctx.skip(`skip: cannot open a userfaultfd via ${label}: ${e.message}`);
      return;
    }
    try {
      const flags = fdFlags(fd);
      expect(flags & RAW_UFFD_FLAGS.CLOEXEC).toBe(RAW_UFFD_FLAGS.CLOEXEC);
      expect(flags & RAW_UFFD_FLAGS.NONBLOCK).toBe(RAW_UFFD_FLAGS.NONBLOCK);

      // A wrong API version.
      expect(rawUffd.api(fd, 0xab, 0)).toEqual({ errno: -EINVAL, code: 'EINVAL', features: 0n, ioctls: 0n });
      // An unknown feature bit.
      expect(rawUffd.api(fd, UFFD_API, 1n << 63n)).toMatchObject({ errno: -EINVAL, code: 'EINVAL' });
      // The handshake itself: everything the kernel supports is reported.
      const ok = rawUffd.api(fd, UFFD_API, 0);
      expect(ok.errno).toBe(0);
      expect((ok.features >> BigInt(FEATURE_BITS.MISSING_SHMEM)) & 1n).toBe(1n);
      expect(ok.ioctls & 0x7fn).not.toBe(0n);
      // A second UFFDIO_API on an initialised uffd, with a feature it supports.
      expect(rawUffd.api(fd, UFFD_API, 1n << BigInt(FEATURE_BITS.PAGEFAULT_FLAG_WP))).toMatchObject({ errno: -EINVAL, code: 'EINVAL' });
    } finally {
      rawUffd.close(fd);
    }
  });
}
