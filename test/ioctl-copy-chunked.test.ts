// UFFDIO_COPY in chunks (copy/copyFromAddress with chunkSize): bulk
// population of a whole registered range with one native loop; it stops at
// the first chunk that is not complete and reports the bytes before it.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd } from '../lib';
import { useCleanup } from './helpers/events';

const { track } = useCleanup();
const PAGES = 16;

function setup() {
  const uffd = track(Userfaultfd.open());
  const dst = track(Mapping.anonymous(PAGES * PAGE_SIZE));
  uffd.register(dst, ['missing']);
  const src = Buffer.alloc(PAGES * PAGE_SIZE);
  for (let i = 0; i < PAGES; i++) src.writeUInt32LE(0xc0de0000 + i, i * PAGE_SIZE);
  return { uffd, dst, src };
}
const firstWords = (m: Mapping) => Array.from({ length: PAGES }, (_, i) => m.buffer(i * PAGE_SIZE, 4).readUInt32LE(0));

describe('UFFDIO_COPY in chunks', () => {
  it('populates the whole range, chunk by chunk, from a Buffer and from an address', () => {
    const { uffd, dst, src } = setup();
    expect(uffd.copy(dst.address, src, { chunkSize: 4 * PAGE_SIZE })).toEqual({ bytes: PAGES * PAGE_SIZE, status: 'complete' });
    expect(firstWords(dst)).toEqual(Array.from({ length: PAGES }, (_, i) => 0xc0de0000 + i));

    const other = setup();
    const from = track(Mapping.anonymous(PAGES * PAGE_SIZE));
    src.copy(from.buffer());
    // A chunk size that does not divide the length: the last chunk is shorter.
    expect(other.uffd.copyFromAddress(other.dst.address, from.address, PAGES * PAGE_SIZE, { chunkSize: 3 * PAGE_SIZE })).toEqual({
      bytes: PAGES * PAGE_SIZE,
      status: 'complete',
    });
    expect(firstWords(other.dst)).toEqual(Array.from({ length: PAGES }, (_, i) => 0xc0de0000 + i));
  });

  it('stops at the first chunk that finds a page already there: bytes = what was done before it', () => {
    const { uffd, dst, src } = setup();
    // Page 9 is already mapped: the chunk [8, 12) copies page 8, then EEXIST.
    expect(uffd.copy(dst.address + 9 * PAGE_SIZE, src, { srcOffset: 9 * PAGE_SIZE, length: PAGE_SIZE })).toEqual({ bytes: PAGE_SIZE, status: 'complete' });
    const r = uffd.copy(dst.address, src, { chunkSize: 4 * PAGE_SIZE });
    expect(r.status).toBe('EAGAIN');
    expect(r.bytes).toBe(9 * PAGE_SIZE);
    // With the chunk aligned on the existing page, it is EEXIST after two chunks.
    const again = setup();
    again.uffd.copy(again.dst.address + 8 * PAGE_SIZE, again.src, { srcOffset: 8 * PAGE_SIZE, length: PAGE_SIZE });
    expect(again.uffd.copy(again.dst.address, again.src, { chunkSize: 4 * PAGE_SIZE })).toEqual({ bytes: 8 * PAGE_SIZE, status: 'EEXIST' });
  });

  it('bad chunk sizes', () => {
    const { uffd, dst, src } = setup();
    expect(() => uffd.copy(dst.address, src, { chunkSize: 100 })).toThrow(RangeError);
    expect(() => uffd.copy(dst.address, src, { chunkSize: PAGE_SIZE + 1 })).toThrow(RangeError);
    expect(() => uffd.copy(dst.address, src, { chunkSize: '4096' as never })).toThrow(TypeError);
  });
});
