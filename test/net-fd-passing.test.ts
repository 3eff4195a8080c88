// Unix sockets with fd passing (SCM_RIGHTS) and peer credentials
// (SO_PEERCRED): a received memfd works, credentials are right (also of
// another process), a uid not allowed is rejected, the socket file is 0600,
// nothing but a stale socket is ever replaced, truncated control data is an
// error that leaks nothing, and bad input gets precise errors.
import { mkdtempSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryFile, ReceivedFd, UnixServer, UnixSocket } from '../lib';
import { describeChild, DIST, jsonLines, runChild, runFixture } from './helpers/child';

const dir = mkdtempSync(join(tmpdir(), 'uffd-net-'));
let n = 0;
const sockPath = (): string => join(dir, `s${n++}.sock`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openFds = (): number => readdirSync('/proc/self/fd').length;

async function pair(path = sockPath()): Promise<{ server: UnixServer; a: UnixSocket; b: UnixSocket }> {
  const server = UnixServer.listen(path);
  const [a, b] = await Promise.all([server.accept(), UnixSocket.connect(path)]);
  return { server, a, b };
}

describe('fd passing', () => {
  it('a memfd sent over the socket is the same file on the other side', async () => {
    const { server, a, b } = await pair();
    const file = MemoryFile.memfd(8192, { name: 'shared' });
    const m = file.map();
    m.buffer().write('written before sending');
    await b.send('{"what":"memfd"}', [file.fd]);
    const msg = await a.receive();
    expect(msg).not.toBeNull();
    expect(msg!.data.toString()).toBe('{"what":"memfd"}');
    expect(msg!.fds).toHaveLength(1);
    const got = msg!.fds[0];
    expect(got).toBeInstanceOf(ReceivedFd);
    expect(got.fd).not.toBe(file.fd);
    expect(got.describe()).toBe('/memfd:shared (deleted)');
    // MSG_CMSG_CLOEXEC: the received fd is close-on-exec.
    const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${got.fd}`, 'utf8'))![1], 8);
    expect(flags & 0o2000000).toBe(0o2000000);
    const text = Buffer.alloc(22);
    readSync(got.fd, text, 0, 22, 0);
    expect(text.toString()).toBe('written before sending');
    // Writes through the received fd show in the sender's mapping.
    const { writeSync } = await import('node:fs');
    writeSync(got.fd, Buffer.from('back'), 0, 4, 4096);
    expect(m.buffer(4096, 4).toString()).toBe('back');
    got.close();
    got.close(); // idempotent
    expect(got.closed).toBe(true);
    expect(() => got.fd).toThrow(expect.objectContaining({ code: 'EBADF' }));
    m.unmap();
    file.close();
    a.close();
    b.close();
    server.close();
  });

  it('several fds in one message, and bytes without fds', async () => {
    const { server, a, b } = await pair();
    const files = [MemoryFile.memfd(4096, { name: 'one' }), MemoryFile.memfd(4096, { name: 'two' }), MemoryFile.memfd(4096, { name: 'three' })];
    await b.send(Buffer.from([1, 2, 3]), files.map((f) => f.fd));
    const msg = (await a.receive())!;
    expect(msg.fds.map((f) => f.describe())).toEqual(['/memfd:one (deleted)', '/memfd:two (deleted)', '/memfd:three (deleted)']);
    msg.fds.forEach((f) => f.close());
    await a.send('plain');
    const reply = (await b.receive())!;
    expect(reply.data.toString()).toBe('plain');
    expect(reply.fds).toEqual([]);
    files.forEach((f) => f.close());
    a.close();
    b.close();
    server.close();
  });

  it('end of stream: receive() resolves to null once the peer closes', async () => {
    const { server, a, b } = await pair();
    const pending = a.receive();
    b.close();
    expect(await pending).toBeNull();
    a.close();
    server.close();
  });

  it('truncated control data (more fds than maxFds) is an error, and the fds that arrived are closed', async () => {
    const { server, a, b } = await pair();
    const files = [MemoryFile.memfd(4096), MemoryFile.memfd(4096), MemoryFile.memfd(4096)];
    const before = openFds();
    await b.send('x', files.map((f) => f.fd));
    await expect(a.receive({ maxFds: 1 })).rejects.toMatchObject({ code: 'ERR_UFFD_CMSG_TRUNCATED', syscall: 'recvmsg' });
    expect(openFds()).toBe(before);
    // maxFds 0: any fd is too many.
    await b.send('y', [files[0].fd]);
    await expect(a.receive({ maxFds: 0 })).rejects.toMatchObject({ code: 'ERR_UFFD_CMSG_TRUNCATED' });
    expect(openFds()).toBe(before);
    files.forEach((f) => f.close());
    a.close();
    b.close();
    server.close();
  });

  it('a cycle of listen, connect, send and receive leaves no fd open', async () => {
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      const { server, a, b } = await pair();
      const f = MemoryFile.memfd(4096);
      await b.send('m', [f.fd]);
      const msg = (await a.receive())!;
      msg.fds[0].close();
      f.close();
      a.close();
      b.close();
      server.close();
    }
    expect(openFds()).toBe(before);
  });
});

describe('Workers', () => {
  it('a Worker terminated (or ending) with sockets, received fds and waits on its loop: no crash, no fd left', async () => {
    const r = await runFixture('net-worker.js', [], 30_000);
    expect([r.code, r.signal, r.timedOut], describeChild(r)).toEqual([0, null, false]);
    const lines = jsonLines(r) as { mode: string; before: number; during: number; after: number }[];
    expect(lines.map((l) => l.mode)).toEqual(['terminate', 'return']);
    for (const l of lines) {
      expect(l.during, l.mode).toBeGreaterThan(l.before);
      expect(l.after, l.mode).toBe(l.before);
    }
  });
});

describe('credentials', () => {
  it('both ends see the other process (SO_PEERCRED)', async () => {
    const { server, a, b } = await pair();
    const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    expect(a.peer).toEqual(me);
    expect(b.peer).toEqual(me);
    a.close();
    b.close();
    server.close();
  });

  it('the peer of a connection from another process is that process', async () => {
    const path = sockPath();
    const server = UnixServer.listen(path);
    const child = runChild({
      code: `const { UnixSocket } = require(${JSON.stringify(join(DIST, 'index.js'))});
        (async () => { const s = await UnixSocket.connect(${JSON.stringify(path)}); await s.send(String(process.pid)); await s.receive(); s.close(); })();`,
    });
    const conn = await server.accept();
    const msg = (await conn.receive())!;
    expect(conn.peer.pid).toBe(Number(msg.data.toString()));
    expect(conn.peer.pid).not.toBe(process.pid);
    conn.close();
    const r = await child;
    expect([r.code, r.timedOut], describeChild(r)).toEqual([0, false]);
    server.close();
  });
});

describe('access', () => {
  it('the socket file is created mode 0600, whatever the umask', async () => {
    const old = process.umask(0);
    try {
      const path = sockPath();
      const server = UnixServer.listen(path);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(path).isSocket()).toBe(true);
      server.close();
    } finally {
      process.umask(old);
    }
  });

  it('a peer whose uid is not allowed is closed and reported with the reason', async () => {
    const path = sockPath();
    const uid = process.getuid!();
    const server = UnixServer.listen(path, { allowedUids: [uid + 4242] });
    const rejections: { reason: string; peer: { uid: number; pid: number } }[] = [];
    server.on('reject', (r) => rejections.push(r));
    const ac = new AbortController();
    const accepted = server.accept({ signal: ac.signal });
    const client = await UnixSocket.connect(path);
    // The server closes it: the client sees the end of the stream.
    expect(await client.receive()).toBeNull();
    expect(rejections).toEqual([{ peer: { pid: process.pid, uid, gid: process.getgid!() }, reason: `uid ${uid} is not allowed (allowed: ${uid + 4242})` }]);
    expect(server.rejected).toBe(1);
    ac.abort();
    await expect(accepted).rejects.toMatchObject({ name: 'AbortError' });
    client.close();
    server.close();
  });

  it('an allowed uid is accepted; another user cannot even connect to a 0600 socket', async () => {
    const path = sockPath();
    const server = UnixServer.listen(path, { allowedUids: [process.getuid!()] });
    const accepted = server.accept();
    const me = await UnixSocket.connect(path);
    const conn = await accepted;
    expect(conn.peer.uid).toBe(process.getuid!());
    conn.close();
    me.close();
    if (process.getuid!() === 0) {
      // nobody (65534) gets EACCES from connect(): the file mode says no.
      const script = `const { UnixSocket } = require(${JSON.stringify(join(DIST, 'index.js'))});
        process.setgid(65534); process.setuid(65534);
        UnixSocket.connect(${JSON.stringify(path)}).then(() => console.log('CONNECTED'), (e) => console.log('ERR ' + e.code));`;
      const r = await runChild({ code: script });
      expect(r.stdout.trim(), describeChild(r)).toBe('ERR EACCES');
    }
    server.close();
  });

  it('refuses to replace a file that is not a socket, or a socket someone listens on; replaces a stale one', async () => {
    const file = join(dir, 'regular');
    writeFileSync(file, 'keep me');
    expect(() => UnixServer.listen(file)).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringContaining('it is a regular file, not a socket') }));
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    const sub = join(dir, 'adir');
    mkdirSync(sub);
    expect(() => UnixServer.listen(sub)).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringContaining('a directory') }));

    const live = sockPath();
    const server = UnixServer.listen(live);
    expect(() => UnixServer.listen(live)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    server.close();

    // A socket file left behind by a process that exited without removing it.
    const stale = sockPath();
    const r = await runChild({
      code: `const { UnixServer } = require(${JSON.stringify(join(DIST, 'index.js'))}); UnixServer.listen(${JSON.stringify(stale)}); process.exit(0);`,
    });
    expect([r.code, r.timedOut], describeChild(r)).toEqual([0, false]);
    expect(statSync(stale).isSocket()).toBe(true);
    const again = UnixServer.listen(stale);
    const c = await UnixSocket.connect(stale);
    c.close();
    again.close();
    // close() removed the file it created.
    expect(() => statSync(stale)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('bad input', () => {
  it('paths, options, fds and closed handles', async () => {
    expect(() => UnixServer.listen(join(dir, 'x'.repeat(120)))).toThrow(RangeError);
    expect(() => UnixServer.listen('')).toThrow(TypeError);
    expect(() => UnixServer.listen(42 as unknown as string)).toThrow(TypeError);
    expect(() => UnixServer.listen('\0abstract')).toThrow(/abstract/);
    expect(() => UnixServer.listen(sockPath(), { allowedUids: 'root' as unknown as number[] })).toThrow(TypeError);
    expect(() => UnixServer.listen(sockPath(), { allowedUids: [-1] })).toThrow(RangeError);
    expect(() => UnixServer.listen(sockPath(), { mode: 0o1777 })).toThrow(RangeError);
    await expect(UnixSocket.connect(join(dir, 'nobody-here.sock'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'connect' });

    const { server, a, b } = await pair();
    await expect(b.send('x', [1.5])).rejects.toThrow(TypeError);
    await expect(b.send('x', [-1])).rejects.toThrow(RangeError);
    await expect(b.send('', [0])).rejects.toThrow(/at least one byte/);
    await expect(b.send('x', new Array(254).fill(0))).rejects.toThrow(RangeError);
    await expect(b.send(42 as unknown as string)).rejects.toThrow(TypeError);
    // An fd number that is not open: the kernel says EBADF.
    await expect(b.send('x', [987654])).rejects.toMatchObject({ code: 'EBADF', syscall: 'sendmsg' });
    await expect(a.receive({ maxFds: 254 })).rejects.toThrow(RangeError);
    await expect(a.receive({ maxBytes: 0 })).rejects.toThrow(RangeError);
    b.close();
    await expect(b.send('x')).rejects.toMatchObject({ code: 'EBADF' });
    await expect(b.receive()).rejects.toMatchObject({ code: 'EBADF' });
    // A receive waiting when its socket is closed fails with EBADF.
    const { server: s2, a: a2, b: b2 } = await pair();
    const waiting = a2.receive();
    a2.close();
    await expect(waiting).rejects.toMatchObject({ code: 'EBADF' });
    b2.close();
    s2.close();
    a.close();
    server.close();
    server.close(); // idempotent
    await expect(server.accept()).rejects.toMatchObject({ code: 'EBADF' });
  });
});
