// Memory fixtures shared by the ioctl suites: a region of anonymous, shmem
// (memfd) or hugetlb (2M memfd) memory, with for the file kinds a second,
// never registered mapping of the same pages (the alias through which a
// MINOR-fault handler fills the page cache), and page patterns whose first
// 32-bit word is known, so that touchPages() values can be checked.
import { it } from 'vitest';
import { HUGE_2M, Mapping, MemoryFile, PAGE_SIZE } from '../../lib/index';
import { hugetlbSkipReason } from './hugepages';

export type MemoryKind = 'anon' | 'shmem' | 'hugetlb';
export const ALL_KINDS: readonly MemoryKind[] = ['anon', 'shmem', 'hugetlb'];
/** Kinds that have a page cache, hence an alias and MINOR faults. */
export const FILE_KINDS: readonly MemoryKind[] = ['shmem', 'hugetlb'];

export function pageSizeOf(kind: MemoryKind): number {
  return kind === 'hugetlb' ? HUGE_2M : PAGE_SIZE;
}

export interface Region {
  readonly kind: MemoryKind;
  readonly pageSize: number;
  readonly pages: number;
  readonly length: number;
  /** The mapping the tests register. */
  readonly mapping: Mapping;
  /** A second mapping of the same file (shmem, hugetlb), never registered. */
  readonly alias: Mapping | undefined;
  readonly file: MemoryFile | undefined;
  /** Address of page `i` of `mapping`. */
  page(i: number): number;
  /**
   * Writes `data` to page `i` through the alias, which puts the page in the
   * page cache without mapping it in `mapping` (a later access there is a
   * MINOR fault).
   */
  fillAlias(i: number, data: Buffer): void;
  /** Writes `data` to page `i` through `mapping`; only before registering it. */
  prefill(i: number, data: Buffer): void;
  /** A copy of page `i` as seen through `mapping`; only for pages that are resolved. */
  read(i: number): Buffer;
  /** A copy of page `i` as seen through the alias. */
  readAlias(i: number): Buffer;
  dispose(): void;
}

export function makeRegion(kind: MemoryKind, pages: number): Region {
  const pageSize = pageSizeOf(kind);
  const length = pages * pageSize;
  let file: MemoryFile | undefined;
  let mapping: Mapping;
  let alias: Mapping | undefined;
  if (kind === 'anon') {
    mapping = Mapping.anonymous(length);
  } else {
    file = MemoryFile.memfd(length, kind === 'hugetlb' ? { hugePageSize: HUGE_2M, name: 'ioctl-tests' } : { name: 'ioctl-tests' });
    mapping = file.map();
    alias = file.map();
  }
  const needAlias = (): Mapping => {
    if (!alias) throw new Error(`${kind} memory has no page cache alias`);
    return alias;
  };
  // POPULATE_WRITE before writing from JavaScript: on hugetlb an empty pool
  // then gives an errno error instead of SIGBUS in the test runner.
  const write = (m: Mapping, i: number, data: Buffer): void => {
    if (data.length !== pageSize) throw new RangeError(`page data must be ${pageSize} bytes`);
    m.madvise('POPULATE_WRITE', i * pageSize, pageSize);
    data.copy(m.buffer(i * pageSize, pageSize));
  };
  return {
    kind,
    pageSize,
    pages,
    length,
    mapping,
    alias,
    file,
    page: (i) => mapping.address + i * pageSize,
    fillAlias: (i, data) => write(needAlias(), i, data),
    prefill: (i, data) => write(mapping, i, data),
    read: (i) => Buffer.from(mapping.buffer(i * pageSize, pageSize)),
    readAlias: (i) => Buffer.from(needAlias().buffer(i * pageSize, pageSize)),
    dispose() {
      alias?.unmap();
      mapping.unmap();
      file?.close();
    },
  };
}

/**
 * A page of 32-bit words seed, seed + 1, ...: its first word (what
 * touchPages reports for it) is `seed`, and every word differs from its
 * neighbours, so a copy from a wrong offset shows.
 */
export function pattern(length: number, seed: number): Buffer {
  const words = new Uint32Array(length / 4);
  for (let i = 0; i < words.length; i++) words[i] = (seed + i) >>> 0;
  return Buffer.from(words.buffer);
}

/** `pattern()` with its first word replaced by `first`: a page after a native write of `first`. */
export function patternWithFirstWord(length: number, seed: number, first: number): Buffer {
  const page = pattern(length, seed);
  page.writeUInt32LE(first >>> 0, 0);
  return page;
}

/** Huge pages a test on `kind` needs: its region plus a margin for parallel test files. */
function hugePagesNeeded(pages: number): number {
  return pages + 2;
}

/**
 * One test per memory kind, named "name [kind]". Hugetlb cases skip, with the
 * reason in their name, when the 2M pool has too few free pages.
 */
export function itOnKinds(kinds: readonly MemoryKind[], name: string, fn: (kind: MemoryKind) => Promise<void>, hugePages = 2): void {
  for (const kind of kinds) {
    const reason = kind === 'hugetlb' ? hugetlbSkipReason(hugePagesNeeded(hugePages)) : undefined;
    it.skipIf(reason !== undefined)(`${name} [${kind}]${reason ? ` (skipped: ${reason})` : ''}`, () => fn(kind));
  }
}
