/**
 * Whether a process with this pid exists (signal 0 checks without sending anything; EPERM means it
 * exists under another user). Internal to the package. A pid means nothing across hosts or PID
 * namespaces: callers use it only for files this host's processes make.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
