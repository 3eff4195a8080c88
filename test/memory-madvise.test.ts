// The madvise values whose effect memory.test.ts only saw "accepted", checked
// where the kernel shows it: /proc/self/smaps (VmFlags hg/nh, AnonHugePages)
// and /proc/self/pagemap (present, swapped).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HUGE_2M, Mapping, PAGE_SIZE, readPagemap } from '../lib/index';

function smapsOf(m: Mapping): string {
  const text = readFileSync('/proc/self/smaps', 'utf8');
  const start = text.indexOf(`${m.address.toString(16)}-`);
  expect(start).toBeGreaterThanOrEqual(0);
  return text.slice(start, text.indexOf('\n', text.indexOf('VmFlags:', start)));
}
const vmFlags = (m: Mapping) => (/VmFlags:(.*)/.exec(smapsOf(m))?.[1] ?? '').trim().split(/\s+/);
const anonHugeKb = (m: Mapping) => Number(/AnonHugePages:\s+(\d+) kB/.exec(smapsOf(m))?.[1]);
const thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
const thpOff = /\[never\]/.test(thp) ? 'transparent hugepages are disabled ([never])' : undefined;
const swapOn = readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;

describe('madvise effects', () => {
  it('HUGEPAGE and NOHUGEPAGE set the VMA flags hg and nh', () => {
    const m = Mapping.anonymous(4 * PAGE_SIZE);
    m.madvise('HUGEPAGE');
    expect(vmFlags(m)).toContain('hg');
    m.madvise('NOHUGEPAGE');
    expect(vmFlags(m)).toContain('nh');
    expect(vmFlags(m)).not.toContain('hg');
    m.unmap();
  });

  it('POPULATE_READ maps the pages (present) without writing them: they read as zeros', () => {
    const m = Mapping.anonymous(8 * PAGE_SIZE);
    m.madvise('POPULATE_READ', 2 * PAGE_SIZE, 4 * PAGE_SIZE);
    expect(readPagemap(m.address, m.length).map((e) => e.present)).toEqual([false, false, true, true, true, true, false, false]);
    expect(m.buffer().every((b) => b === 0)).toBe(true);
    m.unmap();
  });

  it.skipIf(thpOff !== undefined)(`COLLAPSE makes a 2M-aligned range one huge page, contents kept${thpOff ? ` (skipped: ${thpOff})` : ''}`, () => {
    const m = Mapping.anonymous(4 * HUGE_2M);
    const offset = (HUGE_2M - (m.address % HUGE_2M)) % HUGE_2M;
    m.madvise('NOHUGEPAGE');
    const data = m.buffer(offset, HUGE_2M);
    for (let i = 0; i < HUGE_2M; i += PAGE_SIZE) data[i] = (i / PAGE_SIZE) & 0xff;
    expect(anonHugeKb(m)).toBe(0);
    m.madvise('HUGEPAGE');
    m.madvise('COLLAPSE', offset, HUGE_2M);
    expect(anonHugeKb(m)).toBe(2048);
    for (let i = 0; i < HUGE_2M; i += PAGE_SIZE) expect(data[i]).toBe((i / PAGE_SIZE) & 0xff);
    m.unmap();
  });

  it(`PAGEOUT reclaims what it can: ${swapOn ? 'with swap, anonymous pages leave memory' : 'without swap anonymous pages stay (accepted, contents kept)'}`, () => {
    const m = Mapping.anonymous(4 * PAGE_SIZE);
    m.buffer().fill(7);
    m.madvise('PAGEOUT');
    const entries = readPagemap(m.address, m.length);
    if (swapOn) for (const e of entries) expect(e.present && !e.swapped).toBe(false);
    else for (const e of entries) expect(e.present).toBe(true);
    expect(m.buffer().every((b) => b === 7)).toBe(true);
    m.unmap();
  });
});
