/**
 * Talking to QEMU: the argv builder (one device layout for parents and children), detached processes and their
 * re-adoption, the QMP and guest-agent clients, qemu-img, and the fork mechanism itself (freeze-resume.ts).
 */
export { GuestAgentClient, GuestAgentCommandError, type AgentCallOptions, type AgentConnectOptions, type AgentInfo, type ExecOptions, type ExecResult, type FileOptions, type WaitReadyOptions } from './guest-agent-client.js';
export { QemuCommandError, sleep } from './command-queue.js';
export { QmpClient, QmpCommandError, type CommandOptions, type QmpConnectOptions } from './qmp-client.js';
export type * from './qmp-types.js';
export { buildQemuArgv, deviceLayout, deviceLayoutHash, deviceLayoutOf, escapeOptionValue, GUEST_AGENT_PORT, layoutDifferences, VMFORK_AGENT_PORT, LAYOUT_VERSION, type DeviceLayout } from './qemu-argv.js';
export { adoptProcess, launchQemu, readPidfile, terminateProcess, type AdoptState, type LaunchedProcess, type LaunchOptions, type ProcessRecord, type TerminateResult } from './qemu-process.js';
export { assertImageUsable, check, convert, createImage, createOverlay, info, version, type CheckResult, type CheckStatus, type ImageFormat, type ImageInfo } from './qemu-img.js';
export { freezeToFile, resumeFromFile, type FreezeResult, type ResumeMarks } from './freeze-resume.js';
export { INCOMING_STATE_FD, loadState, saveState, type StateIoOptions, type StateSink } from './migration-state.js';
export { connectUnixSocket, type ProtocolLogger } from './json-line-stream.js';
export { JunkGuard, type JunkOptions } from './junk-guard.js';
export { endStaleExports, pullNbd, relayBacking, removePskDir, startNbdExport, startNbdRelay, writePskDir, type NbdExport, type NbdRelay } from './nbd.js';
export { loadForServing, receivePostcopy, sendPostcopy, splice, waitPostcopyDone, type PostcopyMarks } from './postcopy.js';
