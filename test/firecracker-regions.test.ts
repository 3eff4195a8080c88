// The Firecracker handshake's region list: what Firecracker sends parses,
// and each way of getting it wrong has its own precise message.
import { describe, expect, it } from 'vitest';
import { FirecrackerHandshakeError, parseRegions } from '../lib';

const MiB = 1 << 20;
const region = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  base_host_virt_addr: 0x7f0000000000,
  size: 2 * MiB,
  offset: 0,
  page_size: 4096,
  page_size_kib: 4096,
  ...over,
});
const parse = (value: unknown, fileSize = 64 * MiB): ReturnType<typeof parseRegions> =>
  parseRegions(typeof value === 'string' ? value : JSON.stringify(value), fileSize);
const fails = (value: unknown, message: string | RegExp, fileSize = 64 * MiB): void => {
  let caught: unknown;
  try {
    parse(value, fileSize);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FirecrackerHandshakeError);
  expect((caught as FirecrackerHandshakeError).code).toBe('ERR_FIRECRACKER_HANDSHAKE');
  expect((caught as Error).message).toMatch(message);
};

describe('parseRegions', () => {
  it('parses what Firecracker sends (page_size and page_size_kib, both in bytes)', () => {
    const json = [region(), region({ base_host_virt_addr: 0x7f0000400000, offset: 2 * MiB, size: 4 * MiB })];
    expect(parse(json)).toEqual([
      { address: 0x7f0000000000, size: 2 * MiB, offset: 0, pageSize: 4096 },
      { address: 0x7f0000400000, size: 4 * MiB, offset: 2 * MiB, pageSize: 4096 },
    ]);
    expect(parseRegions(Buffer.from(JSON.stringify(json)), 6 * MiB)).toHaveLength(2);
  });

  it('accepts the deprecated page_size_kib alone, in bytes as Firecracker meant it, or in KiB', () => {
    const { page_size: _unused, ...old } = region({ page_size_kib: 2 * MiB, size: 4 * MiB });
    void _unused;
    expect(parse([old])[0].pageSize).toBe(2 * MiB);
    expect(parse([{ ...old, page_size_kib: 2048 }])[0].pageSize).toBe(2 * MiB);
    expect(parse([{ ...old, page_size_kib: 4, size: 4096 }])[0].pageSize).toBe(4096);
  });

  it('ignores fields it does not know', () => {
    expect(parse([region({ prot: 1, flags: 2, comment: 'x' })])).toHaveLength(1);
  });

  it('says exactly what is wrong', () => {
    fails('[{"base_host_virt_addr": 1', /not valid JSON/);
    fails({ regions: [] }, 'must be a JSON array of regions (got object)');
    fails([], 'lists no regions');
    fails([42], 'regions[0] must be an object');
    fails([region(), 'x'], 'regions[1] must be an object');
    for (const field of ['base_host_virt_addr', 'size', 'offset']) {
      const r = region();
      delete r[field];
      fails([r], `regions[0] has no "${field}"`);
    }
    const noPageSize = region();
    delete noPageSize.page_size;
    delete noPageSize.page_size_kib;
    fails([noPageSize], 'regions[0] has neither "page_size" nor "page_size_kib"');
    fails([region({ size: '2097152' })], 'regions[0].size must be an integer (got "2097152")');
    fails([region({ size: 1.5 })], 'regions[0].size must be an integer (got 1.5)');
    fails([region({ size: 0 })], 'regions[0].size must be between 1');
    fails([region({ offset: -4096 })], 'regions[0].offset must be between 0');
    fails([region({ base_host_virt_addr: 2 ** 60 })], /base_host_virt_addr .* too large to be exact|must be between/);
    fails('[{"base_host_virt_addr": 18446744073709551615, "size": 4096, "offset": 0, "page_size": 4096}]', /too large to be exact/);
    fails([region({ page_size: 8192 })], 'regions[0].page_size 8192 is not a page size');
    fails([region({ page_size_kib: 3 })], 'regions[0].page_size_kib 3 is not a page size (it is in bytes');
    fails([region({ page_size: 4096, page_size_kib: 2 * MiB })], 'regions[0].page_size 4096 and page_size_kib 2097152 disagree');
    fails([region({ size: 2 * MiB + 100 })], 'regions[0].size 0x200064 is not a multiple of its page size 4096');
    fails([region({ offset: 512 })], 'regions[0].offset 0x200 is not a multiple of its page size 4096');
    fails([region({ base_host_virt_addr: 0x7f0000001000, page_size: 2 * MiB, page_size_kib: 2 * MiB })], /base_host_virt_addr 0x7f0000001000 is not a multiple of its page size 2097152/);
    fails([region({ offset: 63 * MiB })], 'regions[0] (offset 66060288, size 2097152) ends at 68157440, beyond the end of the memory file (67108864 bytes)');
    fails([region(), region({ base_host_virt_addr: 0x7f0000100000, offset: 2 * MiB })], 'regions[1] overlaps regions[0]');
  });
});
