// Facts about this machine that decide what userfaultfd can do here: kernel,
// privileges, how a uffd can be opened, hugetlb pools. Read from /proc and
// /sys, and by trying.
import { accessSync, constants as fsConstants, readFileSync, readdirSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { native } from '../native';
import { featureNames, type Feature, type UnknownBit } from '../uffd/features';

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const UFFD_USER_MODE_ONLY = 1;
const CAP_SYS_PTRACE = 19;

export interface OpenAttempt {
  readonly ok: boolean;
  /** errno code when it failed. */
  readonly code?: string;
  readonly reason?: string;
}

export interface HugetlbPool {
  readonly pageSize: number;
  readonly total: number;
  readonly free: number;
  readonly reserved: number;
  readonly surplus: number;
}

export interface EnvironmentReport {
  readonly kernel: string;
  readonly euid: number;
  readonly capSysPtrace: boolean;
  /** vm.unprivileged_userfaultfd, or undefined when the sysctl is absent. */
  readonly unprivilegedUserfaultfd: number | undefined;
  readonly device: { readonly exists: boolean; readonly mode?: string; readonly accessible: boolean };
  readonly open: { readonly device: OpenAttempt; readonly syscall: OpenAttempt; readonly syscallUserModeOnly: OpenAttempt };
  readonly supportedFeatures: readonly (Feature | UnknownBit)[];
  readonly hugetlbPools: readonly HugetlbPool[];
  readonly hugetlbfsMounts: readonly { readonly path: string; readonly pageSize: number }[];
  readonly kvm: OpenAttempt;
}

function readNumber(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function attempt(fn: () => number, explain: (code: string) => string): OpenAttempt {
  try {
    native.closeFd(fn());
    return { ok: true };
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'UNKNOWN';
    return { ok: false, code, reason: explain(code) };
  }
}

function capEffective(bit: number): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  if (!line) return false;
  return ((BigInt(`0x${line.split(/\s+/)[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

function hugetlbPools(): HugetlbPool[] {
  const base = '/sys/kernel/mm/hugepages';
  let dirs: string[] = [];
  try {
    dirs = readdirSync(base);
  } catch {
    return [];
  }
  return dirs
    .map((d) => {
      const kb = Number(/hugepages-(\d+)kB/.exec(d)?.[1] ?? 0);
      const n = (f: string) => readNumber(`${base}/${d}/${f}`) ?? 0;
      return { pageSize: kb * 1024, total: n('nr_hugepages'), free: n('free_hugepages'), reserved: n('resv_hugepages'), surplus: n('surplus_hugepages') };
    })
    .filter((p) => p.pageSize > 0)
    .sort((a, b) => a.pageSize - b.pageSize);
}

function hugetlbfsMounts(): { path: string; pageSize: number }[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'hugetlbfs')
    .map((f) => {
      const size = /pagesize=(\d+)([KMG])/.exec(f[3] ?? '');
      const unit = size ? { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[size[2] as 'K' | 'M' | 'G'] : 0;
      return { path: f[1] as string, pageSize: size ? Number(size[1]) * unit : 2 * 1024 * 1024 };
    });
}

export function inspectEnvironment(): EnvironmentReport {
  const flags = O_CLOEXEC | O_NONBLOCK;
  const euid = process.geteuid?.() ?? -1;
  const capSysPtrace = capEffective(CAP_SYS_PTRACE);
  const unprivileged = readNumber('/proc/sys/vm/unprivileged_userfaultfd');
  let device: EnvironmentReport['device'] = { exists: false, accessible: false };
  try {
    const st = statSync('/dev/userfaultfd');
    let accessible = true;
    try {
      accessSync('/dev/userfaultfd', fsConstants.R_OK | fsConstants.W_OK);
    } catch {
      accessible = false;
    }
    device = { exists: true, mode: `0${(st.mode & 0o777).toString(8)} uid ${st.uid}`, accessible };
  } catch {
    // no device node: kernel older than 6.1 or not created by udev
  }
  const deviceWhy = (code: string) =>
    code === 'ENOENT' ? '/dev/userfaultfd does not exist (Linux < 6.1, or no device node)'
      : code === 'EACCES' || code === 'EPERM' ? `no permission on /dev/userfaultfd (mode ${device.mode ?? '?'}): needs access to the node`
        : `open or USERFAULTFD_IOC_NEW failed with ${code}`;
  const syscallWhy = (code: string) =>
    code === 'EPERM'
      ? `not root nor CAP_SYS_PTRACE and vm.unprivileged_userfaultfd = ${unprivileged ?? 'absent'}: use /dev/userfaultfd or userModeOnly`
      : code === 'ENOSYS' ? 'the kernel has no userfaultfd (CONFIG_USERFAULTFD=n)' : `userfaultfd() failed with ${code}`;
  const open = {
    device: attempt(() => native.openViaDevice(flags), deviceWhy),
    syscall: attempt(() => native.openViaSyscall(flags), syscallWhy),
    syscallUserModeOnly: attempt(() => native.openViaSyscall(flags | UFFD_USER_MODE_ONLY), syscallWhy),
  };
  let supportedFeatures: (Feature | UnknownBit)[] = [];
  // When only a USER_MODE_ONLY uffd can be opened (unprivileged, sysctl 0, no
  // access to the device), its UFFDIO_API still tells what the kernel supports.
  const opener = open.device.ok ? native.openViaDevice : open.syscall.ok || open.syscallUserModeOnly.ok ? native.openViaSyscall : undefined;
  if (opener) {
    const fd = opener(open.device.ok || open.syscall.ok ? flags : flags | UFFD_USER_MODE_ONLY);
    try {
      supportedFeatures = [...featureNames(native.api(fd, 0xaan, 0n)[0])];
    } finally {
      native.closeFd(fd);
    }
  }
  const kvm = attempt(
    () => native.guestMemfdCreate(4096, 1),
    (code) => (code === 'ENOENT' ? '/dev/kvm does not exist' : `guest_memfd could not be created (${code})`),
  );
  return {
    kernel: release(),
    euid,
    capSysPtrace,
    unprivilegedUserfaultfd: unprivileged,
    device,
    open,
    supportedFeatures,
    hugetlbPools: hugetlbPools(),
    hugetlbfsMounts: hugetlbfsMounts(),
    kvm,
  };
}
