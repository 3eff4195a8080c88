// The library's side of each benchmark case, the same cases and arguments as
// bench/c/reference.c, run in a child process by bench/run.mjs; prints one
// JSON line. Faults are raised by native threads (touchPagesTimed) and
// resolved by the library:
//
//   node-case.mjs fault <handler> <mode> <memory> <threads> <pages> <pin>
//       handler: js (events() iterator + one ioctl per event),
//                onfault (uffd.onFault() synchronous handler, one ioctl per event),
//                native (the Pager: resolved on the reader thread, no JS per fault)
//   node-case.mjs bulk <chunk bytes> <total bytes> [per-call]
//   node-case.mjs restore <file> <bytes> <readahead 0|1> [onfault|native|native-async] [anon|hugetlb]
//       native: the Pager with synchronous read-ahead (as the C handler),
//       native-async: with asynchronous read-ahead (the Pager's default),
//       native-async-pread: and the file read with pread() (mmap: false)
//   node-case.mjs pagemap-scan <bytes> <dirty pages> [objects|arrays]
import { openSync, closeSync } from 'node:fs';
import { Userfaultfd, Mapping, MemoryFile, Pager, PAGE_SIZE, HUGE_2M } from '../dist/index.js';
import * as lib from '../dist/index.js';
import { touchPages, touchPagesTimed, pinThread } from '../dist/testing/index.js';
import { native } from '../dist/native.js';

const [kind, ...args] = process.argv.slice(2);

function print(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

function median(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

function mapMemory(memory, length) {
  if (memory === 'anon') {
    const m = Mapping.anonymous(length);
    m.madvise('NOHUGEPAGE');
    return { mapping: m };
  }
  const file = MemoryFile.memfd(length, memory === 'hugetlb' ? { hugePageSize: HUGE_2M } : {});
  return { mapping: file.map(), file };
}

async function fault(handler, mode, memory, threads, pages, pin) {
  // As the C handler: the handler (the JS thread, and the reader thread it
  // starts) on CPU 1, the faulting threads on CPU 0.
  if (pin) pinThread(1);
  // Warm up (JIT) the handler on a small area of the same kind first.
  // hugetlb: 8 pages are too few faults to compile the handler, so first
  // 1024 shmem pages of the same mode (the same JS and native path).
  if (memory === 'hugetlb') await faultRun(handler, mode, 'shmem', threads, 1024, pin);
  await faultRun(handler, mode, memory, threads, Math.min(pages, memory === 'hugetlb' ? 8 : 1024), pin);
  print(await faultRun(handler, mode, memory, threads, pages, pin));
}

async function faultRun(handler, mode, memory, threads, pages, pin) {
  const page = memory === 'hugetlb' ? HUGE_2M : PAGE_SIZE;
  const length = pages * page;
  const { mapping, file } = mapMemory(memory, length);
  const features = [];
  let modes = ['missing'];
  let src;
  let alias;
  if (mode === 'continue') {
    alias = file.map();
    const view = alias.buffer();
    for (let off = 0; off < length; off += page) view[off] = 1;
    features.push(memory === 'hugetlb' ? 'MINOR_HUGETLBFS' : 'MINOR_SHMEM');
    modes = ['minor'];
  } else if (mode === 'wp') {
    mapping.buffer().fill(1);
    modes = ['wp'];
  } else if (mode === 'move' || mode === 'copy') {
    // COPY as the C handler: each page from its own place in a source area
    // (a pager serves distinct contents, not one cache-hot page).
    if (mode === 'move') features.push('MOVE');
    src = Mapping.anonymous(length);
    src.madvise('NOHUGEPAGE');
    src.buffer().fill(mode === 'move' ? 2 : 3);
  }
  // UFFD_BENCH_READER=thread measures the reader-thread design (docs/benchmarks.md).
  const uffd = Userfaultfd.open({ features, reader: process.env.UFFD_BENCH_READER ?? 'loop' });
  uffd.register(mapping, modes);
  if (mode === 'wp') uffd.writeProtect(mapping.address, length, true);
  const base = mapping.address;
  const resolve =
    mode === 'copy'
      ? (a) => uffd.copyFromAddress(a, src.address + (a - base), page)
      : mode === 'zeropage'
        ? (a) => uffd.zeropage(a, page)
        : mode === 'continue'
          ? (a) => uffd.continue(a, page)
          : mode === 'wp'
            ? (a) => uffd.writeProtect(a, page, false)
            : (a) => uffd.move(a, src.address + (a - base), page);
  const mask = page - 1;

  let pager;
  if (handler === 'native') {
    if (mode === 'wp' || mode === 'move') throw new Error(`the pager does not serve ${mode} faults`);
    // Served before the first touch: a fault read before serve() is the
    // events' (the pager only takes faults of ranges it serves).
    pager = Pager.create(uffd, { readAhead: false });
    // Minor faults get CONTINUE whatever the source.
    const source = mode === 'copy' ? { kind: 'buffer', buffer: src.buffer() } : { kind: 'zero' };
    pager.serve(mapping, source);
  }
  // MINOR on hugetlb: several rounds with the PTEs zapped between them, as
  // the C side (ROUNDS_MINOR_HUGE): 256 faults alone last a few ms.
  const rounds = mode === 'continue' && memory === 'hugetlb' ? 16 : 1;
  const total = pages * rounds;
  const share = Math.floor(pages / threads);
  const touchAll = async () => {
    let busy = 0;
    const latencies = [];
    for (let round = 0; round < rounds; round++) {
      if (round > 0) mapping.madvise('DONTNEED');
      const touches = [];
      for (let i = 0; i < threads; i++) {
        const count = i === threads - 1 ? pages - i * share : share;
        touches.push(
          touchPagesTimed(base + i * share * page, count * page, { stride: page, write: mode === 'wp', cpu: pin ? 0 : undefined }),
        );
      }
      const results = await Promise.all(touches);
      busy += Math.max(...results.map((r) => r.end)) - Math.min(...results.map((r) => r.start));
      for (const r of results) latencies.push(...r.latencies);
    }
    return { busy, latencies };
  };
  const touched = touchAll();
  let handled = 0;
  if (handler === 'js') {
    for await (const event of uffd.events({ highWaterMark: 4096 })) {
      if (event.type !== 'pagefault') continue;
      resolve(event.address - (event.address & mask));
      if (++handled === total) break;
    }
  } else if (handler === 'onfault') {
    await new Promise((done) => {
      uffd.onFault((event) => {
        resolve(event.address - (event.address & mask));
        if (++handled === total) {
          uffd.onFault(null);
          done();
        }
      });
    });
  } else if (handler === 'native') {
    await touched;
    handled = pager.stats().faults;
    pager.close();
  } else {
    throw new Error(`handler ${handler}: not available`);
  }
  const { busy, latencies } = await touched;
  const lat = Float64Array.from(latencies).sort();
  const seconds = busy / 1e6;
  uffd.close();
  mapping.unmap();
  src?.unmap();
  alias?.unmap();
  file?.close();
  return {
    faults: total,
    handled,
    seconds,
    faultsPerSec: total / seconds,
    p50Us: median(lat, 0.5),
    p99Us: median(lat, 0.99),
    gbps: (length * rounds) / seconds / 1e9,
  };
}

function bulk(chunk, total, perCall) {
  const srcLen = Math.max(chunk, HUGE_2M);
  const src = Mapping.anonymous(srcLen);
  src.buffer().fill(5);
  const area = Mapping.anonymous(total);
  area.madvise('NOHUGEPAGE');
  const uffd = Userfaultfd.open();
  uffd.register(area, ['missing']);
  const t0 = performance.now();
  if (perCall) {
    // One copyFromAddress() per chunk, as a JS loop would.
    for (let off = 0; off < total; off += chunk) {
      uffd.copyFromAddress(area.address + off, src.address + (off % srcLen), chunk);
    }
  } else {
    // The library's bulk path: one call, a native loop of one ioctl per
    // chunk. The source repeats every srcLen bytes, as in the C handler.
    for (let off = 0; off < total; off += srcLen) {
      const len = Math.min(srcLen, total - off);
      uffd.copyFromAddress(area.address + off, src.address, len, { chunkSize: Math.min(chunk, len) });
    }
  }
  const seconds = (performance.now() - t0) / 1e3;
  uffd.close();
  print({ bytes: total, seconds, gbps: total / seconds / 1e9 });
}

async function restore(path, length, readahead, handler, memory) {
  // Anonymous 4K pages, or a hugetlb memfd (2M pages), as the C side.
  const { mapping: area, file: memfd } = mapMemory(memory, length);
  const uffd = Userfaultfd.open();
  uffd.register(area, ['missing']);
  const base = area.address;
  if (handler.startsWith('native')) {
    // The Pager's file source: one UFFDIO_COPY per fault (or read-ahead
    // window) from its own mapping of the file, on the reader thread; with
    // async, the next window is filled there before the thread reaches it.
    const pager = Pager.create(uffd, { readAhead: readahead ? { async: handler.includes('async') } : false });
    pager.serve(area, { kind: 'file', path, offset: 0, mmap: !handler.includes('pread') });
    // touchPages(), not touchPagesTimed(): as the C loop, no clock read per
    // access (two per 4K page cost ~15% into hugetlb, where the accesses
    // themselves are almost free).
    const t0 = performance.now();
    await touchPages(base, length, { stride: PAGE_SIZE });
    const seconds = (performance.now() - t0) / 1e3;
    const { faults, asyncReadAheadPages } = pager.stats();
    pager.close();
    uffd.close();
    area.unmap();
    memfd?.close();
    print({ bytes: length, faults, asyncReadAheadPages, seconds, gbps: length / seconds / 1e9 });
    return;
  }
  if (memory !== 'anon') throw new Error(`restore ${handler}: anonymous memory only`);
  // JavaScript: onFault() copies from the snapshot file, mapped read-only
  // (internal region-table call: the public API maps memfds, not plain files).
  const fd = openSync(path, 'r');
  const [, fileAddress] = native.mapRegion(0, length, 1 /* PROT_READ */, 1 /* MAP_SHARED */, fd, 0, PAGE_SIZE);
  closeSync(fd);
  let next = -1;
  let window = 65536;
  let faults = 0;
  uffd.onFault((event) => {
    const fault = event.address - (event.address % PAGE_SIZE) - base;
    let len = PAGE_SIZE;
    if (readahead) {
      window = fault === next ? Math.min(window * 2, 4 << 20) : 65536;
      len = window;
    }
    len = Math.min(len, length - fault);
    next = fault + len;
    faults++;
    let off = fault;
    while (len > 0) {
      const r = uffd.copyFromAddress(base + off, fileAddress + off, len);
      if (r.status === 'complete') break;
      const skip = r.bytes + (r.status === 'EEXIST' ? PAGE_SIZE : 0);
      if (skip >= len) break;
      off += skip;
      len -= skip;
    }
  });
  const t0 = performance.now();
  await touchPages(base, length, { stride: PAGE_SIZE });
  const seconds = (performance.now() - t0) / 1e3;
  uffd.close();
  print({ bytes: length, faults, seconds, gbps: length / seconds / 1e9 });
}

function pagemapScanCase(length, dirty, variant) {
  const area = Mapping.anonymous(length);
  area.madvise('NOHUGEPAGE');
  area.buffer().fill(1);
  const uffd = Userfaultfd.open({ features: ['WP_ASYNC', 'WP_UNPOPULATED'] });
  uffd.register(area, ['wp']);
  uffd.writeProtect(area.address, length, true);
  // 'arrays': the typed-array form, into arrays reused from scan to scan
  // (as the C side reuses its page_region vector).
  const room = dirty + 16;
  const out = { starts: new Float64Array(room), ends: new Float64Array(room), categories: new Uint32Array(room) };
  const scan = () => {
    let found = 0;
    const t0 = performance.now();
    if (variant === 'arrays') {
      const r = lib.pagemapScanArrays(area.address, length, { categories: ['written'] }, out);
      const ms = performance.now() - t0;
      for (let i = 0; i < r.count; i++) found += (r.ends[i] - r.starts[i]) / PAGE_SIZE;
      return [ms, found];
    }
    const { regions } = lib.pagemapScan(area.address, length, { categories: ['written'], maxRegions: room });
    const ms = performance.now() - t0;
    for (const r of regions) found += (r.end - r.start) / PAGE_SIZE;
    return [ms, found];
  };
  // Warmed up (JIT, the reused buffers) as the fault cases' handlers are:
  // on a small area with a few dirty pages first.
  const small = Mapping.anonymous(64 * PAGE_SIZE);
  uffd.register(small, ['wp']);
  uffd.writeProtect(small.address, small.length, true);
  small.buffer().fill(1, 0, 32 * PAGE_SIZE);
  for (let i = 0; i < 20; i++) {
    if (variant === 'arrays') lib.pagemapScanArrays(small.address, small.length, { categories: ['written'] }, out);
    else lib.pagemapScan(small.address, small.length, { categories: ['written'], maxRegions: room });
  }
  small.unmap();
  const [cleanMs] = scan();
  const pages = length / PAGE_SIZE;
  const step = dirty ? Math.floor(pages / dirty) : pages;
  const view = area.buffer();
  for (let i = 0; i < dirty; i++) view[i * step * PAGE_SIZE] = 2;
  // The median of three scans of the same dirty set (as the C side).
  const runs = [scan(), scan(), scan()].sort((a, b) => a[0] - b[0]);
  const [dirtyMs, found] = runs[1];
  uffd.close();
  print({ bytes: length, cleanMs, dirtyMs, dirtyPages: dirty, found });
}

try {
  const n = (i) => Number(args[i]);
  if (kind === 'fault') await fault(args[0], args[1], args[2], n(3), n(4), n(5) === 1);
  else if (kind === 'bulk') bulk(n(0), n(1), args[2] === 'per-call');
  else if (kind === 'restore') await restore(args[0], n(1), n(2) === 1, args[3] ?? 'onfault', args[4] ?? 'anon');
  else if (kind === 'pagemap-scan') pagemapScanCase(n(0), n(1), args[2] ?? 'objects');
  else throw new Error(`unknown case kind ${kind}`);
} catch (err) {
  print({ error: String(err?.message ?? err) });
  process.exitCode = 1;
}
