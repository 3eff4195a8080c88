// `npx userfaultfd doctor` and the probe behind it, on this machine.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MEMORY_TYPES, MODES, probeSupport, requiredFeatures } from '../lib';
import { probeLongtermPin } from '../lib/testing';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const runCli = (...args: string[]) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });

describe('doctor', () => {
  const report = probeSupport();

  it('reports the kernel, the ways to open a uffd and the supported features', () => {
    expect(report.kernel).toMatch(/^\d+\.\d+/);
    expect(report.open.device.ok || report.open.syscall.ok || report.open.syscallUserModeOnly.ok).toBe(true);
    expect(report.supportedFeatures).toContain('MISSING_SHMEM');
    for (const a of Object.values(report.open)) if (!a.ok) expect(a.reason).toBeTruthy();
  });

  it('fills every cell of the memory × mode matrix with works or a reason', () => {
    for (const memory of MEMORY_TYPES) {
      for (const mode of MODES) {
        const cell = report.matrix[memory][mode];
        if (!cell.ok) expect(cell.reason.length).toBeGreaterThan(10);
      }
    }
    expect(report.matrix.anon.missing).toEqual({ ok: true });
    expect(report.matrix.anon.minor).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(requiredFeatures('hugetlb-2M', 'minor')).toEqual(['MINOR_HUGETLBFS']);
    expect(requiredFeatures('shmem', 'wp')).toEqual(['PAGEFAULT_FLAG_WP', 'WP_HUGETLBFS_SHMEM']);
  });

  it('reports that guest_memfd is created and mapped but cannot be registered (EINVAL) on this kernel', () => {
    if (!report.kvm.ok) {
      expect(report.matrix.guest_memfd.missing).toMatchObject({ ok: false });
      return;
    }
    for (const mode of MODES) {
      expect(report.matrix.guest_memfd[mode]).toMatchObject({ ok: false, code: 'EINVAL' });
      expect((report.matrix.guest_memfd[mode] as { reason: string }).reason).toMatch(/UFFDIO_REGISTER fails with EINVAL/);
    }
  });

  it('prints the matrix as text and as JSON from the bin', () => {
    const text = runCli('doctor');
    expect(text).toMatch(/^kernel\s+\S+/m);
    expect(text).toMatch(/^anon\s+works\s+works\s+no \[\d+\]/m);
    expect(text).toMatch(/why not:/);
    const json = JSON.parse(runCli('doctor', '--json'));
    expect(json.matrix.shmem.missing).toEqual({ ok: true });
    expect(Object.keys(json.matrix)).toEqual([...MEMORY_TYPES]);
    // The probe forkChild's 'pin' step and the wp-fork-pin cases skip by.
    expect(text).toMatch(/^long-term pin\s+(yes \(io_uring fixed buffers\)|no: \S.{10,})$/m);
    expect(json.longtermPin.ok).toBe(probeLongtermPin().ok);
  });
});
