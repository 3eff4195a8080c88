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
  /** Bits 0-54 of a present page: its page frame number (0 without CAP_SYS_ADMIN); undefined otherwise. */
  readonly pfn: bigint | undefined;
  /** The raw entry. */
  readonly raw: bigint;
}

const PFN_MASK = (1n << 55n) - 1n;

/** Decodes one raw /proc/pid/pagemap entry (also what forkChild's 'pagemap' step reports). */
export function decodePagemapEntry(raw: bigint): PagemapEntry {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  const present = bit(63);
  return {
    present,
    swapped: bit(62),
    file: bit(61),
    uffdWp: bit(57),
    exclusive: bit(56),
    softDirty: bit(55),
    pfn: present ? raw & PFN_MASK : undefined,
    raw,
  };
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
  for (let i = 0; i < pages; i++) out.push(decodePagemapEntry(buf.readBigUInt64LE(i * 8)));
  return out;
}
