// The uffd-stress equivalent from the command line, on the built library:
//   npm run stress -- <anon|shmem|hugetlb> <MiB> <bounces> [--wp] [--threads N]
// Prints one line per verified bounce and a total. Build first
// (`npm run build`, or `npx node-gyp rebuild && npx tsc -p .`).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'testing', 'index.js');
const USAGE = 'usage: npm run stress -- <anon|shmem|hugetlb> <MiB> <bounces> [--wp] [--threads N] [--eexist-every N]';

function fail(message, code = 2) {
  console.error(message);
  process.exit(code);
}

if (!existsSync(entry)) fail(`${entry} is missing: build first (npm run build)`);
const { runStress, STRESS_MEMORY_TYPES, stressHugetlbPagesNeeded, freeHugetlbPages2M } = createRequire(import.meta.url)(entry);

const positional = [];
const options = {};
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--wp') options.wp = true;
  else if (a === '--threads') options.threads = Number(args[++i]);
  else if (a === '--eexist-every') options.eexistEvery = Number(args[++i]);
  else if (a === '-h' || a === '--help') fail(USAGE, 0);
  else if (a.startsWith('-')) fail(`unknown option ${a}\n${USAGE}`);
  else positional.push(a);
}
if (positional.length !== 3) fail(USAGE);
const [memory, mibText, bouncesText] = positional;
if (!STRESS_MEMORY_TYPES.includes(memory)) fail(`memory type must be one of ${STRESS_MEMORY_TYPES.join(', ')}\n${USAGE}`);
const mib = Number(mibText);
const bounces = Number(bouncesText);

if (memory === 'hugetlb') {
  const need = stressHugetlbPagesNeeded(mib, options.threads);
  const free = freeHugetlbPages2M();
  if (free < need) fail(`hugetlb ${mib} MiB needs ${need} free 2M hugetlb pages; ${free} are free (as root: UFFD_HUGEPAGES_2M=${need} node scripts/reserve-hugepages.mjs)`, 1);
}

const pad = (v, n) => String(v).padStart(n);
let total = { faults: 0, wpFaults: 0, eexistRetries: 0, ms: 0 };
const started = performance.now();
try {
  const result = await runStress({
    memory,
    mib,
    bounces,
    ...options,
    onBounce: (s) => {
      total.faults += s.faults;
      total.wpFaults += s.wpFaults;
      total.eexistRetries += s.eexistRetries;
      total.ms += s.durationMs;
      console.log(
        `bounce ${pad(s.bounce + 1, String(bounces).length)}/${bounces} ${s.mode.padEnd(10)} ` +
          `faults ${pad(s.faults, 6)} (copied ${s.handlerCopies}, raced ${s.raced}) ` +
          `wp ${pad(s.wpFaults, 6)} eexist-retries ${s.eexistRetries}${s.eexistRetriesViaAlias ? ` (${s.eexistRetriesViaAlias} via alias)` : ''} ` +
          `background ${s.backgroundCopies}+${s.backgroundEexist} EEXIST locks ${s.locks} ` +
          `${s.durationMs.toFixed(1)} ms ${Math.round(s.faultsPerSecond)} faults/s verified`,
      );
    },
  });
  const wall = (performance.now() - started) / 1000;
  console.log(
    `${memory} ${mib} MiB x ${bounces} bounces${result.wp ? ' (wp)' : ''}, ${result.threads} threads, ${result.pages} pages of ${result.pageSize}: ` +
      `${total.faults} missing + ${total.wpFaults} wp faults, ${total.eexistRetries} EEXIST retries, ` +
      `${Math.round(((total.faults + total.wpFaults) * 1000) / total.ms)} faults/s over the bounces, ${wall.toFixed(2)} s wall, all verified`,
  );
} catch (err) {
  console.error(err);
  process.exit(1);
}
