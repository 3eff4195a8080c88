// Lazy restore of a memory snapshot: pages come from the file as they are
// touched, resolved natively (no JavaScript per fault), with read-ahead on
// sequential access; a background prefetch fills the rest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Userfaultfd, Mapping, Pager, PAGE_SIZE } from 'userfaultfd';
import { touchPages } from 'userfaultfd/testing';

// A 64 MiB "snapshot" whose page i starts with the number i.
const length = 64 << 20;
const snapshot = Buffer.alloc(length);
for (let i = 0; i < length / PAGE_SIZE; i++) snapshot.writeUInt32LE(i, i * PAGE_SIZE);
const dir = mkdtempSync(join(tmpdir(), 'lazy-restore-'));
const path = join(dir, 'memory.snap');
writeFileSync(path, snapshot);

const uffd = Userfaultfd.open();
const memory = Mapping.anonymous(length);
uffd.register(memory, ['missing']);
const pager = Pager.create(uffd);                       // read-ahead 64K..4M by default
pager.serve(memory, { kind: 'file', path, offset: 0 });
pager.on('failure', (f) => console.error('page failed', f.address, f.cause));

// The "guest": a native thread reads the first half of the memory.
const { values } = await touchPages(memory.address, length / 2);
console.log('first pages:', Array.from(values.slice(0, 4)));   // [0, 1, 2, 3]
const { faults, readAheadPages } = pager.stats();
console.log(`${faults} faults, ${readAheadPages} pages read ahead`);

// Fill the rest in the background (SCHED_IDLE), then check every byte.
const { bytes } = await pager.prefetch();
console.log(`prefetched ${bytes / (1 << 20)} MiB`);
console.log('restored exactly:', Buffer.from(memory.buffer()).equals(snapshot));

pager.close();
uffd.close();
memory.unmap();
rmSync(dir, { recursive: true });
