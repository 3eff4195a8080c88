// PAGEMAP_SCAN (Linux 6.7+): one ioctl on /proc/<pid>/pagemap that walks a
// range and returns the regions whose pages match a set of categories, and
// can write-protect the matching pages in the same walk. With a uffd in
// WP_ASYNC mode this is dirty tracking: register WP, write-protect, let the
// program run (writes are unprotected by the kernel, no fault message), then
// scan for 'written' pages, with writeProtect: true to start the next round.
import { closeSync, openSync } from 'node:fs';
import { withRange } from '../errors';
import { native } from '../native';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf, describe } from '../validate';
import { PAGE_SIZE } from './constants';

/** PAGE_IS_* categories of include/uapi/linux/fs.h (6.18), by bit. */
export const PAGE_CATEGORIES = {
  wpAllowed: 1 << 0,
  written: 1 << 1,
  file: 1 << 2,
  present: 1 << 3,
  swapped: 1 << 4,
  pfnZero: 1 << 5,
  huge: 1 << 6,
  softDirty: 1 << 7,
  guard: 1 << 8,
} as const;
export type PageCategory = keyof typeof PAGE_CATEGORIES;
const NAMES = Object.keys(PAGE_CATEGORIES) as PageCategory[];
const ALL = NAMES.reduce((m, n) => m | PAGE_CATEGORIES[n], 0);

const PM_SCAN_WP_MATCHING = 1 << 0;
const PM_SCAN_CHECK_WPASYNC = 1 << 1;
const REGION_SIZE = 24; // struct page_region: start, end, categories (u64 each)

export interface PagemapScanOptions {
  /** Every one of these categories must hold (category_mask). */
  categories?: readonly PageCategory[];
  /** None of these may hold (category_inverted + category_mask). */
  excluded?: readonly PageCategory[];
  /** At least one of these must hold (category_anyof_mask). */
  anyOf?: readonly PageCategory[];
  /** Categories reported per region (return_mask); default: every category named above, or all. */
  report?: readonly PageCategory[];
  /** Write-protect the matching pages in the same walk (PM_SCAN_WP_MATCHING; needs a WP_ASYNC uffd). */
  writeProtect?: boolean;
  /** Fail with EPERM unless the whole range is registered with a WP_ASYNC uffd (PM_SCAN_CHECK_WPASYNC). */
  checkWpAsync?: boolean;
  /** Stop after this many matching pages (0, the default: no limit). */
  maxPages?: number;
  /** Room for this many regions (default 4096); the walk stops when it is full. */
  maxRegions?: number;
  /** Scan another process (needs ptrace access to it). Default: this one. */
  pid?: number | 'self';
}

export interface PageRegion {
  readonly start: number;
  readonly end: number;
  /** The reported categories (`report`) that hold for every page of the region. */
  readonly categories: readonly PageCategory[];
}

export interface PagemapScanResult {
  readonly regions: PageRegion[];
  /** Where the walk stopped: less than the end of the range when maxRegions or maxPages cut it short. */
  readonly walkEnd: number;
}

const CATEGORY_LISTS = new Map<number, readonly PageCategory[]>();
function categoriesOf(bits: number): readonly PageCategory[] {
  let list = CATEGORY_LISTS.get(bits);
  if (list === undefined) {
    list = Object.freeze(NAMES.filter((n) => (bits & PAGE_CATEGORIES[n]) !== 0));
    CATEGORY_LISTS.set(bits, list);
  }
  return list;
}

// The region buffer is reused from call to call (it is decoded before the
// call returns): the kernel writes into it, and every write into a fresh
// buffer's untouched pages is a page fault, which made a 16k-region scan
// 3x slower than the walk itself. Up to 4 MiB is kept (170k regions).
const KEEP_BYTES = 4 << 20;
let kept: ArrayBuffer | undefined;
function regionBuffer(bytes: number): Uint8Array {
  if (bytes > KEEP_BYTES) return new Uint8Array(bytes);
  if (kept === undefined || kept.byteLength < bytes) kept = new ArrayBuffer(Math.max(bytes, 64 * REGION_SIZE));
  // Exactly `bytes`: the kernel's vec_len (the room for regions) is its size.
  return new Uint8Array(kept, 0, bytes);
}

function maskOf(name: string, list: unknown): number {
  if (list === undefined) return 0;
  if (!Array.isArray(list)) throw new TypeError(`${name} must be an array of page categories (got ${describe(list)})`);
  let mask = 0;
  for (const c of list) mask |= PAGE_CATEGORIES[checkOneOf(name, c, NAMES)];
  return mask;
}

export interface PagemapScanArrays {
  /** How many regions were found: the first `count` entries of each array. */
  readonly count: number;
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  /** The reported categories of each region, as PAGE_CATEGORIES bits. */
  readonly categories: Uint32Array;
  /** Where the walk stopped: less than the end of the range when maxRegions or maxPages cut it short. */
  readonly walkEnd: number;
}

/** One PAGEMAP_SCAN ioctl; the regions stay in `vec` (24-byte page_region records). */
function scan(address: number, length: number, options: PagemapScanOptions | undefined): { vec: Uint8Array; count: number; walkEnd: number } {
  const opts = checkObject<PagemapScanOptions>('options', options);
  checkInteger('address', address, 1);
  checkInteger('length', length, 1);
  checkAligned('address', address, PAGE_SIZE);
  const required = maskOf('options.categories', opts.categories);
  const excluded = maskOf('options.excluded', opts.excluded);
  const anyOf = maskOf('options.anyOf', opts.anyOf);
  if (required & excluded) throw new RangeError('options.categories and options.excluded overlap');
  const mentioned = required | excluded | anyOf;
  const report = opts.report === undefined ? mentioned || ALL : maskOf('options.report', opts.report);
  if (report === 0) throw new RangeError('options.report must name at least one category');
  let flags = 0;
  if (opts.writeProtect !== undefined && checkBoolean('options.writeProtect', opts.writeProtect)) flags |= PM_SCAN_WP_MATCHING;
  if (opts.checkWpAsync !== undefined && checkBoolean('options.checkWpAsync', opts.checkWpAsync)) flags |= PM_SCAN_CHECK_WPASYNC;
  const maxPages = checkInteger('options.maxPages', opts.maxPages ?? 0);
  const maxRegions = checkInteger('options.maxRegions', opts.maxRegions ?? 4096, 1, 1 << 24);
  const pid = opts.pid ?? 'self';
  if (pid !== 'self') checkInteger('options.pid', pid, 1);

  const vec = regionBuffer(maxRegions * REGION_SIZE);
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const [count, walkEnd] = native.pagemapScan(fd, address, address + length, flags, excluded, required | excluded, anyOf, report, maxPages, vec);
    return { vec, count, walkEnd };
  } catch (err) {
    withRange(err, address, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * The regions of [address, address + length) whose pages match, from one
 * PAGEMAP_SCAN ioctl. Continue from `walkEnd` if it is short of the end.
 */
export function pagemapScan(address: number, length: number, options?: PagemapScanOptions): PagemapScanResult {
  const { vec, count, walkEnd } = scan(address, length, options);
  // 32-bit halves, not BigInts (addresses are below 2^47); one frozen
  // category list per distinct bit set.
  const words = new Uint32Array(vec.buffer, vec.byteOffset, count * 6);
  const regions: PageRegion[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const w = i * 6;
    regions[i] = {
      start: words[w]! + words[w + 1]! * 0x100000000,
      end: words[w + 2]! + words[w + 3]! * 0x100000000,
      categories: categoriesOf(words[w + 4]!),
    };
  }
  return { regions, walkEnd };
}

export interface PagemapScanOutput {
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  readonly categories: Uint32Array;
}

/**
 * pagemapScan() with the regions in three typed arrays instead of one object
 * each: for dirty tracking over large ranges, where tens of thousands of
 * regions come back every round and allocating an object per region (and
 * collecting them) costs several times the walk itself. Pass `out` to reuse
 * the same arrays round after round (fresh memory costs a page fault per
 * page on first write); maxRegions then defaults to their length.
 */
export function pagemapScanArrays(address: number, length: number, options?: PagemapScanOptions, out?: PagemapScanOutput): PagemapScanArrays {
  let room = Infinity;
  if (out !== undefined) {
    if (out === null || typeof out !== 'object') throw new TypeError(`out must be {starts, ends, categories} (got ${describe(out)})`);
    if (!(out.starts instanceof Float64Array)) throw new TypeError(`out.starts must be a Float64Array (got ${describe(out.starts)})`);
    if (!(out.ends instanceof Float64Array)) throw new TypeError(`out.ends must be a Float64Array (got ${describe(out.ends)})`);
    if (!(out.categories instanceof Uint32Array)) throw new TypeError(`out.categories must be a Uint32Array (got ${describe(out.categories)})`);
    room = Math.min(out.starts.length, out.ends.length, out.categories.length);
    if (room === 0) throw new RangeError('out arrays must hold at least one region');
    const asked = options?.maxRegions;
    if (asked !== undefined && typeof asked === 'number' && asked > room) {
      throw new RangeError(`options.maxRegions (${asked}) exceeds the room of the out arrays (${room})`);
    }
    if (asked === undefined) options = { ...checkObject<PagemapScanOptions>('options', options), maxRegions: room };
  }
  const { vec, count, walkEnd } = scan(address, length, options);
  const words = new Uint32Array(vec.buffer, vec.byteOffset, count * 6);
  const starts = out?.starts ?? new Float64Array(count);
  const ends = out?.ends ?? new Float64Array(count);
  const categories = out?.categories ?? new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const w = i * 6;
    starts[i] = words[w]! + words[w + 1]! * 0x100000000;
    ends[i] = words[w + 2]! + words[w + 3]! * 0x100000000;
    categories[i] = words[w + 4]!;
  }
  return { count, starts, ends, categories, walkEnd };
}
