#!/usr/bin/env node
// npm run bench [-- --quick] [--reps N] [--only <case id or substring>] [--no-write] [--pin] [--json]
//
// Builds the C reference handler (bench/c/reference.c) with gcc and runs it
// and the library (bench/node-case.mjs) on the same cases, alternating C and
// Node within each repetition (the order flips every repetition), each run a
// child process of its own. Reports medians with min–max and the Node/C
// ratio of every case, measured in this run: on a shared machine absolute
// figures move ±15–25% from run to run, ratios much less. Writes
// docs/benchmarks.md (the generated section) and docs/benchmarks.svg unless
// --no-write.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync, closeSync, writeSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSvg } from './chart.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const quick = flag('--quick');
const reps = Number(option('--reps', quick ? 1 : 5));
const only = option('--only', undefined);
const write = !flag('--no-write');
const pin = flag('--pin') ? 1 : 0;
const asJson = flag('--json');
const timeoutMs = Number(option('--timeout', quick ? 30000 : 120000));

const MiB = 1 << 20;
const GiB = 1 << 30;
const size = {
  pages4k: quick ? 512 : 16384,
  pages2m: quick ? 8 : 256,
  bulk: quick ? 16 * MiB : GiB,
  restoreRa: quick ? 16 * MiB : GiB,
  restoreNoRa: quick ? 4 * MiB : 64 * MiB,
  restoreHuge: quick ? 16 * MiB : GiB,
  scan: quick ? 64 * MiB : GiB,
  dirty: quick ? 1024 : 16384,
};

// ---- the cases ---------------------------------------------------------------

/** Node handlers compared with the C handler for every fault case. */
const HANDLERS = [
  { id: 'onfault', label: 'JS onFault()' },
  { id: 'js', label: 'JS events()' },
  { id: 'native', label: 'native fast path (Pager)' },
];

const FAULT_CASES = [
  ['D1', 'copy', 'anon', 'MISSING anon 4K → COPY'],
  ['D2', 'copy', 'shmem', 'MISSING shmem 4K → COPY'],
  ['D3', 'copy', 'hugetlb', 'MISSING hugetlb 2M → COPY'],
  ['D4', 'zeropage', 'anon', 'MISSING anon 4K → ZEROPAGE'],
  ['D6', 'continue', 'shmem', 'MINOR shmem 4K → CONTINUE'],
  ['D7', 'continue', 'hugetlb', 'MINOR hugetlb 2M → CONTINUE'],
  ['D8', 'wp', 'anon', 'WP anon 4K → unprotect'],
  ['D9', 'move', 'anon', 'MISSING anon 4K → MOVE'],
];

function restoreFile(exe) {
  const file = path.join(os.tmpdir(), 'userfaultfd-bench-restore.bin');
  const bytes = Math.max(size.restoreRa, size.restoreNoRa, size.restoreHuge);
  if (!existsSync(file) || statSync(file).size < bytes) {
    const fd = openSync(file, 'w');
    const chunk = Buffer.alloc(MiB);
    for (let off = 0; off < bytes; off += MiB) {
      for (let i = 0; i < MiB; i += 4096) chunk.writeUInt32LE((off + i) / 4096, i);
      writeSync(fd, chunk);
    }
    closeSync(fd);
  }
  // Into the page cache: the case is a restore from cached snapshot pages.
  // Evicted and read back (`reference cache`), so that the page cache is
  // always as a read from disk leaves it, whatever wrote the file and when:
  // in large folios on ext4 and xfs, where pages just written are 4K ones.
  // Copying from a mapping of 4K page-cache pages costs a fault and, on a
  // shadow-paged VM, a first touch per 4K page: 3× slower into hugetlb
  // (docs/benchmarks.md).
  execFileSync(exe, ['cache', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  return file;
}

function buildCases() {
  const cases = [];
  for (const [id, mode, memory, label] of FAULT_CASES) {
    const pages = memory === 'hugetlb' ? size.pages2m : size.pages4k;
    for (const threads of [1, 2]) {
      for (const handler of HANDLERS) {
        cases.push({
          id: `${id}${threads === 2 ? '×2' : ''}/${handler.id}`,
          group: 'fault',
          label: `${label}, ${threads} thread${threads > 1 ? 's' : ''}, ${handler.label}`,
          metric: 'faultsPerSec',
          c: ['fault', mode, memory, threads, pages, pin],
          node: ['fault', handler.id, mode, memory, threads, pages, pin],
          pending: handler.id === 'native' && (mode === 'wp' || mode === 'move') ? `n/a: the pager does not serve ${mode === 'wp' ? 'WP' : 'MOVE'} faults` : undefined,
          cKey: `fault ${mode} ${memory} ${threads}`,
        });
      }
    }
  }
  for (const [chunk, name] of [[4096, '4K'], [65536, '64K'], [2 * MiB, '2M']]) {
    cases.push({
      id: `B-${name}`,
      group: 'bulk',
      label: `bulk COPY ${size.bulk / MiB} MiB in ${name} chunks (copyFromAddress chunkSize)`,
      metric: 'gbps',
      c: ['bulk', chunk, size.bulk],
      node: ['bulk', chunk, size.bulk],
      cKey: `bulk ${chunk}`,
    });
    cases.push({
      id: `B-${name}/per-call`,
      group: 'bulk',
      label: `bulk COPY ${size.bulk / MiB} MiB in ${name} chunks, one JS call per chunk`,
      metric: 'gbps',
      c: ['bulk', chunk, size.bulk],
      node: ['bulk', chunk, size.bulk, 'per-call'],
      cKey: `bulk ${chunk}`,
    });
  }
  for (const [handler, label] of [['native', 'Pager file source'], ['onfault', 'JS onFault() + copyFromAddress']]) {
    cases.push({
      id: `R-ra/${handler}`,
      group: 'restore',
      label: `lazy restore ${size.restoreRa / MiB} MiB page-cached file, read-ahead 64K→4M, ${label}`,
      metric: 'gbps',
      c: ['restore', '$FILE', size.restoreRa, 1],
      node: ['restore', '$FILE', size.restoreRa, 1, handler],
      cKey: 'restore ra',
    });
    cases.push({
      id: `R-4k/${handler}`,
      group: 'restore',
      label: `lazy restore ${size.restoreNoRa / MiB} MiB page-cached file, 4K per fault, ${label}`,
      metric: 'gbps',
      c: ['restore', '$FILE', size.restoreNoRa, 0],
      node: ['restore', '$FILE', size.restoreNoRa, 0, handler],
      cKey: 'restore 4k',
    });
  }
  // The Pager's asynchronous read-ahead (its default; R-ra/native above is
  // synchronous, as the C handler): the next window is filled while the
  // thread works through the current one.
  cases.push({
    id: 'R-ra/native-async',
    group: 'restore',
    label: `lazy restore ${size.restoreRa / MiB} MiB page-cached file, read-ahead 64K→4M, Pager file source, asynchronous read-ahead`,
    metric: 'gbps',
    c: ['restore', '$FILE', size.restoreRa, 1],
    node: ['restore', '$FILE', size.restoreRa, 1, 'native-async'],
    cKey: 'restore ra',
  });
  // Into hugetlb 2M pages: the application's first touch of each 4K page
  // costs next to nothing there (one TLB entry per 2M), so the copy itself
  // is measured, against the 2 GB/s target.
  for (const [handler, label] of [
    ['native', 'Pager file source'],
    ['native-async', 'Pager file source, asynchronous read-ahead'],
    ['native-async-pread', 'Pager file source with mmap: false (pread + COPY), asynchronous read-ahead'],
  ]) {
    cases.push({
      id: `R-ra-2M/${handler}`,
      group: 'restore',
      label: `lazy restore ${size.restoreHuge / MiB} MiB page-cached file into hugetlb 2M pages, read-ahead 2M→4M, ${label}`,
      metric: 'gbps',
      c: ['restore', '$FILE', size.restoreHuge, 1, 'hugetlb'],
      node: ['restore', '$FILE', size.restoreHuge, 1, handler, 'hugetlb'],
      cKey: 'restore ra hugetlb',
    });
  }
  // The host's ceiling for any 4K restore: the first touch of pages that are
  // already there, no userfaultfd (C only).
  for (const [memory, label] of [['anon', '4K pages'], ['hugetlb', 'hugetlb 2M pages']]) {
    cases.push({
      id: `R-floor${memory === 'anon' ? '' : '-2M'}`,
      group: 'restore',
      label: `first touch of ${size.restoreRa / MiB} MiB of populated ${label}, one word per 4K, no userfaultfd`,
      metric: 'gbps',
      c: ['touch-floor', size.restoreRa, memory],
      cOnly: 'C only: the ceiling',
    });
  }
  for (const [variant, label] of [['objects', 'pagemapScan(), an object per region'], ['arrays', 'pagemapScanArrays() into reused typed arrays']]) {
    cases.push({
      id: variant === 'objects' ? 'S-scan' : 'S-scan/arrays',
      group: 'scan',
      label: `PAGEMAP_SCAN ${size.scan / MiB} MiB WP_ASYNC, ${size.dirty} dirty pages, ${label}`,
      metric: 'dirtyMs',
      lowerIsBetter: true,
      c: ['pagemap-scan', size.scan, size.dirty],
      node: ['pagemap-scan', size.scan, size.dirty, variant],
      cKey: 'scan',
    });
  }
  return cases.filter((c) => !only || c.id === only || c.id.includes(only) || c.group === only);
}

// ---- running -----------------------------------------------------------------

function buildReference() {
  const out = path.join(root, 'build', 'bench');
  mkdirSync(out, { recursive: true });
  const exe = path.join(out, 'reference');
  execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', exe, path.join(root, 'bench', 'c', 'reference.c')], {
    stdio: 'inherit',
  });
  return exe;
}

// A freshly booted VM gets its guest RAM backed by the host lazily, page by
// page, on first use: until every page the cases will get has been used
// once, they also measure the host's faults (a first run took twice as long
// as the next). Touching 4 GiB of anonymous memory once and giving it back
// (`reference warm`, a few seconds, up to minutes on a fresh VM) makes that
// memory backed before anything is measured.
function warmUp(exe) {
  if (!asJson) process.stderr.write('warming the machine\'s memory up (4 GiB touched once)...\n');
  execFileSync(exe, ['warm', String(4 * GiB)], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function runChild(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      let result;
      try {
        result = JSON.parse(line);
      } catch {
        result = { error: `no result (exit ${code ?? signal}): ${stderr.trim().split('\n').pop() ?? ''}` };
      }
      if (signal === 'SIGKILL') result = { error: `timed out after ${timeoutMs} ms` };
      resolve(result);
    });
  });
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q + 0.5))];
};
const stat = (xs) => (xs.length ? { median: quantile(xs, 0.5), min: Math.min(...xs), max: Math.max(...xs) } : undefined);

async function main() {
  const exe = buildReference();
  const cases = buildCases();
  if (!quick) warmUp(exe);
  const file = cases.some((c) => c.group === 'restore') ? restoreFile(exe) : '';
  const subst = (args) => args.map((a) => (a === '$FILE' ? file : a));
  const nodeCase = path.join(root, 'bench', 'node-case.mjs');
  const runs = new Map(cases.map((c) => [c.id, { c: [], node: [], ratio: [], errors: [] }]));
  // A C run shared by the cases that differ only in the Node handler.
  for (let rep = 0; rep < reps; rep++) {
    const cShared = new Map();
    for (const kase of cases) {
      const r = runs.get(kase.id);
      const runC = async () => {
        if (kase.cKey && cShared.has(kase.cKey)) return cShared.get(kase.cKey);
        const res = await runChild(exe, subst(kase.c));
        if (kase.cKey) cShared.set(kase.cKey, res);
        return res;
      };
      const runNode = () => (kase.pending || kase.cOnly ? Promise.resolve({ pending: kase.pending ?? kase.cOnly }) : runChild(process.execPath, [nodeCase, ...subst(kase.node)]));
      // Alternate which side goes first, so drift in the machine's load hits both.
      let c;
      let n;
      if (rep % 2 === 0) {
        c = await runC();
        n = await runNode();
      } else {
        n = await runNode();
        c = await runC();
      }
      if (c.error) r.errors.push(`C: ${c.error}`);
      if (n.error) r.errors.push(`Node: ${n.error}`);
      if (!c.error) r.c.push(c);
      if (!n.error && !n.pending) r.node.push(n);
      if (!c.error && !n.error && !n.pending) r.ratio.push(kase.lowerIsBetter ? c[kase.metric] / n[kase.metric] : n[kase.metric] / c[kase.metric]);
      if (!asJson) process.stderr.write(`rep ${rep + 1}/${reps} ${kase.id}: C ${fmtMetric(kase, c)} Node ${fmtMetric(kase, n)}\n`);
    }
  }
  const summary = cases.map((kase) => {
    const r = runs.get(kase.id);
    const pick = (side, key) => stat(r[side].map((x) => x[key]).filter((x) => typeof x === 'number'));
    const keys = kase.group === 'fault' ? ['faultsPerSec', 'p50Us', 'p99Us'] : kase.group === 'scan' ? ['cleanMs', 'dirtyMs'] : ['gbps'];
    const c = Object.fromEntries(keys.map((k) => [k, pick('c', k)]));
    const node = Object.fromEntries(keys.map((k) => [k, pick('node', k)]));
    const p99Ratio = kase.group === 'fault' ? stat(r.c.map((x, i) => (r.node[i] ? r.node[i].p99Us / x.p99Us : NaN)).filter(Number.isFinite)) : undefined;
    return { id: kase.id, group: kase.group, label: kase.label, metric: kase.metric, pending: kase.pending, cOnly: kase.cOnly, c, node, ratio: stat(r.ratio), p99Ratio, errors: [...new Set(r.errors)] };
  });
  const machine = machineInfo();
  const markdown = renderMarkdown(summary, machine);
  if (asJson) process.stdout.write(JSON.stringify({ machine, summary }, null, 2) + '\n');
  else process.stdout.write(markdown + '\n');
  if (write) {
    writeFileSync(path.join(root, 'docs', 'benchmarks.svg'), renderSvg(summary, machine));
    updateDoc(path.join(root, 'docs', 'benchmarks.md'), markdown);
  }
  if (summary.some((s) => s.errors.length && !s.c.faultsPerSec && !s.c.gbps && !s.c.dirtyMs)) process.exitCode = 1;
}

// ---- output ------------------------------------------------------------------

function fmtMetric(kase, r) {
  if (r.pending) return 'pending';
  if (r.error) return `error (${r.error})`;
  const v = r[kase.metric];
  return kase.metric === 'faultsPerSec' ? `${(v / 1000).toFixed(1)}k/s p99 ${r.p99Us.toFixed(1)}µs` : kase.metric === 'gbps' ? `${v.toFixed(2)} GB/s` : `${v.toFixed(2)} ms`;
}

const num = (v, digits) => (v === undefined ? '–' : v.toFixed(digits));
const range = (s, digits, scale = 1) => (s ? `${num(s.median / scale, digits)} (${num(s.min / scale, digits)}–${num(s.max / scale, digits)})` : '–');

function machineInfo() {
  const cpus = os.cpus();
  return {
    kernel: os.release(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / GiB),
    node: process.version,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    reps,
    quick,
    pinned: pin === 1,
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

function renderMarkdown(summary, m) {
  const lines = [];
  lines.push(`Run ${m.date} — kernel ${m.kernel}, ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; ` + `${m.reps} repetition(s)${m.quick ? ' (quick mode)' : ''}, ${m.pinned ? 'faulting threads pinned to CPU 0 and the handler to CPU 1' : 'threads not pinned'}; load average at the end ${m.loadavg}.`);
  lines.push('Each cell: median (min–max) over the repetitions; the ratio is Node/C computed per repetition (C and Node ran back to back, alternating).');
  lines.push('');
  lines.push('### Faults (faulting native threads, one ioctl per fault)');
  lines.push('');
  lines.push('| case | C k faults/s | Node k faults/s | Node/C | C p50 µs | Node p50 µs | C p99 µs | Node p99 µs | p99 Node/C |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const s of summary.filter((x) => x.group === 'fault')) {
    if (s.pending) {
      lines.push(`| ${s.id} ${s.label} | ${range(s.c.faultsPerSec, 1, 1000)} | pending (${s.pending}) | | | | | | |`);
      continue;
    }
    lines.push(`| ${s.id} ${s.label} | ${range(s.c.faultsPerSec, 1, 1000)} | ${range(s.node.faultsPerSec, 1, 1000)} | ${range(s.ratio, 2)} | ${num(s.c.p50Us?.median, 1)} | ${num(s.node.p50Us?.median, 1)} | ${num(s.c.p99Us?.median, 1)} | ${num(s.node.p99Us?.median, 1)} | ${range(s.p99Ratio, 2)} |${s.errors.length ? ' ' + s.errors.join('; ') : ''}`);
  }
  lines.push('');
  lines.push('### Throughput');
  lines.push('');
  lines.push('| case | C | Node | Node/C |');
  lines.push('|---|---|---|---|');
  for (const s of summary.filter((x) => x.group !== 'fault')) {
    if (s.pending) continue;
    const unit = s.group === 'scan' ? 'ms' : 'GB/s';
    const c = s.group === 'scan' ? `${range(s.c.dirtyMs, 2)} ms (clean ${num(s.c.cleanMs?.median, 2)} ms)` : `${range(s.c.gbps, 2)} ${unit}`;
    const n = s.cOnly ? s.cOnly : s.group === 'scan' ? (s.node.dirtyMs ? `${range(s.node.dirtyMs, 2)} ms (clean ${num(s.node.cleanMs?.median, 2)} ms)` : 'pending') : `${range(s.node.gbps, 2)} ${unit}`;
    lines.push(`| ${s.id} ${s.label} | ${c} | ${n} | ${range(s.ratio, 2)} |${s.errors.length ? ' ' + s.errors.join('; ') : ''}`);
  }
  lines.push('');
  lines.push('PAGEMAP_SCAN ratio is C time / Node time (higher is better, as the others).');
  return lines.join('\n');
}

function updateDoc(file, markdown) {
  const begin = '<!-- bench:begin (generated by npm run bench) -->';
  const end = '<!-- bench:end -->';
  const generated = `${begin}\n${markdown}\n\n![Node/C ratio per case](benchmarks.svg)\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  text = a >= 0 && b > a ? text.slice(0, a) + generated + text.slice(b + end.length) : `${text}\n${generated}\n`;
  writeFileSync(file, text);
}

await main();
