// Unix socket paths: a filesystem path that fits sockaddr_un.sun_path.
export const SUN_PATH_MAX = 107; // sizeof(sun_path) - 1 for the terminating NUL

export function checkSocketPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  if (path.includes('\0')) throw new TypeError('path must not contain NUL bytes (abstract sockets are not supported)');
  const bytes = Buffer.byteLength(path);
  if (bytes > SUN_PATH_MAX) {
    throw new RangeError(`socket path is ${bytes} bytes; a Unix socket path holds at most ${SUN_PATH_MAX} (use a shorter or relative path)`);
  }
  return path;
}
