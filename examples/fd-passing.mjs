// Serving another process's memory: the child opens its own userfaultfd,
// registers its own memory and sends the uffd over a Unix socket
// (SCM_RIGHTS); this process adopts it (Userfaultfd.fromFd) and serves the
// child's faults from a buffer with the pager, as a Firecracker handler does.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Userfaultfd, Mapping, Pager, UnixServer, UnixSocket, PAGE_SIZE } from 'userfaultfd';
import { touchPages } from 'userfaultfd/testing';

const PAGES = 16;

if (process.argv[2] === 'child') {
  const uffd = Userfaultfd.open();
  const memory = Mapping.anonymous(PAGES * PAGE_SIZE);
  uffd.register(memory, ['missing']);
  const socket = await UnixSocket.connect(process.argv[3]);
  await socket.send(JSON.stringify({ address: memory.address, length: memory.length }), [uffd.fd]);
  uffd.close(); // the receiver's copy keeps the uffd (and the registration) alive
  const { values } = await touchPages(memory.address, memory.length); // faults, served by the parent
  console.log('child read', Array.from(values).join(' '));
  socket.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'fd-passing-'));
  const server = UnixServer.listen(join(dir, 'uffd.sock'), { allowedUids: [process.getuid()] });
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', server.path], { stdio: 'inherit' });
  const connection = await server.accept();
  const { data, fds } = await connection.receive();
  const { address, length } = JSON.parse(data.toString());
  console.log(`pid ${connection.peer.pid} (uid ${connection.peer.uid}) sent ${fds[0].describe()}`);
  const uffd = Userfaultfd.fromFd(fds[0], { registrations: [{ address, length, modes: ['missing'] }] });
  const contents = Buffer.alloc(length);
  for (let i = 0; i < PAGES; i++) contents.writeUInt32LE(100 + i, i * PAGE_SIZE);
  const pager = Pager.create(uffd);
  pager.serve({ address, length }, { kind: 'buffer', buffer: contents });
  await new Promise((resolve) => child.once('exit', resolve));
  console.log('faults served:', pager.stats().faults);
  uffd.close();
  connection.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
