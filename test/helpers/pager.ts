// A pager over a harness region, and the expected contents of the tests'
// sources: every page of `pattern(length, seed)` has a distinct first word.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pager, type PagerOptions } from '../../lib/index';
import type { FaultHarness } from './harness';
import { pattern } from './memory';

export const SEED = 0x5eed0000;

/** The first 32-bit word of each page of `data`: what touchPages reports. */
export function firstWords(data: Buffer, pageSize: number, stride = pageSize): number[] {
  const out: number[] = [];
  for (let o = 0; o < data.length; o += stride) out.push(data.readUInt32LE(o));
  return out;
}

/** `pattern(length, seed)` as a temporary file; removed by the returned cleanup. */
export function snapshotFile(data: Buffer): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'uffd-pager-'));
  const path = join(dir, 'memory.snap');
  writeFileSync(path, data);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A pager on the harness's uffd; the harness's teardown (uffd.close()) closes it too. */
export function pagerFor(h: FaultHarness, options?: PagerOptions): Pager {
  return Pager.create(h.uffd, options);
}

export { pattern };
