// A region filled lazily, page by page, as another thread touches it.
import { Userfaultfd, Mapping, PAGE_SIZE } from 'userfaultfd';
import { touchPages } from 'userfaultfd/testing';

const pages = 8;
const uffd = Userfaultfd.open();
const region = Mapping.anonymous(pages * PAGE_SIZE);
uffd.register(region, ['missing']);

// A native thread reads every page; each first touch is a fault.
const reader = touchPages(region.address, region.length);

let served = 0;
const page = Buffer.alloc(PAGE_SIZE);
for await (const event of uffd.events()) {
  const index = (event.address - region.address) / PAGE_SIZE;
  page.writeUInt32LE(1000 + index, 0);            // "fetch" the page
  uffd.copy(event.address, page);                 // map it and wake the thread
  if (++served === pages) break;
}

const { values } = await reader;
console.log(Array.from(values));                  // [1000, 1001, ..., 1007]
uffd.close();
region.unmap();
