import { waitForExit } from '../host/index.js';
import { freezeToFile, terminateProcess, type FreezeResult, type LaunchedProcess } from '../qemu/index.js';

/**
 * The cut: freezes the parent into its device-state file (src/qemu/freeze-resume.ts: stop, x-ignore-shared,
 * migrate, quit) and makes sure its QEMU is gone before the files are sealed — nothing may write the RAM file once
 * children can map it.
 */
export async function cutTemplate(qmpPath: string, statePath: string, proc: LaunchedProcess): Promise<FreezeResult> {
  const result = await freezeToFile(qmpPath, statePath);
  if (!(await waitForExit(proc.pid, proc.startTime, 10_000))) await terminateProcess(proc.pid, proc.startTime, { graceMs: 2_000 });
  return result;
}
