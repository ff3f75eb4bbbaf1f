/**
 * The fleet's work queue on PostgreSQL (pg-boss): one queue per host, the jobs that travel in it, and sending one
 * to a host's agent and waiting for its answer. The agent's side (taking and running them) is src/host-agent/.
 */
export { HOST_JOB, parseHostJob, answerError, type HostJob, type HostJobOp, type JobAnswer } from './host-job.js';
export { HOST_QUEUE_POLICY, JOB_SCHEMA, JobQueue, hostQueue, type HostJobView, type JobQueueOptions } from './job-queue.js';
export { requireAgentHost, runOnHost } from './run-on-host.js';
