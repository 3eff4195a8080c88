// The benchmark still works: `npm run bench -- --quick` builds the C
// reference handler, runs every case on both sides and reports numbers.
// No timing assertion (benchmarks are not tests): only that each side of
// each case produced a result.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeChild, root, runChild } from './helpers/child';
import { freeHugetlbPages2M } from '../lib/testing';

interface Stat {
  median: number;
  min: number;
  max: number;
}
interface CaseSummary {
  id: string;
  group: string;
  pending?: string;
  /** A C-only row (the host's ceiling): no Node side, no ratio. */
  cOnly?: string;
  c: Record<string, Stat | undefined>;
  node: Record<string, Stat | undefined>;
  ratio?: Stat;
  errors: string[];
}

describe('bench --quick', () => {
  it('runs every case in C and in Node and reports a ratio for each', async () => {
    const run = join(root, 'bench', 'run.mjs');
    const r = await runChild(
      {
        code: `process.argv = [process.argv[0], ${JSON.stringify(run)}, ...process.argv.slice(1)]; await import(${JSON.stringify(run)});`,
        module: 'module',
      },
      { args: ['--', '--quick', '--no-write', '--json'], timeoutMs: 120_000 },
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    const { machine, summary } = JSON.parse(r.stdout) as { machine: { kernel: string }; summary: CaseSummary[] };
    expect(machine.kernel).toMatch(/^\d+\.\d+/);
    const ids = summary.map((s) => s.id);
    for (const id of ['D1/js', 'D1×2/js', 'D4/js', 'D6/js', 'D8/js', 'D9/js', 'B-4K', 'B-64K', 'B-2M', 'B-4K/per-call', 'D1/onfault', 'D1/native', 'D4/native', 'D6/native', 'R-ra/native', 'R-ra/onfault', 'R-4k/native', 'R-4k/onfault', 'R-ra/native-async', 'R-floor', 'S-scan']) {
      expect(ids).toContain(id);
    }
    // Hugetlb cases need free 2M pages (npm test reserves them).
    const hugetlbOk = freeHugetlbPages2M() >= 32;
    for (const s of summary) {
      if (s.id.startsWith('D3') || s.id.startsWith('D7') || s.id.includes('-2M')) {
        if (!hugetlbOk) continue;
      }
      expect(s.errors, s.id).toEqual([]);
      const metric = s.group === 'fault' ? 'faultsPerSec' : s.group === 'scan' ? 'dirtyMs' : 'gbps';
      expect(s.c[metric]?.median, `${s.id} C`).toBeGreaterThan(0);
      if (s.pending || s.cOnly) continue;
      expect(s.node[metric]?.median, `${s.id} Node`).toBeGreaterThan(0);
      expect(s.ratio?.median, `${s.id} ratio`).toBeGreaterThan(0);
    }
    expect(r.code, describeChild(r)).toBe(0);
  }, 150_000);
});
