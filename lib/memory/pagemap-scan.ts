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

function maskOf(name: string, list: unknown): number {
  if (list === undefined) return 0;
  if (!Array.isArray(list)) throw new TypeError(`${name} must be an array of page categories (got ${describe(list)})`);
  let mask = 0;
  for (const c of list) mask |= PAGE_CATEGORIES[checkOneOf(name, c, NAMES)];
  return mask;
}

/**
 * The regions of [address, address + length) whose pages match, from one
 * PAGEMAP_SCAN ioctl. Continue from `walkEnd` if it is short of the end.
 */
export function pagemapScan(address: number, length: number, options?: PagemapScanOptions): PagemapScanResult {
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

  const vec = new ArrayBuffer(maxRegions * REGION_SIZE);
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  let count: number;
  let walkEnd: number;
  try {
    [count, walkEnd] = native.pagemapScan(fd, address, address + length, flags, excluded, required | excluded, anyOf, report, maxPages, vec);
  } catch (err) {
    withRange(err, address, length);
  } finally {
    closeSync(fd);
  }
  // 32-bit halves, not BigInts (addresses are below 2^47); one frozen
  // category list per distinct bit set: a dirty-tracking scan returns tens of
  // thousands of regions, and this loop must not cost more than the walk.
  const words = new Uint32Array(vec, 0, count * 6);
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
