// A mapping the library created (anonymous, memfd/shmem, hugetlb), its
// ArrayBuffer views and the calls that take its addresses. The native region
// table (native/memory/region_table.cc) tracks views in every environment,
// so unmap() can detach them all before munmap().
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from '../native';
import { closedError, errnoError, withRange } from '../errors';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf } from '../validate';
import { MADV, MAP, MREMAP, PAGE_SIZE, protBits, type Advice, type Protection } from './constants';

const { EEXIST } = constants.errno;

export type MappingKind = 'anonymous' | 'shmem' | 'hugetlb' | 'guest_memfd';

/** What a Worker needs to use a mapping created elsewhere: send it with postMessage. */
export interface MappingHandle {
  readonly id: number;
  readonly kind: MappingKind;
  readonly shared: boolean;
}

export interface AnonymousOptions {
  /** Hint for the address (page aligned); the kernel may choose another one. */
  address?: number;
  protection?: Protection;
}

export interface RemapOptions {
  /** Let the kernel move the mapping (MREMAP_MAYMOVE). Default true. */
  mayMove?: boolean;
  /** Move it exactly here (MREMAP_FIXED). */
  address?: number;
}

interface MappingInit {
  id: number;
  address: number;
  length: number;
  pageSize: number;
  kind: MappingKind;
  shared: boolean;
}

/** Mappings of this environment that are still mapped, for lookups by address. */
const liveMappings = new Set<Mapping>();

export class Mapping {
  readonly id: number;
  readonly pageSize: number;
  readonly kind: MappingKind;
  /** MAP_SHARED (true) or MAP_PRIVATE (false). */
  readonly shared: boolean;
  #address: number;
  #length: number;
  #unmapped = false;

  /** @internal use Mapping.anonymous(), MemoryFile#map() or Mapping.attach(). */
  constructor(init: MappingInit) {
    this.id = init.id;
    this.#address = init.address;
    this.#length = init.length;
    this.pageSize = init.pageSize;
    this.kind = init.kind;
    this.shared = init.shared;
    liveMappings.add(this);
  }

  /** A private anonymous mapping (MAP_PRIVATE | MAP_ANONYMOUS) of 4K pages. */
  static anonymous(length: number, options?: AnonymousOptions): Mapping {
    const opts = checkObject<AnonymousOptions>('options', options);
    const bytes = checkInteger('length', length, 1);
    checkAligned('length', bytes, PAGE_SIZE);
    const hint = opts.address === undefined ? 0 : checkInteger('options.address', opts.address);
    checkAligned('options.address', hint, PAGE_SIZE);
    const prot = protBits(opts.protection === undefined ? 'read-write' : checkOneOf('options.protection', opts.protection, ['none', 'read', 'read-write']));
    const [id, address] = mapRegion(hint, bytes, prot, MAP.PRIVATE | MAP.ANONYMOUS | MAP.NORESERVE, -1, 0, PAGE_SIZE);
    return new Mapping({ id, address, length: bytes, pageSize: PAGE_SIZE, kind: 'anonymous', shared: false });
  }

  /** Uses, in this environment (typically a Worker), a mapping created in another one. */
  static attach(handle: MappingHandle): Mapping {
    if (handle === undefined) throw new TypeError('handle must be an object (got undefined)');
    const h = checkObject<MappingHandle>('handle', handle);
    const id = checkInteger('handle.id', h.id, 1);
    const kind = h.kind === undefined ? 'anonymous' : checkOneOf('handle.kind', h.kind, ['anonymous', 'shmem', 'hugetlb']);
    const shared = h.shared === undefined ? false : checkBoolean('handle.shared', h.shared);
    const found = native.attachRegion(id);
    if (!found) throw closedError(`mapping ${id}`, 'attach');
    const [address, length, pageSize] = found;
    return new Mapping({ id, address, length, pageSize, kind, shared });
  }

  /** The mapping that contains [address, address + length), if this environment has one. */
  static containing(address: number, length = 1): Mapping | undefined {
    for (const m of liveMappings) if (m.contains(address, length)) return m;
    return undefined;
  }

  get address(): number {
    this.#check('address');
    return this.#address;
  }

  get length(): number {
    return this.#length;
  }

  /** True once unmap() ran here, or the memory was unmapped (or is being) by another environment. */
  get unmapped(): boolean {
    if (!this.#unmapped) this.#refresh();
    return this.#unmapped;
  }

  get handle(): MappingHandle {
    return { id: this.id, kind: this.kind, shared: this.shared };
  }

  contains(address: number, length = 1): boolean {
    return !this.#unmapped && address >= this.#address && address + length <= this.#address + this.#length;
  }

  /**
   * An ArrayBuffer over [offset, offset + length) of the mapping. It is
   * detached (byteLength 0, access throws) when the mapping is unmapped or
   * remapped, in every environment.
   */
  arrayBuffer(offset = 0, length?: number): ArrayBuffer {
    this.#check('view');
    const r = this.#range(offset, length, 1);
    return native.regionView(this.id, r.offset, r.length);
  }

  /** A Buffer over the same bytes as arrayBuffer(). */
  buffer(offset = 0, length?: number): Buffer {
    return Buffer.from(this.arrayBuffer(offset, length));
  }

  /** madvise() on [offset, offset + length) of the mapping (default: to its end). */
  madvise(advice: Advice, offset = 0, length?: number): void {
    this.#check('madvise');
    const value = MADV[checkOneOf('advice', advice, Object.keys(MADV) as Advice[])];
    const r = this.#range(offset, length, this.pageSize);
    try {
      native.madvise(this.#address + r.offset, r.length, value);
    } catch (err) {
      withRange(err, this.#address + r.offset, r.length);
    }
  }

  /** mprotect() on [offset, offset + length) of the mapping (default: to its end). */
  protect(protection: Protection, offset = 0, length?: number): void {
    this.#check('mprotect');
    const prot = protBits(checkOneOf('protection', protection, ['none', 'read', 'read-write']));
    const r = this.#range(offset, length, this.pageSize);
    try {
      native.mprotect(this.#address + r.offset, r.length, prot);
    } catch (err) {
      withRange(err, this.#address + r.offset, r.length);
    }
  }

  /**
   * mremap(): grow, shrink or move the mapping. Views of this environment are
   * detached; if another environment holds views it fails with EBUSY.
   * Returns the new address.
   */
  remap(newLength: number, options?: RemapOptions): number {
    this.#check('mremap');
    const opts = checkObject<RemapOptions>('options', options);
    const bytes = checkInteger('newLength', newLength, 1);
    checkAligned('newLength', bytes, this.pageSize);
    const mayMove = opts.mayMove === undefined ? true : checkBoolean('options.mayMove', opts.mayMove);
    let flags = mayMove ? MREMAP.MAYMOVE : 0;
    let target = 0;
    if (opts.address !== undefined) {
      target = checkInteger('options.address', opts.address);
      checkAligned('options.address', target, this.pageSize);
      flags |= MREMAP.MAYMOVE | MREMAP.FIXED;
      // MREMAP_FIXED silently replaces whatever is mapped at the target,
      // including other mappings of the library and Node's own memory.
      const own = (start: number, end: number) => start >= this.#address && end <= this.#address + this.#length;
      const clash = mappedRanges().find(([start, end]) => start < target + bytes && end > target && !own(start, end));
      if (clash) {
        throw errnoError(EEXIST, 'mremap', target, bytes, `the destination overlaps 0x${clash[0].toString(16)}-0x${clash[1].toString(16)}, which MREMAP_FIXED would replace`);
      }
    }
    try {
      this.#address = native.remapRegion(this.id, bytes, flags, target);
    } catch (err) {
      withRange(err, this.#address, this.#length);
    }
    this.#length = bytes;
    return this.#address;
  }

  /**
   * munmap(). Idempotent. Every view, in every environment, is detached
   * first; the memory is released once the last environment holding views
   * has detached them (at once when only this one has any). Returns true if
   * it was released now.
   */
  unmap(): boolean {
    if (this.#unmapped) return false;
    this.#unmapped = true;
    liveMappings.delete(this);
    return native.unmapRegion(this.id) === true;
  }

  #check(op: string): void {
    if (!this.#unmapped) this.#refresh();
    if (this.#unmapped) throw closedError(`mapping 0x${this.#address.toString(16)}`, op);
  }

  /**
   * Another environment may have remapped or unmapped the memory since this
   * object last looked (the region table is shared by all of them): take
   * its current address and length, or mark it unmapped. Acting on a stale
   * address would hit whatever the kernel has mapped there since (an
   * mprotect or a madvise(DONTNEED) of another mapping's pages).
   */
  #refresh(): void {
    const found = native.attachRegion(this.id);
    if (found) {
      [this.#address, this.#length] = found;
    } else {
      this.#unmapped = true;
      liveMappings.delete(this);
    }
  }

  /** [offset, offset + length) inside the mapping; length defaults to the rest of it. */
  #range(offset: unknown, length: unknown, alignment: number): { offset: number; length: number } {
    const o = checkInteger('offset', offset, 0, this.#length);
    const n = length === undefined ? this.#length - o : checkInteger('length', length, 0, this.#length - o);
    checkAligned('offset', o, alignment);
    checkAligned('length', n, alignment);
    return { offset: o, length: n };
  }
}

/** mmap() through the region table; a failure names the length asked for. */
export function mapRegion(hint: number, length: number, prot: number, flags: number, fd: number, offset: number, pageSize: number): [id: number, address: number] {
  try {
    return native.mapRegion(hint, length, prot, flags, fd, offset, pageSize);
  } catch (err) {
    withRange(err, hint === 0 ? undefined : hint, length);
  }
}

/** The [start, end) of every mapping of this process, from /proc/self/maps. */
function mappedRanges(): [number, number][] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, end] = (line.split(' ')[0] as string).split('-');
      return [parseInt(start as string, 16), parseInt(end as string, 16)] as [number, number];
    });
}
