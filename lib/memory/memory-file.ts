// Files whose pages can be mapped several times: memfd (shmem), hugetlb
// memfd (2M or 1G pages) and files on a hugetlbfs mount. Mapping one twice
// gives the alias a MINOR-fault handler fills before UFFDIO_CONTINUE.
import { closeSync, openSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { native } from '../native';
import { closedError, withRange } from '../errors';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf, describe } from '../validate';
import { FALLOC, HUGE_1G, HUGE_2M, HUGE_SHIFT, MAP, MFD, PAGE_SIZE, protBits, type Protection } from './constants';
import { Mapping, mapRegion } from './mapping';

/** statfs() f_type of hugetlbfs (linux/magic.h). */
const HUGETLBFS_MAGIC = 0x958458f6;

export interface MemfdOptions {
  /** Use hugetlb pages of this size (MFD_HUGETLB). Default: shmem with 4K pages. */
  hugePageSize?: typeof HUGE_2M | typeof HUGE_1G;
  /** The name shown in /proc/self/fd and /proc/self/maps. */
  name?: string;
}

export interface MapFileOptions {
  /** MAP_SHARED (default) or MAP_PRIVATE. */
  shared?: boolean;
  offset?: number;
  length?: number;
  /** Address hint, as in the kernel selftests' alias at a fixed hint. */
  address?: number;
  protection?: Protection;
}

export class MemoryFile {
  readonly size: number;
  readonly pageSize: number;
  readonly kind: 'shmem' | 'hugetlb' | 'guest_memfd';
  #fd: number;

  private constructor(fd: number, size: number, pageSize: number, kind?: 'guest_memfd') {
    this.#fd = fd;
    this.size = size;
    this.pageSize = pageSize;
    this.kind = kind ?? (pageSize === PAGE_SIZE ? 'shmem' : 'hugetlb');
  }

  /**
   * A KVM guest_memfd of `size` bytes, mmap()able (GUEST_MEMFD_FLAG_MMAP,
   * Linux 6.18), made through a throwaway VM on /dev/kvm. Linux 6.18 cannot
   * register it with a userfaultfd (EINVAL); the doctor reports that.
   */
  static guestMemfd(size: number): MemoryFile {
    checkInteger('size', size, 1);
    checkAligned('size', size, PAGE_SIZE);
    const GUEST_MEMFD_FLAG_MMAP = 1;
    return new MemoryFile(native.guestMemfdCreate(size, GUEST_MEMFD_FLAG_MMAP), size, PAGE_SIZE, 'guest_memfd');
  }

  /** memfd_create() of `size` bytes: shmem, or hugetlb with options.hugePageSize. */
  static memfd(size: number, options?: MemfdOptions): MemoryFile {
    const opts = checkObject<MemfdOptions>('options', options);
    const pageSize = opts.hugePageSize === undefined ? PAGE_SIZE : checkInteger('options.hugePageSize', opts.hugePageSize);
    if (pageSize !== PAGE_SIZE && pageSize !== HUGE_2M && pageSize !== HUGE_1G) {
      throw new RangeError(`options.hugePageSize must be ${HUGE_2M} or ${HUGE_1G} (got ${String(opts.hugePageSize)})`);
    }
    const bytes = checkInteger('size', size, 1);
    checkAligned('size', bytes, pageSize);
    if (opts.name !== undefined && typeof opts.name !== 'string') {
      throw new TypeError(`options.name must be a string (got ${describe(opts.name)})`);
    }
    const name = opts.name ?? 'userfaultfd';
    // memfd_create() would silently cut the name at the first NUL.
    if (name.includes('\0')) throw new TypeError('options.name must not contain NUL characters');
    let flags = MFD.CLOEXEC;
    if (pageSize !== PAGE_SIZE) flags |= MFD.HUGETLB | (Math.log2(pageSize) << HUGE_SHIFT);
    const fd = native.memfdCreate(name, flags);
    try {
      native.ftruncate(fd, bytes);
    } catch (err) {
      native.closeFd(fd);
      withRange(err, undefined, bytes);
    }
    return new MemoryFile(fd, bytes, pageSize);
  }

  /**
   * Opens (creating if needed) a file on a hugetlbfs mount and sizes it. The
   * page size is the mount's.
   */
  static openHugetlbfs(path: string, size: number): MemoryFile {
    if (typeof path !== 'string') throw new TypeError(`path must be a string (got ${describe(path)})`);
    const bytes = checkInteger('size', size, 1);
    // Check the file system before opening: opening creates the file (and
    // sizing it truncates it), which must not happen to a file elsewhere.
    const fs = statfsSync(dirname(path));
    if (fs.type !== HUGETLBFS_MAGIC) throw new RangeError(`${path} is not on a hugetlbfs mount`);
    checkAligned('size', bytes, fs.bsize);
    const fd = openSync(path, 'w+');
    try {
      const pageSize = native.hugetlbPageSize(fd);
      if (pageSize === 0) throw new RangeError(`${path} is not on a hugetlbfs mount`);
      native.ftruncate(fd, bytes);
      native.ownMemoryFd(fd); // closed at environment teardown if close() never runs
      return new MemoryFile(fd, bytes, pageSize);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw closedError('memory file', 'fd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  #fdFor(syscall: string): number {
    if (this.#fd < 0) throw closedError('memory file', syscall);
    return this.#fd;
  }

  /** mmap() the file (or a part of it). Each call gives a new alias. */
  map(options?: MapFileOptions): Mapping {
    const opts = checkObject<MapFileOptions>('options', options);
    const fd = this.#fdFor('mmap');
    const offset = opts.offset === undefined ? 0 : checkInteger('options.offset', opts.offset, 0, this.size);
    const length = opts.length === undefined ? this.size - offset : checkInteger('options.length', opts.length, 1, this.size - offset);
    checkAligned('options.offset', offset, this.pageSize);
    checkAligned('options.length', length, this.pageSize);
    const hint = opts.address === undefined ? 0 : checkInteger('options.address', opts.address);
    checkAligned('options.address', hint, this.pageSize);
    const shared = opts.shared === undefined ? true : checkBoolean('options.shared', opts.shared);
    const prot = protBits(opts.protection === undefined ? 'read-write' : checkOneOf('options.protection', opts.protection, ['none', 'read', 'read-write']));
    // No MAP_NORESERVE: hugetlb pages are reserved at mmap() time, so an empty
    // pool is a clean ENOMEM here rather than SIGBUS at the first touch.
    const flags = shared ? MAP.SHARED : MAP.PRIVATE;
    const [id, address] = mapRegion(hint, length, prot, flags, fd, offset, this.pageSize);
    return new Mapping({ id, address, length, pageSize: this.pageSize, kind: this.kind, shared });
  }

  /** fallocate(PUNCH_HOLE | KEEP_SIZE): drops the pages of [offset, offset + length). */
  punchHole(offset: number, length: number): void {
    const fd = this.#fdFor('fallocate');
    const o = checkInteger('offset', offset, 0, this.size);
    const n = checkInteger('length', length, 1, this.size - o);
    checkAligned('offset', o, this.pageSize);
    checkAligned('length', n, this.pageSize);
    try {
      native.fallocate(fd, FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, o, n);
    } catch (err) {
      withRange(err, o, n);
    }
  }

  /** Closes the fd. Mappings stay valid (the kernel keeps the file). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native.closeFd(fd);
  }
}
