// Firecracker's page-fault handler handshake: the JSON array of guest memory
// regions it sends with the uffd (GuestRegionUffdMapping in its vmm crate):
//
//   [{ "base_host_virt_addr": 140123456, "size": 134217728, "offset": 0,
//      "page_size": 4096, "page_size_kib": 4096 }, ...]
//
// base_host_virt_addr is an address in the Firecracker process; offset is
// where the region's contents start in the snapshot memory file. page_size
// is in bytes. page_size_kib is its deprecated predecessor which, despite
// its name, is in bytes too (Firecracker says so); a value that is a page
// size only when read as KiB (4, 2048, 1048576) is read as KiB.
// Unknown fields are ignored (a newer Firecracker may add some); known ones
// are checked exactly.

/** One guest memory region, validated. */
export interface GuestRegion {
  /** base_host_virt_addr: where the region starts in the VM process. */
  readonly address: number;
  readonly size: number;
  /** Where its contents start in the memory file. */
  readonly offset: number;
  readonly pageSize: number;
}

export const PAGE_SIZES: readonly number[] = [4096, 2 << 20, 1 << 30];
/** The highest user address with 5-level paging (x86-64). */
const ADDRESS_LIMIT = 2 ** 56;

/** The handshake broke the protocol: what was wrong, and where. */
export class FirecrackerHandshakeError extends Error {
  readonly code = 'ERR_FIRECRACKER_HANDSHAKE';
  /** The pid of the process that sent it, when it came over a socket. */
  peerPid?: number;
  constructor(message: string) {
    super(message);
    this.name = 'FirecrackerHandshakeError';
  }
}

function fail(message: string): never {
  throw new FirecrackerHandshakeError(message);
}

function integerField(obj: Record<string, unknown>, where: string, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!(name in obj)) fail(`${where} has no "${name}"`);
  const v = obj[name];
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${where}.${name} must be an integer (got ${JSON.stringify(v)})`);
  if (!Number.isSafeInteger(v)) fail(`${where}.${name} ${v} is too large to be exact`);
  if (v < min || v > max) fail(`${where}.${name} must be between ${min} and ${max} (got ${v})`);
  return v;
}

function pageSizeOf(obj: Record<string, unknown>, where: string): number {
  const hasBytes = 'page_size' in obj;
  const hasKib = 'page_size_kib' in obj;
  if (!hasBytes && !hasKib) fail(`${where} has neither "page_size" nor "page_size_kib"`);
  let fromKib: number | undefined;
  if (hasKib) {
    const v = integerField(obj, where, 'page_size_kib', 1);
    if (PAGE_SIZES.includes(v)) fromKib = v;
    else if (PAGE_SIZES.includes(v * 1024)) fromKib = v * 1024;
    else fail(`${where}.page_size_kib ${v} is not a page size (it is in bytes: 4096, 2097152 or 1073741824)`);
  }
  if (!hasBytes) return fromKib as number;
  const bytes = integerField(obj, where, 'page_size', 1);
  if (!PAGE_SIZES.includes(bytes)) fail(`${where}.page_size ${bytes} is not a page size (4096, 2097152 or 1073741824)`);
  if (fromKib !== undefined && fromKib !== bytes) {
    fail(`${where}.page_size ${bytes} and page_size_kib ${obj.page_size_kib} disagree`);
  }
  return bytes;
}

/**
 * Parses and validates the handshake: a non-empty array of regions, each
 * page-aligned (address, size and offset, to its page size), inside the
 * memory file of `fileSize` bytes, none overlapping another.
 */
export function parseRegions(json: string | Uint8Array, fileSize: number): GuestRegion[] {
  const text = typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`the handshake is not valid JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (!Array.isArray(value)) fail(`the handshake must be a JSON array of regions (got ${value === null ? 'null' : typeof value})`);
  if (value.length === 0) fail('the handshake lists no regions');
  const regions: GuestRegion[] = value.map((entry: unknown, i) => {
    const where = `regions[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail(`${where} must be an object`);
    const obj = entry as Record<string, unknown>;
    const pageSize = pageSizeOf(obj, where);
    const address = integerField(obj, where, 'base_host_virt_addr', 0, ADDRESS_LIMIT);
    const size = integerField(obj, where, 'size', 1);
    const offset = integerField(obj, where, 'offset', 0);
    for (const [name, v] of [['base_host_virt_addr', address], ['size', size], ['offset', offset]] as const) {
      if (v % pageSize !== 0) fail(`${where}.${name} 0x${v.toString(16)} is not a multiple of its page size ${pageSize}`);
    }
    if (address + size > ADDRESS_LIMIT) fail(`${where} ends beyond the user address space`);
    if (offset + size > fileSize) {
      fail(`${where} (offset ${offset}, size ${size}) ends at ${offset + size}, beyond the end of the memory file (${fileSize} bytes)`);
    }
    return { address, size, offset, pageSize };
  });
  const byAddress = regions.map((r, i) => ({ r, i })).sort((a, b) => a.r.address - b.r.address);
  for (let k = 1; k < byAddress.length; k++) {
    const prev = byAddress[k - 1];
    const cur = byAddress[k];
    if (cur.r.address < prev.r.address + prev.r.size) fail(`regions[${cur.i}] overlaps regions[${prev.i}] in the VM's address space`);
  }
  return regions;
}
