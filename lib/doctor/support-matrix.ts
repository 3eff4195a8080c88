// Which memory type works with which registration mode here, and if not,
// why. Each cell is tried for real: the memory is created, a uffd with the
// needed features is opened, and one page is registered. Test suites skip
// with these same reasons.
import { rmSync } from 'node:fs';
import { HUGE_1G, HUGE_2M, PAGE_SIZE } from '../memory/constants';
import { Mapping } from '../memory/mapping';
import { MemoryFile } from '../memory/memory-file';
import { Userfaultfd } from '../uffd/userfaultfd';
import type { Feature, RegisterMode } from '../uffd/features';
import { inspectEnvironment, type EnvironmentReport, type OpenAttempt } from './environment';
import { probeLongtermPin } from '../testing/longterm-pin';

export const MEMORY_TYPES = [
  'anon',
  'shmem',
  'shmem-private',
  'hugetlb-2M',
  'hugetlb-2M-private',
  'hugetlb-1G',
  'hugetlbfs',
  'guest_memfd',
] as const;
export type MemoryType = (typeof MEMORY_TYPES)[number];
export const MODES: readonly RegisterMode[] = ['missing', 'wp', 'minor'];

export type Support = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly code?: string };
export type SupportMatrix = Record<MemoryType, Record<RegisterMode, Support>>;

export interface DoctorReport extends EnvironmentReport {
  readonly matrix: SupportMatrix;
  /** Whether a long-term page pin (io_uring fixed buffers) works here: the wp-fork-pin selftests need one. */
  readonly longtermPin: OpenAttempt;
}

function longtermPinAttempt(): OpenAttempt {
  const support = probeLongtermPin();
  return support.ok ? { ok: true } : { ok: false, code: support.error.code, reason: support.reason };
}

/** The UFFD_FEATURE_*s a registration of `mode` on `memory` needs. */
export function requiredFeatures(memory: MemoryType, mode: RegisterMode): Feature[] {
  const family = memory === 'anon' ? 'anon' : memory.startsWith('huge') ? 'hugetlb' : 'shmem';
  if (mode === 'wp') return family === 'anon' ? ['PAGEFAULT_FLAG_WP'] : ['PAGEFAULT_FLAG_WP', 'WP_HUGETLBFS_SHMEM'];
  if (mode === 'minor') return family === 'hugetlb' ? ['MINOR_HUGETLBFS'] : family === 'shmem' ? ['MINOR_SHMEM'] : [];
  return family === 'hugetlb' ? ['MISSING_HUGETLBFS'] : family === 'shmem' ? ['MISSING_SHMEM'] : [];
}

interface Made {
  mapping: Mapping;
  release(): void;
}

function fromFile(file: MemoryFile, shared: boolean): Made {
  const mapping = file.map({ shared, length: file.pageSize });
  return { mapping, release: () => (mapping.unmap(), file.close()) };
}

/** Creates one page of `memory`, or says why it cannot. */
function makeMemory(memory: MemoryType, env: EnvironmentReport): Made | Support {
  const needHuge = (size: number): Support | undefined => {
    const pool = env.hugetlbPools.find((p) => p.pageSize === size);
    if (!pool) return { ok: false, reason: `the kernel has no ${size / 1024 / 1024}M hugetlb pool` };
    if (pool.free - pool.reserved < 1) {
      return { ok: false, reason: `no free ${size >= HUGE_1G ? '1G' : '2M'} hugetlb pages (free ${pool.free}, reserved ${pool.reserved}; raise /proc/sys/vm/nr_hugepages)` };
    }
    return undefined;
  };
  try {
    switch (memory) {
      case 'anon': {
        const mapping = Mapping.anonymous(PAGE_SIZE);
        return { mapping, release: () => mapping.unmap() };
      }
      case 'shmem':
      case 'shmem-private':
        return fromFile(MemoryFile.memfd(PAGE_SIZE), memory === 'shmem');
      case 'hugetlb-2M':
      case 'hugetlb-2M-private':
        return needHuge(HUGE_2M) ?? fromFile(MemoryFile.memfd(HUGE_2M, { hugePageSize: HUGE_2M }), memory === 'hugetlb-2M');
      case 'hugetlb-1G':
        return needHuge(HUGE_1G) ?? fromFile(MemoryFile.memfd(HUGE_1G, { hugePageSize: HUGE_1G }), true);
      case 'hugetlbfs': {
        const mount = env.hugetlbfsMounts[0];
        if (!mount) return { ok: false, reason: 'no hugetlbfs is mounted (mount -t hugetlbfs none /dev/hugepages)' };
        const lack = needHuge(mount.pageSize);
        if (lack) return lack;
        const path = `${mount.path}/userfaultfd-doctor-${process.pid}`;
        const file = MemoryFile.openHugetlbfs(path, mount.pageSize);
        rmSync(path, { force: true });  // the open fd keeps the file
        return fromFile(file, true);
      }
      case 'guest_memfd':
        if (!env.kvm.ok) return { ok: false, reason: env.kvm.reason ?? 'no KVM', code: env.kvm.code };
        return fromFile(MemoryFile.guestMemfd(PAGE_SIZE), true);
    }
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { ok: false, reason: `could not create the memory: ${e.message}`, code: e.code };
  }
}

function probeCell(memory: MemoryType, mode: RegisterMode, env: EnvironmentReport): Support {
  const features = requiredFeatures(memory, mode);
  const missing = features.filter((f) => !env.supportedFeatures.includes(f));
  if (missing.length) return { ok: false, reason: `the kernel lacks ${missing.map((f) => `UFFD_FEATURE_${f}`).join(', ')}` };
  const made = makeMemory(memory, env);
  if ('ok' in made) return made;
  let uffd: Userfaultfd | undefined;
  try {
    uffd = Userfaultfd.open({ features, userModeOnly: !env.open.device.ok && !env.open.syscall.ok });
    uffd.register(made.mapping, [mode]);
    return { ok: true };
  } catch (err) {
    const e = err as { code?: string; message: string };
    const why = e.code === 'EINVAL' ? `UFFDIO_REGISTER fails with EINVAL: the kernel does not support ${mode.toUpperCase()} on ${memory}` : e.message;
    return { ok: false, reason: why, code: e.code };
  } finally {
    uffd?.close();
    made.release();
  }
}

/** The doctor's whole report: environment facts and the memory × mode matrix. */
export function probeSupport(): DoctorReport {
  const env = inspectEnvironment();
  const matrix = {} as SupportMatrix;
  const canOpen = env.open.device.ok || env.open.syscall.ok || env.open.syscallUserModeOnly.ok;
  for (const memory of MEMORY_TYPES) {
    matrix[memory] = {} as Record<RegisterMode, Support>;
    for (const mode of MODES) {
      matrix[memory][mode] = canOpen ? probeCell(memory, mode, env) : { ok: false, reason: 'no userfaultfd can be opened here' };
    }
  }
  return { ...env, matrix, longtermPin: longtermPinAttempt() };
}
