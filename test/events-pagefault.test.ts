// Page-fault events carry the right fields: address (page aligned, or exact
// with EXACT_ADDRESS), write / wp / minor flags, the faulting thread's id,
// and resolvedByReader false for faults of other threads. Faults are raised
// by native threads (touchPages), never by the JS thread.
import { describe, expect, it } from 'vitest';
import { Mapping, MemoryFile, PAGE_SIZE, Userfaultfd } from '../lib';
import { nextOf, page, useCleanup } from './helpers/events';

const { track, touch } = useCleanup();
const probe = Userfaultfd.open();
const supported = probe.supportedFeatures;
probe.close();

describe('pagefault events', () => {
  it('a read fault: page-aligned address, no flags, the toucher thread id', async () => {
    const uffd = track(Userfaultfd.open());
    const m = track(Mapping.anonymous(4 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const touching = touch(m.address + PAGE_SIZE + 0x124, 4);

    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(m.address + PAGE_SIZE);
    expect(e.flags).toBe(0);
    expect(e).toMatchObject({ write: false, wp: false, minor: false, resolvedByReader: false });
    expect(uffd.copy(e.address, page(0xabcd0001))).toEqual({ bytes: PAGE_SIZE, status: 'complete' });

    const touched = await touching;
    expect(e.threadId).toBe(touched.tid);
    expect(touched.tid).not.toBe(process.pid);
    expect([...touched.values]).toEqual([0xabcd0001]);
  });

  it('a write fault has the write flag', async () => {
    const uffd = track(Userfaultfd.open());
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const touching = touch(m.address, PAGE_SIZE, { write: true, value: 77 });

    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(m.address);
    expect(e.flags & 1).toBe(1);
    expect(e).toMatchObject({ write: true, wp: false, minor: false, resolvedByReader: false });
    uffd.zeropage(e.address, PAGE_SIZE);
    const touched = await touching;
    expect(e.threadId).toBe(touched.tid);
    expect([...touched.values]).toEqual([77]);
  });

  it.skipIf(!supported.has('EXACT_ADDRESS'))('EXACT_ADDRESS reports the exact address (skipped: kernel lacks UFFD_FEATURE_EXACT_ADDRESS)', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EXACT_ADDRESS'] }));
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const touching = touch(m.address + PAGE_SIZE + 0x124, 4);

    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(m.address + PAGE_SIZE + 0x124);
    uffd.copy(m.address + PAGE_SIZE, page(5));
    expect((await touching).tid).toBe(e.threadId);
  });

  it.skipIf(!supported.has('PAGEFAULT_FLAG_WP'))('a write to a write-protected page is a wp fault (skipped: kernel lacks UFFD_FEATURE_PAGEFAULT_FLAG_WP)', async () => {
    const uffd = track(Userfaultfd.open({ features: ['PAGEFAULT_FLAG_WP'] }));
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing', 'wp']);
    uffd.copy(m.address, page(1), { writeProtect: true });
    const events = uffd.events();

    // Reading a protected page does not fault.
    expect([...(await touch(m.address, 4)).values]).toEqual([1]);

    const touching = touch(m.address, PAGE_SIZE, { write: true, value: 900 });
    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(m.address);
    expect(e.flags).toBe(1 | 2);
    expect(e).toMatchObject({ write: true, wp: true, minor: false, resolvedByReader: false });
    uffd.writeProtect(m.address, PAGE_SIZE, false);
    const touched = await touching;
    expect(e.threadId).toBe(touched.tid);
    expect([...touched.values]).toEqual([900]);
  });

  it.skipIf(!supported.has('MINOR_SHMEM'))('a fault on a shmem alias whose page is cached is a minor fault (skipped: kernel lacks UFFD_FEATURE_MINOR_SHMEM)', async () => {
    const file = track(MemoryFile.memfd(2 * PAGE_SIZE));
    const primary = track(file.map());
    const alias = track(file.map());
    // The page cache gets page 0 through the unregistered primary mapping.
    primary.buffer(0, PAGE_SIZE).set(page(0x5eed));
    const uffd = track(Userfaultfd.open({ features: ['MINOR_SHMEM'] }));
    uffd.register(alias, ['minor']);
    const events = uffd.events();
    const touching = touch(alias.address + 8, 4);

    const e = await nextOf(events, 'pagefault');
    expect(e.address).toBe(alias.address);
    expect(e.flags).toBe(4);
    expect(e).toMatchObject({ write: false, wp: false, minor: true, resolvedByReader: false });
    uffd.continue(alias.address, PAGE_SIZE);
    const touched = await touching;
    expect(e.threadId).toBe(touched.tid);
    expect([...touched.values]).toEqual([0x5eed]);
  });
});
