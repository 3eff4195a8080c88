// Bad input to the pager: each gets a precise TypeError, RangeError or
// errno error, before any fault is affected.
import { describe, expect, it } from 'vitest';
import { MemoryFile, Mapping, PAGE_SIZE, Pager, Userfaultfd } from '../lib/index';

function setup(): { uffd: Userfaultfd; m: Mapping; pager: Pager; dispose(): void } {
  const uffd = Userfaultfd.open();
  const m = Mapping.anonymous(8 * PAGE_SIZE);
  uffd.register(m, ['missing']);
  const pager = Pager.create(uffd);
  return {
    uffd,
    m,
    pager,
    dispose() {
      pager.close();
      uffd.close();
      m.unmap();
    },
  };
}

describe('Pager bad input', () => {
  it('create: not a Userfaultfd, bad options, a closed uffd, a second pager', () => {
    expect(() => Pager.create({} as Userfaultfd)).toThrow(TypeError);
    const uffd = Userfaultfd.open();
    try {
      expect(() => Pager.create(uffd, { onFailure: 'explode' as 'zero' })).toThrow(TypeError);
      expect(() => Pager.create(uffd, { afterRemove: 'keep' as 'zero' })).toThrow(TypeError);
      expect(() => Pager.create(uffd, { readAhead: { min: 100 } })).toThrow(RangeError);
      expect(() => Pager.create(uffd, { readAhead: { min: 1 << 20, max: 1 << 16 } })).toThrow(RangeError);
      expect(() => Pager.create(uffd, { statsIntervalMs: -1 })).toThrow(RangeError);
      const first = Pager.create(uffd);
      expect(() => Pager.create(uffd)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      first.close();
      Pager.create(uffd).close(); // free again once closed
    } finally {
      uffd.close();
    }
    expect(() => Pager.create(uffd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('serve: misaligned, unregistered, overlapping, WP-only ranges', () => {
    const { uffd, m, pager, dispose } = setup();
    try {
      const zero = { kind: 'zero' } as const;
      expect(() => pager.serve({ address: m.address + 1, length: PAGE_SIZE }, zero)).toThrow(RangeError);
      expect(() => pager.serve({ address: m.address, length: 100 }, zero)).toThrow(RangeError);
      expect(() => pager.serve({ address: m.address, length: 9 * PAGE_SIZE }, zero)).toThrow(/not inside a range registered/);
      expect(() => pager.serve({ address: 'x' as unknown as number, length: PAGE_SIZE }, zero)).toThrow(TypeError);
      expect(() => pager.serve(null as unknown as Mapping, zero)).toThrow(TypeError);
      pager.serve({ address: m.address, length: 4 * PAGE_SIZE }, zero);
      expect(() => pager.serve({ address: m.address + 3 * PAGE_SIZE, length: 2 * PAGE_SIZE }, zero)).toThrow(/overlaps a range this pager already serves/);
      pager.serve({ address: m.address + 4 * PAGE_SIZE, length: 4 * PAGE_SIZE }, zero);
      const wp = Mapping.anonymous(PAGE_SIZE);
      uffd.register(wp, ['wp']);
      expect(() => pager.serve(wp, zero)).toThrow(/write-protect faults only/);
      wp.unmap();
      expect(() => pager.serve(m, zero, { pageSize: 8192 })).toThrow(RangeError);
      expect(() => pager.serve(m, zero, { pageSize: '4096' as unknown as number })).toThrow(TypeError);
      expect(() => pager.serve(m, zero, 'fast' as never)).toThrow(TypeError);
    } finally {
      dispose();
    }
  });

  it('serve: wrong source types and short sources', () => {
    const { m, pager, dispose } = setup();
    try {
      const bad: unknown[] = [
        undefined,
        'zero',
        { kind: 'disk' },
        { kind: 'buffer', buffer: 'bytes' },
        { kind: 'buffer', buffer: Buffer.alloc(m.length), offset: -1 },
        { kind: 'file' },
        { kind: 'file', path: '/x', fd: 1 },
        { kind: 'file', path: 42 },
        { kind: 'file', fd: 1.5 },
        { kind: 'memoryFile', file: {} },
        { kind: 'function', read: 'read' },
      ];
      for (const source of bad) {
        expect(() => pager.serve(m, source as never), JSON.stringify(source)).toThrow(source && typeof source === 'object' && 'offset' in source ? RangeError : TypeError);
      }
      expect(() => pager.serve(m, { kind: 'buffer', buffer: Buffer.alloc(m.length - 1) })).toThrow(/too short/);
      expect(() => pager.serve(m, { kind: 'buffer', buffer: Buffer.alloc(m.length), offset: 1 })).toThrow(/too short/);
      const file = MemoryFile.memfd(PAGE_SIZE);
      expect(() => pager.serve(m, { kind: 'memoryFile', file })).toThrow(/too short/);
      file.close();
      expect(() => pager.serve(m, { kind: 'memoryFile', file })).toThrow(expect.objectContaining({ code: 'EBADF' }));
      expect(() => pager.serve(m, { kind: 'file', path: '/nonexistent/snapshot' })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(() => pager.serve(m, { kind: 'file', fd: 987654 })).toThrow(expect.objectContaining({ code: 'EBADF' }));
      expect(pager.ranges()).toEqual([]);
    } finally {
      dispose();
    }
  });

  it('unserve and prefetch: nothing served there, misaligned, bad options', async () => {
    const { m, pager, dispose } = setup();
    try {
      expect(() => pager.unserve(m)).toThrow(/overlaps no served range/);
      pager.serve(m, { kind: 'zero' });
      expect(() => pager.unserve({ address: m.address + 1, length: PAGE_SIZE })).toThrow(RangeError);
      expect(() => pager.prefetch({ address: m.address, length: 1 })).toThrow(RangeError);
      expect(() => pager.prefetch(undefined, { signal: 'stop' as unknown as AbortSignal })).toThrow(TypeError);
    } finally {
      dispose();
    }
  });

  it('a closed pager: EBADF for everything but close()', () => {
    const { m, pager, dispose } = setup();
    dispose();
    expect(pager.closed).toBe(true);
    for (const call of [() => pager.serve(m, { kind: 'zero' }), () => pager.unserve(m), () => pager.stats(), () => pager.ranges(), () => pager.prefetch()]) {
      expect(call).toThrow(expect.objectContaining({ code: 'EBADF', errno: -9 }));
    }
    pager.close();
  });

  it('uffd.close() closes its pager', () => {
    const { uffd, pager, dispose } = setup();
    uffd.close();
    expect(pager.closed).toBe(true);
    dispose();
  });
});
