import { VmforkError, isVmforkError } from '../errors.js';
import type { CloneSession } from './session.js';
import { faultPoint } from '../util/index.js';

/** One of a pool's `common` scripts: a root-owned program in the image, run as root with a deadline. */
export interface CommonScript {
  path: string;
  timeoutSeconds: number;
}

/** The exit status a script uses to ask for a reboot; it runs again after the reboot and exits 0 when done. */
export const REBOOT_EXIT_CODE = 100;

/** A script asking for reboots for ever is a broken script, not a slow one. */
export const MAX_REBOOTS_PER_SCRIPT = 5;

/**
 * Runs the common scripts in order. Exit 0: next script. Exit 100: the guest is rebooted, then the same script runs
 * again. Any other exit, or the deadline: phase 1 fails with the script's stderr tail. A guest that resets or powers
 * off on its own while a script runs is followed (restarted if it powered off) and that script runs again once the
 * agent answers — scripts must therefore be idempotent, as for any installer that may be interrupted.
 */
export async function runCommonScripts(session: CloneSession, scripts: readonly CommonScript[], progress: { step(name: string, percent: number): void; event(message: string): void }): Promise<void> {
  for (const [i, script] of scripts.entries()) {
    let reruns = 0;
    for (;;) {
      progress.step(`common script ${script.path}`, 30 + Math.round((50 * i) / Math.max(1, scripts.length)));
      const mark = session.mark();
      let exitCode: number;
      let stderr = '';
      try {
        const r = await session.exec(script.path, [], { timeoutMs: script.timeoutSeconds * 1000 });
        exitCode = r.exitCode;
        stderr = r.stderr.toString();
      } catch (err) {
        // the agent vanished under the script: if the guest rebooted, follow it; otherwise this is the failure
        if (!session.bootedSince(mark)) throw scriptFailure(script, err);
        exitCode = -1;
      }
      if (session.bootedSince(mark) || exitCode === -1) {
        progress.event(`${script.path}: the guest rebooted on its own; running the script again`);
        await session.waitForBoot(mark);
      } else if (exitCode === REBOOT_EXIT_CODE) {
        progress.event(`${script.path} asked for a reboot (exit ${REBOOT_EXIT_CODE})`);
        await session.reboot();
      } else if (exitCode === 0) {
        progress.event(`${script.path} done`);
        faultPoint('phase1.script-done');
        break;
      } else {
        const tail = stderr.trim().split('\n').slice(-10).join('\n');
        throw new VmforkError('VMFORK_CUSTOMIZE_FAILED', `common script ${script.path} exited ${exitCode}${tail ? `:\n${tail}` : ''}`, {
          details: { script: script.path, exitCode, stderrTail: tail },
        });
      }
      if (++reruns > MAX_REBOOTS_PER_SCRIPT) {
        throw new VmforkError('VMFORK_CUSTOMIZE_FAILED', `common script ${script.path} asked for more than ${MAX_REBOOTS_PER_SCRIPT} reboots`, { details: { script: script.path } });
      }
    }
  }
}

function scriptFailure(script: CommonScript, err: unknown): VmforkError {
  if (isVmforkError(err) && err.code === 'VMFORK_AGENT_TIMEOUT') {
    return new VmforkError('VMFORK_CUSTOMIZE_FAILED', `common script ${script.path} did not finish within ${script.timeoutSeconds} s`, {
      cause: err,
      details: { script: script.path, timeoutSeconds: script.timeoutSeconds },
    });
  }
  return new VmforkError('VMFORK_CUSTOMIZE_FAILED', `common script ${script.path} could not run: ${isVmforkError(err) ? (err.detail ?? err.message) : String(err)}`, {
    cause: err,
    details: { script: script.path },
  });
}
