import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export class DirectoryLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database is in use by another tradestore process (pid ${pid}); ` +
        `stop it, or point TRADESTORE_DATA_DIR elsewhere. Lock file: ${lockPath}`,
    );
    this.name = 'DirectoryLockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock for one embedded data directory: a file created with O_EXCL that holds
 * the owner's pid. A lock left by a process that no longer runs (kill -9) is taken over.
 * Returns the function that releases it.
 */
export function acquireLock(lockPath: string): () => void {
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
      process.on('exit', release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readOwner(lockPath), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new DirectoryLockedError(lockPath, owner);
      }
      if (owner === process.pid) throw new DirectoryLockedError(lockPath, owner);
      // Stale: its owner is gone. Remove it and try again.
      try {
        unlinkSync(lockPath);
      } catch {
        /* another process removed it first */
      }
    }
  }
  throw new Error(`could not take the lock ${lockPath}`);
}

function readOwner(lockPath: string): string {
  try {
    return readFileSync(lockPath, 'utf8').trim();
  } catch {
    return '';
  }
}
