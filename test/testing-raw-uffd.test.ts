// rawUffd (userfaultfd/testing): a uffd with any open flags, UFFDIO_API and
// UFFDIO_REGISTER with any values and the errno as a value; only its own fds
// are accepted back. Bad arguments are TypeError / RangeError.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE } from '../lib/index';
import { RAW_UFFD_FLAGS, UFFD_API, rawUffd } from '../lib/testing/index';

const { EINVAL } = constants.errno;

describe('rawUffd', () => {
  it('opens without the handshake; api() and register() report the kernel answer', () => {
    const m = Mapping.anonymous(PAGE_SIZE);
    const fd = rawUffd.open({ via: 'device' });
    try {
      // Before UFFDIO_API the fd takes no other ioctl.
      expect(rawUffd.register(fd, m.address, PAGE_SIZE, 1)).toEqual({ errno: -EINVAL, code: 'EINVAL', ioctls: 0n });
      const api = rawUffd.api(fd, UFFD_API, 0n);
      expect(api.errno).toBe(0);
      expect(api.code).toBeUndefined();
      expect(api.features).toBeGreaterThan(0n);
      const reg = rawUffd.register(fd, m.address, PAGE_SIZE, 1);
      expect(reg.errno).toBe(0);
      expect((reg.ioctls >> 3n) & 1n).toBe(1n); // _UFFDIO_COPY
      expect(rawUffd.register(fd, m.address, PAGE_SIZE, 0)).toMatchObject({ errno: -EINVAL, code: 'EINVAL' });
      expect(rawUffd.unregister(fd, m.address, PAGE_SIZE)).toEqual({ errno: 0, code: undefined });
      expect(rawUffd.unregister(fd, m.address + 1, PAGE_SIZE)).toEqual({ errno: -EINVAL, code: 'EINVAL' });
    } finally {
      rawUffd.close(fd);
      m.unmap();
    }
  });

  it('passes the flags as given', () => {
    const fd = rawUffd.open({ via: 'syscall', flags: RAW_UFFD_FLAGS.USER_MODE_ONLY });
    try {
      expect(rawUffd.api(fd, UFFD_API, 0).errno).toBe(0);
    } finally {
      rawUffd.close(fd);
    }
    // An unknown flag: the kernel's EINVAL, as an errno error.
    expect(() => rawUffd.open({ flags: 0x40 })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'userfaultfd' }));
  });

  it('accepts back only its own open fds', () => {
    const fd = rawUffd.open();
    rawUffd.close(fd);
    expect(() => rawUffd.close(fd)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'close' }));
    expect(() => rawUffd.api(fd, UFFD_API, 0)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'ioctl(UFFDIO_API)' }));
    expect(() => rawUffd.api(0, UFFD_API, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => rawUffd.register(1, 4096, 4096, 1)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'ioctl(UFFDIO_REGISTER)' }));
  });

  it('rejects bad arguments before any system call', () => {
    expect(() => rawUffd.open({ via: 'pipe' as 'device' })).toThrow(TypeError);
    expect(() => rawUffd.open({ flags: '1' as unknown as number })).toThrow(TypeError);
    expect(() => rawUffd.open({ flags: -1 })).toThrow(RangeError);
    expect(() => rawUffd.open('device' as never)).toThrow(TypeError);
    const fd = rawUffd.open();
    try {
      expect(() => rawUffd.api(fd, '0xaa' as unknown as number, 0)).toThrow(TypeError);
      expect(() => rawUffd.api(fd, UFFD_API, -1n)).toThrow(RangeError);
      expect(() => rawUffd.api(fd, UFFD_API, 1n << 64n)).toThrow(RangeError);
      expect(() => rawUffd.api(fd, UFFD_API, 1.5)).toThrow(TypeError);
      expect(() => rawUffd.api('3' as unknown as number, UFFD_API, 0)).toThrow(TypeError);
      expect(() => rawUffd.register(fd, 4096, 4096, 2 ** 32)).toThrow(RangeError);
      expect(() => rawUffd.register(fd, null as unknown as number, 4096, 1)).toThrow(TypeError);
      // Nothing was sent: the handshake is still possible.
      expect(rawUffd.api(fd, UFFD_API, 0).errno).toBe(0);
    } finally {
      rawUffd.close(fd);
    }
  });
});
