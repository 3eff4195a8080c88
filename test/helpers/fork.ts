// Children forked by forkChild() in a test file: killed by pid after each
// test, so that one left blocked in a fault nobody resolves cannot outlive
// the test that forked it.
import { readdirSync, readlinkSync } from 'node:fs';
import { afterEach } from 'vitest';
import { forkChild, type ForkedChild } from '../../lib/testing/index';

/** Registers the afterEach that kills them; returns forkChild() that records its children. */
export function useForkedChildren(): typeof forkChild {
  const children: ForkedChild[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });
  return (...args) => {
    const child = forkChild(...args);
    children.push(child);
    return child;
  };
}

/** Open userfaultfds of this process. */
export function userfaultfdCount(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[userfaultfd]';
    } catch {
      return false;
    }
  }).length;
}
