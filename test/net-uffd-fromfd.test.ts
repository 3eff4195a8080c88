// A userfaultfd received from another process (SCM_RIGHTS) becomes a
// usable Userfaultfd (fromFd): its features are the sender's, its ranges
// are the sender's addresses, and copy() resolves the sender's faults.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryFile, Pager, UnixServer, Userfaultfd } from '../lib';
import { describeChild, jsonLines, runFixture } from './helpers/child';

const dir = mkdtempSync(join(tmpdir(), 'uffd-fromfd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Userfaultfd.fromFd', () => {
  it("resolves another process's faults through the uffd it sent", async () => {
    const path = join(dir, 'a.sock');
    const server = UnixServer.listen(path);
    const pages = 16;
    const child = runFixture('uffd-sender.js', [path, String(pages), 'EVENT_REMOVE'], 20_000);
    const conn = await server.accept();
    const msg = (await conn.receive())!;
    const { address, length } = JSON.parse(msg.data.toString()) as { address: number; length: number };
    const uffd = Userfaultfd.fromFd(msg.fds[0], { registrations: [{ address, length, modes: ['missing'] }] });
    expect(msg.fds[0].closed).toBe(true); // taken: the Userfaultfd owns it now
    expect(uffd.openedVia).toBe('fd');
    expect(uffd.foreign).toBe(true);
    // The sender enabled EVENT_REMOVE; THREAD_ID is what Userfaultfd.open adds.
    expect([...uffd.enabledFeatures].sort()).toEqual(['EVENT_REMOVE', 'THREAD_ID']);
    expect(uffd.registrations).toEqual([expect.objectContaining({ start: address, end: address + length, pageSize: 4096 })]);
    const page = Buffer.alloc(4096);
    // Ranges are checked as for registered memory of our own.
    expect(() => uffd.copy(address + length, page)).toThrow(RangeError);
    expect(() => uffd.assumeRegistered({ address: address + 1, length: 4096 }, ['missing'])).toThrow(RangeError);
    let served = 0;
    for await (const event of uffd.events()) {
      if (event.type !== 'pagefault') continue;
      expect(event.resolvedByReader).toBe(false);
      const index = (event.address - address) / 4096;
      page.writeUInt32LE(7000 + Math.floor(index), 0);
      const r = uffd.copy(event.address - (event.address % 4096), page);
      expect(['complete', 'EEXIST']).toContain(r.status);
      if (++served === pages) break;
    }
    const r = await child;
    expect([r.code, r.timedOut], describeChild(r)).toEqual([0, false]);
    const [out] = jsonLines(r) as { values: number[]; enabled: string[] }[];
    expect(out.values).toEqual(Array.from({ length: pages }, (_, i) => 7000 + i));
    expect(out.enabled).toEqual(['EVENT_REMOVE', 'THREAD_ID']);
    uffd.close();
    conn.close();
    server.close();
  });

  it('a pager serves the sender, also the faults raised before it was attached (serve() wakes them)', async () => {
    const path = join(dir, 'b.sock');
    const server = UnixServer.listen(path);
    const pages = 8;
    const child = runFixture('uffd-sender.js', [path, String(pages)], 20_000);
    const conn = await server.accept();
    const msg = (await conn.receive())!;
    const { address, length } = JSON.parse(msg.data.toString()) as { address: number; length: number };
    const uffd = Userfaultfd.fromFd(msg.fds[0], { registrations: [{ address, length, modes: ['missing'] }] });
    // The sender faults right after sending; let the reader take that
    // message before any pager exists (it goes to events(), unread).
    await new Promise((r) => setTimeout(r, 300));
    const contents = Buffer.alloc(length);
    for (let i = 0; i < pages; i++) contents.writeUInt32LE(500 + i, i * 4096);
    const pager = Pager.create(uffd, { readAhead: false });
    pager.serve({ address, length }, { kind: 'buffer', buffer: contents });
    const r = await child;
    expect([r.code, r.timedOut], describeChild(r)).toEqual([0, false]);
    expect((jsonLines(r)[0] as { values: number[] }).values).toEqual(Array.from({ length: pages }, (_, i) => 500 + i));
    expect(pager.stats().faults).toBe(pages);
    uffd.close();
    conn.close();
    server.close();
  });

  it('rejects what is not a userfaultfd, and checks its arguments', () => {
    const file = MemoryFile.memfd(4096);
    expect(() => Userfaultfd.fromFd(file.fd)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('is not a userfaultfd (it is /memfd:') }));
    file.close();
    expect(() => Userfaultfd.fromFd(987654)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => Userfaultfd.fromFd(-1)).toThrow(RangeError);
    expect(() => Userfaultfd.fromFd('3' as unknown as number)).toThrow(TypeError);
    const own = Userfaultfd.open();
    expect(() => Userfaultfd.fromFd(own.fd, { registrations: {} as never })).toThrow(TypeError);
    expect(() => Userfaultfd.fromFd(own.fd, { jsThreadFaults: 'ignore' as never })).toThrow(TypeError);
    own.close();
  });
});
