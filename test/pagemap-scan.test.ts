// PAGEMAP_SCAN: dirty tracking with a WP_ASYNC uffd finds exactly the pages
// written since the last write-protect, and the scan's options and errors.
// Writes come from native threads (touchPages); with WP_ASYNC the kernel
// unprotects on its own and no fault message is ever read.
import { afterEach, describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, PAGE_CATEGORIES, Userfaultfd, pagemapScan, pagemapScanArrays } from '../lib';
import { touchPages } from '../lib/testing';

const PAGES = 64;
const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

function tracked() {
  const area = Mapping.anonymous(PAGES * PAGE_SIZE);
  area.madvise('NOHUGEPAGE');
  area.buffer().fill(1);
  const uffd = Userfaultfd.open({ features: ['WP_ASYNC', 'WP_UNPOPULATED'] });
  opened.push(uffd, { close: () => area.unmap() });
  uffd.register(area, ['wp']);
  uffd.writeProtect(area.address, area.length, true);
  return { area, uffd };
}

async function writePages(area: Mapping, pages: number[]): Promise<void> {
  for (const p of pages) await touchPages(area.address + p * PAGE_SIZE, PAGE_SIZE, { write: true, value: 7 });
}

const pagesOf = (area: Mapping, regions: { start: number; end: number }[]) =>
  regions.flatMap((r) => Array.from({ length: (r.end - r.start) / PAGE_SIZE }, (_, i) => (r.start - area.address) / PAGE_SIZE + i));

describe('pagemapScan', () => {
  it('WP_ASYNC dirty tracking finds exactly the written pages, and writeProtect starts a new round', async () => {
    const { area } = tracked();
    const clean = pagemapScan(area.address, area.length, { categories: ['written'] });
    expect(clean.regions).toEqual([]);
    expect(clean.walkEnd).toBe(area.address + area.length);

    await writePages(area, [3, 10, 11, 40, 63]);
    const dirty = pagemapScan(area.address, area.length, { categories: ['written'], writeProtect: true });
    expect(pagesOf(area, dirty.regions)).toEqual([3, 10, 11, 40, 63]);
    // Adjacent written pages are one region; every region reports 'written'.
    expect(dirty.regions.map((r) => [(r.start - area.address) / PAGE_SIZE, (r.end - area.address) / PAGE_SIZE])).toEqual([
      [3, 4],
      [10, 12],
      [40, 41],
      [63, 64],
    ]);
    for (const r of dirty.regions) expect(r.categories).toEqual(['written']);

    // The scan write-protected them again: nothing is written until the next write.
    expect(pagemapScan(area.address, area.length, { categories: ['written'] }).regions).toEqual([]);
    await writePages(area, [5]);
    expect(pagesOf(area, pagemapScan(area.address, area.length, { categories: ['written'] }).regions)).toEqual([5]);
    // The data written is there.
    expect(area.buffer(5 * PAGE_SIZE, 4).readUInt32LE(0)).toBe(7);
  });

  it('excluded, anyOf, report, maxRegions and maxPages', async () => {
    const { area } = tracked();
    await writePages(area, [0, 2, 4]);
    const unwritten = pagemapScan(area.address, 8 * PAGE_SIZE, { excluded: ['written'], report: ['written', 'present'] });
    expect(pagesOf(area, unwritten.regions)).toEqual([1, 3, 5, 6, 7]);
    for (const r of unwritten.regions) expect(r.categories).toEqual(['present']);

    const any = pagemapScan(area.address, 8 * PAGE_SIZE, { anyOf: ['written', 'swapped'], report: ['written'] });
    expect(pagesOf(area, any.regions)).toEqual([0, 2, 4]);

    const firstTwo = pagemapScan(area.address, area.length, { categories: ['written'], maxRegions: 2 });
    expect(pagesOf(area, firstTwo.regions)).toEqual([0, 2]);
    expect(firstTwo.walkEnd).toBeLessThan(area.address + area.length);
    const rest = pagemapScan(firstTwo.walkEnd, area.address + area.length - firstTwo.walkEnd, { categories: ['written'] });
    expect(pagesOf(area, rest.regions)).toEqual([4]);

    expect(pagesOf(area, pagemapScan(area.address, area.length, { categories: ['written'], maxPages: 1 }).regions)).toEqual([0]);
  });

  it('reports present pages of memory without any uffd', () => {
    const area = Mapping.anonymous(4 * PAGE_SIZE);
    opened.push({ close: () => area.unmap() });
    area.buffer(PAGE_SIZE, PAGE_SIZE).fill(1);
    const r = pagemapScan(area.address, area.length, { categories: ['present'] });
    expect(pagesOf(area, r.regions)).toEqual([1]);
  });

  it('bad input: precise TypeError/RangeError before the ioctl; kernel refusals as errno errors', () => {
    const area = Mapping.anonymous(4 * PAGE_SIZE);
    opened.push({ close: () => area.unmap() });
    expect(() => pagemapScan(area.address + 1, PAGE_SIZE)).toThrow(RangeError);
    expect(() => pagemapScan(area.address, 0)).toThrow(RangeError);
    expect(() => pagemapScan(area.address, PAGE_SIZE, { categories: ['dirty' as never] })).toThrow(TypeError);
    expect(() => pagemapScan(area.address, PAGE_SIZE, { categories: 'written' as never })).toThrow(TypeError);
    expect(() => pagemapScan(area.address, PAGE_SIZE, { categories: ['written'], excluded: ['written'] })).toThrow(RangeError);
    expect(() => pagemapScan(area.address, PAGE_SIZE, { maxRegions: 0 })).toThrow(RangeError);
    expect(() => pagemapScan(area.address, PAGE_SIZE, { writeProtect: 1 as never })).toThrow(TypeError);
    // The range is not registered with a WP_ASYNC uffd.
    expect(() => pagemapScan(area.address, area.length, { checkWpAsync: true })).toThrow(
      expect.objectContaining({ code: 'EPERM', syscall: 'ioctl(PAGEMAP_SCAN)', address: area.address, length: area.length }),
    );
  });
});

describe('pagemapScanArrays', () => {
  const pagesOfArrays = (area: Mapping, r: { count: number; starts: Float64Array; ends: Float64Array }) =>
    pagesOf(
      area,
      Array.from({ length: r.count }, (_, i) => ({ start: r.starts[i]!, end: r.ends[i]! })),
    );

  it('finds the same regions as pagemapScan, and reuses the out arrays round after round', async () => {
    const { area } = tracked();
    await writePages(area, [1, 2, 9, 30]);
    const objects = pagemapScan(area.address, area.length, { categories: ['written'] });
    const arrays = pagemapScanArrays(area.address, area.length, { categories: ['written'] });
    expect(arrays.count).toBe(objects.regions.length);
    expect(pagesOfArrays(area, arrays)).toEqual([1, 2, 9, 30]);
    expect(arrays.walkEnd).toBe(objects.walkEnd);
    for (let i = 0; i < arrays.count; i++) expect(arrays.categories[i]).toBe(PAGE_CATEGORIES.written);
    // The first result is decoded: a later scan (same internal buffer) leaves it alone.
    expect(pagesOf(area, objects.regions)).toEqual([1, 2, 9, 30]);

    const out = { starts: new Float64Array(8), ends: new Float64Array(8), categories: new Uint32Array(8) };
    const first = pagemapScanArrays(area.address, area.length, { categories: ['written'], writeProtect: true }, out);
    expect(first.starts).toBe(out.starts);
    expect(pagesOfArrays(area, first)).toEqual([1, 2, 9, 30]);
    await writePages(area, [50]);
    const second = pagemapScanArrays(area.address, area.length, { categories: ['written'] }, out);
    expect(pagesOfArrays(area, second)).toEqual([50]);
    expect(second.ends).toBe(out.ends);
  });

  it('out arrays bound the regions (maxRegions defaults to their room); bad out is a TypeError/RangeError', async () => {
    const { area } = tracked();
    await writePages(area, [0, 2, 4]);
    const small = { starts: new Float64Array(2), ends: new Float64Array(2), categories: new Uint32Array(2) };
    const r = pagemapScanArrays(area.address, area.length, { categories: ['written'] }, small);
    expect(r.count).toBe(2);
    expect(pagesOfArrays(area, r)).toEqual([0, 2]);
    expect(r.walkEnd).toBeLessThan(area.address + area.length);

    expect(() => pagemapScanArrays(area.address, area.length, { maxRegions: 3 }, small)).toThrow(RangeError);
    expect(() => pagemapScanArrays(area.address, area.length, {}, { ...small, starts: [] as never })).toThrow(TypeError);
    expect(() => pagemapScanArrays(area.address, area.length, {}, { ...small, categories: new Float64Array(2) as never })).toThrow(TypeError);
    expect(() => pagemapScanArrays(area.address, area.length, {}, null as never)).toThrow(TypeError);
    const empty = { starts: new Float64Array(0), ends: new Float64Array(0), categories: new Uint32Array(0) };
    expect(() => pagemapScanArrays(area.address, area.length, {}, empty)).toThrow(RangeError);
    expect(() => pagemapScanArrays(area.address + 1, PAGE_SIZE)).toThrow(RangeError);
  });
});
