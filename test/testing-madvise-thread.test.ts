// madviseInThread (userfaultfd/testing): madvise() from a native thread, its
// thread id at once and its errno when it returns. Bad arguments are
// TypeError / RangeError.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Mapping, MemoryFile, PAGE_SIZE } from '../lib/index';
import { madviseInThread, threadId } from '../lib/testing/index';

const { EINVAL } = constants.errno;

describe('madviseInThread', () => {
  it('runs madvise on another thread and reports success', async () => {
    const file = MemoryFile.memfd(2 * PAGE_SIZE);
    const m = file.map();
    try {
      m.buffer().fill(9);
      const t = madviseInThread(m.address, 2 * PAGE_SIZE, 'REMOVE');
      expect(Number.isInteger(t.tid) && t.tid > 0).toBe(true);
      expect(t.tid).not.toBe(threadId());
      expect(await t.done).toEqual({ errno: 0, code: undefined });
      // MADV_REMOVE punched the file: it reads as zeros.
      expect(m.buffer().equals(Buffer.alloc(2 * PAGE_SIZE))).toBe(true);
    } finally {
      m.unmap();
      file.close();
    }
  });

  it("reports the kernel's errno", async () => {
    const m = Mapping.anonymous(PAGE_SIZE);
    try {
      // MADV_REMOVE needs a shared mapping.
      expect(await madviseInThread(m.address, PAGE_SIZE, 'REMOVE').done).toEqual({ errno: -EINVAL, code: 'EINVAL' });
    } finally {
      m.unmap();
    }
  });

  it('rejects bad arguments before starting a thread', () => {
    expect(() => madviseInThread('4096' as unknown as number, PAGE_SIZE, 'DONTNEED')).toThrow(TypeError);
    expect(() => madviseInThread(4097, PAGE_SIZE, 'DONTNEED')).toThrow(RangeError);
    expect(() => madviseInThread(0, PAGE_SIZE, 'DONTNEED')).toThrow(RangeError);
    expect(() => madviseInThread(4096, 0, 'DONTNEED')).toThrow(RangeError);
    expect(() => madviseInThread(4096, 1.5, 'DONTNEED')).toThrow(TypeError);
    expect(() => madviseInThread(4096, PAGE_SIZE, 'FORGET' as 'DONTNEED')).toThrow(TypeError);
    expect(() => madviseInThread(4096, PAGE_SIZE, 4 as unknown as 'DONTNEED')).toThrow(TypeError);
    expect(() => madviseInThread(4096, PAGE_SIZE, 'DONTNEED', { ref: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => madviseInThread(4096, PAGE_SIZE, 'DONTNEED', 'ref' as never)).toThrow(TypeError);
  });
});
