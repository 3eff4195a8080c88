// Files whose pages can be mapped several times: memfd (shmem), hugetlb
// memfd (2M or 1G pages) and files on a hugetlbfs mount. Mapping one twice
// gives the alias a MINOR-fault handler fills before UFFDIO_CONTINUE.
import { closeSync, openSync } from 'node:fs';
import { native } from '../native';
import { closedError, withRange } from '../errors';
import { checkAligned, checkInteger, checkObject, checkOneOf } from '../validate';
import { FALLOC, HUGE_1G, HUGE_2M, HUGE_SHIFT, MAP, MFD, PAGE_SIZE, protBits, type Protection } from './constants';
import { Mapping } from './mapping';

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
    const pageSize = opts.hugePageSize === undefined ? PAGE_SIZE : opts.hugePageSize;
    if (pageSize !== PAGE_SIZE && pageSize !== HUGE_2M && pageSize !== HUGE_1G) {
      throw new RangeError(`options.hugePageSize must be ${HUGE_2M} or ${HUGE_1G} (got ${String(opts.hugePageSize)})`);
    }
    checkInteger('size', size, 1);
    checkAligned('size', size, pageSize);
    const name = opts.name === undefined ? 'userfaultfd' : String(opts.name);
    let flags = MFD.CLOEXEC;
    if (pageSize !== PAGE_SIZE) flags |= MFD.HUGETLB | (Math.log2(pageSize) << HUGE_SHIFT);
    const fd = native.memfdCreate(name, flags);
    try {
      native.ftruncate(fd, size);
    } catch (err) {
      native.closeFd(fd);
      throw err;
    }
    return new MemoryFile(fd, size, pageSize);
  }

  /**
   * Opens (creating if needed) a file on a hugetlbfs mount and sizes it. The
   * page size is the mount's.
   */
  static openHugetlbfs(path: string, size: number): MemoryFile {
    if (typeof path !== 'string') throw new TypeError('path must be a string');
    checkInteger('size', size, 1);
    const fd = openSync(path, 'w+');
    try {
      const pageSize = native.hugetlbPageSize(fd);
      if (pageSize === 0) throw new RangeError(`${path} is not on a hugetlbfs mount`);
      checkAligned('size', size, pageSize);
      native.ftruncate(fd, size);
      return new MemoryFile(fd, size, pageSize);
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

  /** mmap() the file (or a part of it). Each call gives a new alias. */
  map(options?: MapFileOptions): Mapping {
    const opts = checkObject<MapFileOptions>('options', options);
    const fd = this.fd;
    const offset = opts.offset === undefined ? 0 : checkInteger('options.offset', opts.offset, 0, this.size);
    const length = opts.length === undefined ? this.size - offset : checkInteger('options.length', opts.length, 1, this.size - offset);
    checkAligned('options.offset', offset, this.pageSize);
    checkAligned('options.length', length, this.pageSize);
    const hint = opts.address === undefined ? 0 : checkInteger('options.address', opts.address);
    checkAligned('options.address', hint, this.pageSize);
    const shared = opts.shared ?? true;
    const prot = protBits(opts.protection === undefined ? 'read-write' : checkOneOf('options.protection', opts.protection, ['none', 'read', 'read-write']));
    // No MAP_NORESERVE: hugetlb pages are reserved at mmap() time, so an empty
    // pool is a clean ENOMEM here rather than SIGBUS at the first touch.
    const flags = shared ? MAP.SHARED : MAP.PRIVATE;
    const [id, address] = native.mapRegion(hint, length, prot, flags, fd, offset, this.pageSize);
    return new Mapping({ id, address, length, pageSize: this.pageSize, kind: this.kind, shared });
  }

  /** fallocate(PUNCH_HOLE | KEEP_SIZE): drops the pages of [offset, offset + length). */
  punchHole(offset: number, length: number): void {
    const fd = this.fd;
    checkInteger('offset', offset, 0, this.size);
    checkInteger('length', length, 1, this.size - offset);
    checkAligned('offset', offset, this.pageSize);
    checkAligned('length', length, this.pageSize);
    try {
      native.fallocate(fd, FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, offset, length);
    } catch (err) {
      withRange(err, offset, length);
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
