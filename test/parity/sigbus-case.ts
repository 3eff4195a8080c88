// The body of uffd-unit-tests "sigbus" and "sigbus-wp"
// (uffd_sigbus_test_common); sigbus.test.ts and sigbus-wp.test.ts run it
// on every memory type.
//
// With UFFD_FEATURE_SIGBUS a missing page raises SIGBUS instead of a fault
// event. A native thread reads the first half of dst, page by page,
// catching SIGBUS; after each signal it waits while the handler (here, in
// JavaScript) UFFDIO_COPYs the page from src, then reads again and writes
// the value back. Exactly one signal per page, never repeated; with WP the
// copy is write-protected, so the write-back raises a second signal, which
// the handler answers by unprotecting. Then dst is released and a child
// forked with EVENT_FORK reads the same pages: every one must raise SIGBUS
// in the child, and no fault event may reach the monitor.
//
// Better than the C suite, whose parent-side check reads a thread result
// that is always NULL: here every count is the touching thread's own count
// of real signals, with their si_code and si_addr, and can fail.
import { expect } from 'vitest';
import { Userfaultfd, type RegisterMode } from '../../lib';
import { forkChild, SIGBUS_CODES, touchCatchingSigbus, type ForkedChild } from '../../lib/testing';
import type { ParityMemory } from './areas';
import { caseSetup, expectEach, monitorUntil, pattern, patternAreas, releaseAdvice } from './sigbus-events-common';

export async function sigbusCase(memory: ParityMemory, wp: boolean, skip: (reason: string) => void): Promise<void> {
  const modes: RegisterMode[] = wp ? ['missing', 'wp'] : ['missing'];
  const setup = caseSetup(memory, wp ? ['SIGBUS', 'EVENT_FORK', 'PAGEFAULT_FLAG_WP', 'WP_HUGETLBFS_SHMEM'] : ['SIGBUS', 'EVENT_FORK'], modes);
  if (setup.skip) return skip(setup.skip);

  const areas = patternAreas(memory);
  const { dst, src, pageSize } = areas;
  const uffd = Userfaultfd.open({ features: setup.features });
  let childUffd: Userfaultfd | undefined;
  let child: ForkedChild | undefined;
  try {
    uffd.register(dst, modes);
    const half = Math.ceil(areas.nrPages / 2);

    // faulting_process(1): every signal is answered, then the page retried.
    // A fault event instead of a signal would block the thread: the monitor
    // counts it and resolves it, so the case fails instead of hanging.
    let copies = 0;
    let unprotects = 0;
    let parentFaults = 0;
    const touching = touchCatchingSigbus(dst.address, half * pageSize, {
      stride: pageSize,
      writeBack: true,
      maxSignalsPerPage: 4,
      onSigbus: (s) => {
        if (!s.write) {
          const copied = uffd.copyFromAddress(s.address, src.address + s.index * pageSize, pageSize, { writeProtect: wp });
          expect(copied).toEqual({ bytes: pageSize, status: 'complete' });
          copies++;
        } else {
          uffd.writeProtect(s.address, pageSize, false);
          unprotects++;
        }
      },
    });
    const touched = await monitorUntil(uffd.events(), touching, (e) => {
      if (e.type !== 'pagefault') return;
      parentFaults++;
      const page = e.address - ((e.address - dst.address) % pageSize);
      if (e.wp) uffd.writeProtect(page, pageSize, false);
      else uffd.copyFromAddress(page, src.address + (page - dst.address), pageSize);
    });
    expect(parentFaults).toBe(0);
    expectEach('read signals per page', touched.readSignals, () => 1);
    expectEach('write-back signals per page', touched.writeSignals, () => (wp ? 1 : 0));
    expectEach('values read', touched.values, pattern);
    expectEach('pages completed', touched.completed, () => 1);
    expectEach('si_code', touched.codes, () => SIGBUS_CODES.BUS_ADRERR);
    expectEach('si_addr', touched.faultAddresses, (i) => dst.address + i * pageSize);
    expect({ copies, unprotects }).toEqual({ copies: half, unprotects: wp ? half : 0 });

    // faulting_process(2) in a child forked with EVENT_FORK, after release.
    dst.madvise(releaseAdvice(areas));
    const events = uffd.events();
    child = forkChild([{ op: 'readSigbus', address: dst.address, length: half * pageSize, stride: pageSize }]);
    // The monitor switches to the child's uffd on EVENT_FORK (the fork
    // event is the first event: the parent's touch raised none).
    const first = await events.next();
    expect(first.done).toBe(false);
    expect(first.value?.type).toBe('fork');
    if (first.value?.type !== 'fork') return;
    const cu = first.value.uffd;
    childUffd = cu;
    uffd.close();
    expect([...cu.enabledFeatures]).toEqual(expect.arrayContaining(['SIGBUS', 'EVENT_FORK']));

    // A fault event would block the child until resolved: count it and
    // resolve it, so a broken SIGBUS feature fails the case instead of hanging it.
    let childFaults = 0;
    const result = await monitorUntil(cu.events(), child.exited, (e) => {
      if (e.type !== 'pagefault') return;
      childFaults++;
      const page = e.address - ((e.address - dst.address) % pageSize);
      if (e.wp) cu.writeProtect(page, pageSize, false);
      else cu.copyFromAddress(page, src.address + (page - dst.address), pageSize);
    });
    expect(result).toMatchObject({ exitCode: 0, signal: null });
    expect(result.failedStep).toBeUndefined();
    expect(childFaults).toBe(0);
    const reads = result.sigbusReads ?? [];
    expect(reads).toHaveLength(1);
    expect(reads[0].signals).toHaveLength(half);
    expectEach('child signals per page', reads[0].signals, () => 1);
    expectEach('child si_code', reads[0].codes, () => SIGBUS_CODES.BUS_ADRERR);
    expectEach('child si_addr', reads[0].faultAddresses, (i) => dst.address + i * pageSize);
  } finally {
    child?.kill('SIGKILL');
    childUffd?.close();
    uffd.close();
    areas.dispose();
  }
}
