// /proc/self/pagemap: one 64-bit entry per 4K virtual page
// (Documentation/admin-guide/mm/pagemap.rst). Read with plain file I/O.
import { closeSync, openSync, readSync } from 'node:fs';
import { checkAligned, checkInteger } from '../validate';
import { PAGE_SIZE } from './constants';

export interface PagemapEntry {
  /** Bit 63: the page is present in RAM. */
  readonly present: boolean;
  /** Bit 62: the page is swapped out. */
  readonly swapped: boolean;
  /** Bit 61: file-backed or shared anonymous page. */
  readonly file: boolean;
  /** Bit 57: the pte is write-protected by userfaultfd (PM_UFFD_WP). */
  readonly uffdWp: boolean;
  /** Bit 56: the page is exclusively mapped. */
  readonly exclusive: boolean;
  /** Bit 55: the pte is soft-dirty. */
  readonly softDirty: boolean;
  /** The raw entry. */
  readonly raw: bigint;
}

function decode(raw: bigint): PagemapEntry {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  return { present: bit(63), swapped: bit(62), file: bit(61), uffdWp: bit(57), exclusive: bit(56), softDirty: bit(55), raw };
}

/**
 * The pagemap entries of [address, address + length), one per 4K page, of
 * this process (or of `pid`).
 */
export function readPagemap(address: number, length: number, pid: number | 'self' = 'self'): PagemapEntry[] {
  checkInteger('address', address);
  checkInteger('length', length, 1);
  checkAligned('address', address, PAGE_SIZE);
  const pages = Math.ceil(length / PAGE_SIZE);
  const buf = Buffer.alloc(pages * 8);
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, (address / PAGE_SIZE) * 8 + done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const out: PagemapEntry[] = [];
  for (let i = 0; i < pages; i++) out.push(decode(buf.readBigUInt64LE(i * 8)));
  return out;
}
