// Memory helpers against the real kernel: anonymous, memfd (shmem, hugetlb
// 2M and 1G), hugetlbfs files, aliases, madvise, punch-hole, mremap, views.
import { readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HUGE_1G, HUGE_2M, Mapping, MemoryFile, PAGE_SIZE, readPagemap } from '../lib';

function freeHugePages(kb: number): number {
  try {
    return Number(readFileSync(`/sys/kernel/mm/hugepages/hugepages-${kb}kB/free_hugepages`, 'utf8'));
  } catch {
    return 0;
  }
}
function hugetlbfsMount(): string | undefined {
  const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'hugetlbfs');
  return line?.split(' ')[1];
}
const no2M = freeHugePages(2048) < 4 ? 'needs 4 free 2M hugetlb pages (run scripts/reserve-hugepages.mjs as root)' : '';
const no1G = freeHugePages(1048576) < 1 ? 'needs 1 free 1G hugetlb page (run scripts/reserve-hugepages.mjs as root)' : '';
const noFs = hugetlbfsMount() === undefined || no2M ? 'needs a hugetlbfs mount and free 2M pages' : '';

function mapsHas(address: number): boolean {
  const hex = address.toString(16);
  return readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.startsWith(`${hex}-`));
}

describe('anonymous mappings', () => {
  it('maps, views, and unmaps (the range leaves /proc/self/maps)', () => {
    const m = Mapping.anonymous(4 * PAGE_SIZE);
    expect(m.kind).toBe('anonymous');
    expect(m.shared).toBe(false);
    expect(m.pageSize).toBe(PAGE_SIZE);
    expect(m.address % PAGE_SIZE).toBe(0);
    expect(mapsHas(m.address)).toBe(true);
    const b = m.buffer();
    b.fill(0x5a);
    expect(m.buffer(PAGE_SIZE, 16).every((x) => x === 0x5a)).toBe(true);
    const address = m.address;
    expect(m.unmap()).toBe(true);
    expect(m.unmapped).toBe(true);
    expect(m.unmap()).toBe(false);
    expect(b.buffer.byteLength).toBe(0);
    expect(mapsHas(address)).toBe(false);
    expect(() => m.address).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('DONTNEED drops private pages (they read as zeros again)', () => {
    const m = Mapping.anonymous(2 * PAGE_SIZE);
    m.buffer().fill(7);
    expect(readPagemap(m.address, m.length).map((e) => e.present)).toEqual([true, true]);
    m.madvise('DONTNEED', 0, PAGE_SIZE);
    expect(readPagemap(m.address, m.length).map((e) => e.present)).toEqual([false, true]);
    expect(m.buffer()[0]).toBe(0);
    expect(m.buffer()[PAGE_SIZE]).toBe(7);
    m.unmap();
  });

  it('POPULATE_WRITE and POPULATE_READ fault pages in; PAGEOUT, HUGEPAGE, NOHUGEPAGE are accepted', () => {
    const m = Mapping.anonymous(8 * PAGE_SIZE);
    m.madvise('POPULATE_WRITE', 0, 4 * PAGE_SIZE);
    const present = readPagemap(m.address, m.length).map((e) => e.present);
    expect(present.slice(0, 4)).toEqual([true, true, true, true]);
    expect(present.slice(4)).toEqual([false, false, false, false]);
    m.madvise('POPULATE_READ', 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    m.madvise('PAGEOUT');
    m.madvise('HUGEPAGE');
    m.madvise('NOHUGEPAGE');
    m.unmap();
  });

  it('COLLAPSE turns a 2M-aligned THP-eligible range into a huge page (or reports an errno error)', () => {
    const m = Mapping.anonymous(4 * HUGE_2M);
    const offset = (HUGE_2M - (m.address % HUGE_2M)) % HUGE_2M;
    m.madvise('HUGEPAGE');
    m.buffer(offset, HUGE_2M).fill(1);
    try {
      m.madvise('COLLAPSE', offset, HUGE_2M);
      expect(m.buffer(offset, HUGE_2M).every((x) => x === 1)).toBe(true);
    } catch (err) {
      expect((err as { syscall: string }).syscall).toBe('madvise');
    }
    m.unmap();
  });

  it('mremap grows and moves; old views are detached, new ones see the data', () => {
    const m = Mapping.anonymous(2 * PAGE_SIZE);
    const old = m.buffer();
    old.writeUInt32LE(0xfeed, PAGE_SIZE);
    const before = m.address;
    const after = m.remap(64 * PAGE_SIZE);
    expect(m.length).toBe(64 * PAGE_SIZE);
    expect(old.buffer.byteLength).toBe(0);
    expect(m.buffer().readUInt32LE(PAGE_SIZE)).toBe(0xfeed);
    expect(typeof after).toBe('number');
    if (after !== before) expect(mapsHas(before)).toBe(false);
    m.unmap();
  });

  it('remap to a fixed address refuses to replace another mapping (EEXIST), and moves to a free one', () => {
    const m = Mapping.anonymous(2 * PAGE_SIZE);
    const other = Mapping.anonymous(2 * PAGE_SIZE);
    other.buffer().fill(3);
    expect(() => m.remap(2 * PAGE_SIZE, { address: other.address })).toThrow(
      expect.objectContaining({ code: 'EEXIST', syscall: 'mremap', address: other.address }),
    );
    expect(other.buffer()[0]).toBe(3);
    const hole = Mapping.anonymous(4 * PAGE_SIZE);
    const free = hole.address;
    hole.unmap();
    m.buffer().writeUInt32LE(0x77, 0);
    expect(m.remap(2 * PAGE_SIZE, { address: free })).toBe(free);
    expect(m.buffer().readUInt32LE(0)).toBe(0x77);
    m.unmap();
    other.unmap();
  });

  it('protect() makes a range read-only, as /proc/self/maps shows', () => {
    const m = Mapping.anonymous(PAGE_SIZE);
    m.buffer()[0] = 3;
    m.protect('read');
    expect(readFileSync('/proc/self/maps', 'utf8')).toMatch(new RegExp(`^${m.address.toString(16)}-[0-9a-f]+ r--p`, 'm'));
    m.protect('read-write');
    m.unmap();
  });
});

describe('memfd (shmem)', () => {
  it('two shared mappings alias the same pages; a private one copies on write', () => {
    const f = MemoryFile.memfd(4 * PAGE_SIZE, { name: 'alias-test' });
    expect(f.kind).toBe('shmem');
    const a = f.map();
    const b = f.map();
    const p = f.map({ shared: false });
    a.buffer().writeUInt32LE(42, 0);
    expect(b.buffer().readUInt32LE(0)).toBe(42);
    expect(p.buffer().readUInt32LE(0)).toBe(42);
    p.buffer().writeUInt32LE(7, 0);
    expect(a.buffer().readUInt32LE(0)).toBe(42);
    expect(readFileSync('/proc/self/maps', 'utf8')).toContain('/memfd:alias-test');
    for (const m of [a, b, p]) m.unmap();
    f.close();
    f.close();
    expect(() => f.map()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('REMOVE and punchHole free file pages (every alias reads zeros)', () => {
    const f = MemoryFile.memfd(4 * PAGE_SIZE);
    const a = f.map();
    const b = f.map();
    a.buffer().fill(9);
    a.madvise('REMOVE', 0, PAGE_SIZE);
    expect(b.buffer()[0]).toBe(0);
    expect(b.buffer()[PAGE_SIZE]).toBe(9);
    f.punchHole(PAGE_SIZE, PAGE_SIZE);
    expect(b.buffer()[PAGE_SIZE]).toBe(0);
    expect(b.buffer()[2 * PAGE_SIZE]).toBe(9);
    a.unmap();
    b.unmap();
    f.close();
  });

  it('maps at an offset', () => {
    const f = MemoryFile.memfd(4 * PAGE_SIZE);
    const whole = f.map();
    whole.buffer().writeUInt32LE(0xabcd, 2 * PAGE_SIZE);
    const part = f.map({ offset: 2 * PAGE_SIZE, length: PAGE_SIZE });
    expect(part.length).toBe(PAGE_SIZE);
    expect(part.buffer().readUInt32LE(0)).toBe(0xabcd);
    whole.unmap();
    part.unmap();
    f.close();
  });
});

describe('hugetlb', () => {
  it.skipIf(no2M)(`2M memfd: shared alias, private copy, punch-hole ${no2M}`, () => {
    const f = MemoryFile.memfd(2 * HUGE_2M, { hugePageSize: HUGE_2M });
    expect(f.kind).toBe('hugetlb');
    expect(f.pageSize).toBe(HUGE_2M);
    const a = f.map();
    const b = f.map();
    expect(a.address % HUGE_2M).toBe(0);
    a.buffer().writeUInt32LE(0x2222, HUGE_2M);
    expect(b.buffer().readUInt32LE(HUGE_2M)).toBe(0x2222);
    const p = f.map({ shared: false });
    expect(p.buffer().readUInt32LE(HUGE_2M)).toBe(0x2222);
    p.unmap();
    f.punchHole(HUGE_2M, HUGE_2M);
    expect(b.buffer().readUInt32LE(HUGE_2M)).toBe(0);
    expect(() => a.madvise('DONTNEED', 0, PAGE_SIZE)).toThrow(RangeError);
    a.unmap();
    b.unmap();
    f.close();
  });

  it.skipIf(no1G)(`1G memfd ${no1G}`, () => {
    const f = MemoryFile.memfd(HUGE_1G, { hugePageSize: HUGE_1G });
    const m = f.map();
    expect(m.pageSize).toBe(HUGE_1G);
    expect(m.address % HUGE_1G).toBe(0);
    m.buffer().writeUInt32LE(0x1111, HUGE_1G - 4);
    expect(m.buffer().readUInt32LE(HUGE_1G - 4)).toBe(0x1111);
    m.unmap();
    f.close();
  });

  it.skipIf(noFs)(`a file on a hugetlbfs mount ${noFs}`, () => {
    const path = `${hugetlbfsMount()}/uffd-test-${process.pid}`;
    try {
      const f = MemoryFile.openHugetlbfs(path, 2 * HUGE_2M);
      expect(f.pageSize).toBe(HUGE_2M);
      const a = f.map();
      const b = f.map();
      a.buffer().writeUInt32LE(77, 0);
      expect(b.buffer().readUInt32LE(0)).toBe(77);
      a.unmap();
      b.unmap();
      f.close();
    } finally {
      rmSync(path, { force: true });
    }
  });

  it('openHugetlbfs rejects a file that is not on hugetlbfs', () => {
    expect(() => MemoryFile.openHugetlbfs(`/tmp/uffd-not-huge-${process.pid}`, HUGE_2M)).toThrow(/not on a hugetlbfs mount/);
    rmSync(`/tmp/uffd-not-huge-${process.pid}`, { force: true });
  });
});
