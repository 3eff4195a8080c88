// Reserves hugetlb pages for the test suite (root only) and mounts
// hugetlbfs, so hugetlb tests run instead of skipping. Without root it says
// what the hugetlb tests will skip and why, and exits 0.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const WANT_2M = Number(process.env.UFFD_HUGEPAGES_2M ?? 256);
const WANT_1G = Number(process.env.UFFD_HUGEPAGES_1G ?? 1);
const pool = (kb) => `/sys/kernel/mm/hugepages/hugepages-${kb}kB`;

function read(path) {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return NaN;
  }
}

function reserve(kb, want) {
  const dir = pool(kb);
  if (!existsSync(dir)) return `no ${kb} kB pool`;
  const free = read(`${dir}/free_hugepages`);
  const total = read(`${dir}/nr_hugepages`);
  if (free >= want) return `${free} free`;
  try {
    writeFileSync(`${dir}/nr_hugepages`, String(total + (want - free)));
  } catch (err) {
    return `could not reserve (${err.code}): hugetlb tests of this size will skip`;
  }
  return `${read(`${dir}/free_hugepages`)} free of ${read(`${dir}/nr_hugepages`)}`;
}

function mountHugetlbfs() {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  const line = mounts.split('\n').find((l) => l.split(' ')[2] === 'hugetlbfs');
  if (line) return line.split(' ')[1];
  try {
    mkdirSync('/dev/hugepages', { recursive: true });
    execFileSync('mount', ['-t', 'hugetlbfs', '-o', 'pagesize=2M', 'none', '/dev/hugepages']);
    return '/dev/hugepages';
  } catch (err) {
    return `not mounted (${err.message.split('\n')[0]})`;
  }
}

console.log(`hugetlb 2M: ${reserve(2048, WANT_2M)}; 1G: ${reserve(1048576, WANT_1G)}; hugetlbfs: ${mountHugetlbfs()}`);
