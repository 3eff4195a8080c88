// The doctor's report as text for a terminal.
import { MEMORY_TYPES, MODES, type DoctorReport } from './support-matrix';
import type { OpenAttempt } from './environment';

function attempt(a: OpenAttempt): string {
  return a.ok ? 'yes' : `no: ${a.reason}`;
}

function size(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${bytes / 1024 ** 3}G` : `${bytes / 1024 ** 2}M`;
}

export function formatReport(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`kernel             ${r.kernel}`);
  lines.push(`user               euid ${r.euid}${r.euid === 0 ? ' (root)' : ''}; CAP_SYS_PTRACE ${r.capSysPtrace ? 'yes' : 'no'}; vm.unprivileged_userfaultfd ${r.unprivilegedUserfaultfd ?? 'absent'}`);
  lines.push(`/dev/userfaultfd   ${r.device.exists ? `${r.device.mode}, ${r.device.accessible ? 'accessible' : 'not accessible'}` : 'missing'}`);
  lines.push('open via');
  lines.push(`  device           ${attempt(r.open.device)}`);
  lines.push(`  syscall          ${attempt(r.open.syscall)}`);
  lines.push(`  syscall, USER_MODE_ONLY ${attempt(r.open.syscallUserModeOnly)}`);
  lines.push(`features           ${r.supportedFeatures.join(' ') || 'none'}`);
  lines.push('hugetlb pools');
  for (const p of r.hugetlbPools) lines.push(`  ${size(p.pageSize).padEnd(5)} total ${p.total}, free ${p.free}, reserved ${p.reserved}, surplus ${p.surplus}`);
  lines.push(`hugetlbfs          ${r.hugetlbfsMounts.map((m) => `${m.path} (${size(m.pageSize)})`).join(', ') || 'not mounted'}`);
  lines.push(`KVM guest_memfd    ${attempt(r.kvm)}`);
  lines.push(`long-term pin      ${r.longtermPin.ok ? 'yes (io_uring fixed buffers)' : `no: ${r.longtermPin.reason}`}`);
  lines.push('');
  lines.push(`${'memory'.padEnd(20)}${MODES.map((m) => m.toUpperCase().padEnd(10)).join('')}`);
  const reasons: string[] = [];
  for (const memory of MEMORY_TYPES) {
    const cells = MODES.map((mode) => {
      const s = r.matrix[memory][mode];
      if (s.ok) return 'works'.padEnd(10);
      reasons.push(`  ${memory} ${mode.toUpperCase()}: ${s.reason}`);
      return `no [${reasons.length}]`.padEnd(10);
    });
    lines.push(`${memory.padEnd(20)}${cells.join('')}`);
  }
  if (reasons.length) {
    lines.push('');
    lines.push('why not:');
    reasons.forEach((reason, i) => lines.push(reason.replace(/^ {2}/, `  [${i + 1}] `)));
  }
  return `${lines.join('\n')}\n`;
}
