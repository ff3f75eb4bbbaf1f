import { VmforkError, isVmforkError } from '../errors.js';
import { GuestAgentClient, QmpClient, type ExecResult } from '../qemu/index.js';
import { waitUntil } from '../util/index.js';

/**
 * A running internal clone as phase 1 drives it: the guest agent for commands, and QMP held open for the whole
 * phase so that every RESET and SHUTDOWN the guest does — asked for or on its own — is seen. QEMU runs with
 * `-no-shutdown`, so a guest that powers itself off stays a paused QEMU that `boot()` starts again.
 */
export class CloneSession {
  /** Boots seen since the session began (each RESET, and each restart after a SHUTDOWN). */
  reboots = 0;
  private resets = 0;
  private shutdowns = 0;
  private constructor(
    private readonly qmp: QmpClient,
    private agent: GuestAgentClient,
    private readonly agentPath: string,
    private readonly agentTimeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    qmp.on('RESET', () => void (this.resets += 1));
    qmp.on('SHUTDOWN', () => void (this.shutdowns += 1));
    // a cancel ends the command in flight (its agent connection closes) and every wait of the session (reboot, agent)
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => this.agent.close();

  /** `signal`: a cancelled task; the session's command or wait in progress ends at once with an error. */
  static async open(qmpPath: string, agentPath: string, agentTimeoutMs: number, signal?: AbortSignal): Promise<CloneSession> {
    const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
    try {
      const agent = await GuestAgentClient.waitReady(agentPath, { timeoutMs: agentTimeoutMs, signal });
      return new CloneSession(qmp, agent, agentPath, agentTimeoutMs, signal);
    } catch (err) {
      qmp.close();
      throw err;
    }
  }

  /** A marker to ask later whether the guest reset or powered off since. */
  mark(): { resets: number; shutdowns: number } {
    return { resets: this.resets, shutdowns: this.shutdowns };
  }

  bootedSince(m: { resets: number; shutdowns: number }): boolean {
    return this.resets !== m.resets || this.shutdowns !== m.shutdowns;
  }

  /** Runs a program in the guest; stdin (if any) goes through the agent, never onto a command line. */
  exec(path: string, args: readonly string[], options: { timeoutMs: number; input?: string }): Promise<ExecResult> {
    return this.agent.exec(path, args, options);
  }

  sh(script: string, options: { timeoutMs: number; input?: string }): Promise<ExecResult> {
    return this.agent.exec('/bin/sh', ['-c', script], options);
  }

  /** Reboots the guest (asked through the agent) and waits until its agent answers again. */
  async reboot(): Promise<void> {
    const m = this.mark();
    await this.agent.shutdown('reboot');
    await this.waitForBoot(m);
  }

  /**
   * Waits until the guest has booted again after a reset or power-off it did itself (or was asked to do): a
   * powered-off guest (SHUTDOWN under -no-shutdown) is reset and continued. Counts the boot.
   */
  async waitForBoot(since: { resets: number; shutdowns: number }, timeoutMs = this.agentTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.waitFor(() => this.bootedSince(since), timeoutMs, 'reboot');
    if (this.shutdowns !== since.shutdowns) {
      // -no-shutdown keeps QEMU paused after the guest powered off: start it again from the kernel
      await this.qmp.execute('system_reset');
      await this.qmp.cont();
    }
    this.agent.close();
    this.agent = await GuestAgentClient.waitReady(this.agentPath, { timeoutMs: Math.max(1_000, deadline - Date.now()), signal: this.signal });
    this.reboots += 1;
  }

  /** Powers the guest off cleanly (agent, then the guest's own shutdown) and makes QEMU quit once it has. */
  async powerOff(timeoutMs = 120_000): Promise<void> {
    const m = this.mark();
    await this.agent.shutdown('powerdown');
    this.agent.close();
    await this.waitFor(() => this.shutdowns !== m.shutdowns, timeoutMs, 'power off');
    await this.qmp.quit();
  }

  /** Waits for a QMP event the session counts; past the deadline, VMFORK_AGENT_TIMEOUT saying what did not happen. */
  private async waitFor(happened: () => boolean, timeoutMs: number, what: string): Promise<void> {
    await waitUntil(happened, { deadlineMs: timeoutMs, everyMs: 100, what: `the guest to ${what}`, signal: this.signal }).catch((err: unknown) => {
      if (!(isVmforkError(err) && err.code === 'VMFORK_TIMEOUT')) throw err;
      throw new VmforkError('VMFORK_AGENT_TIMEOUT', `the guest did not ${what} within ${timeoutMs} ms`);
    });
  }

  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.agent.close();
    this.qmp.close();
  }
}
