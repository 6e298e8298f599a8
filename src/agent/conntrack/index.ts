/** Stale UDP conntrack cleanup: a pure planner and a best-effort executor. */
export { conntrackArgs, planConntrackCleanup } from './plan.js';
export type { ConntrackDeletion, ConntrackDeletionReason, ConntrackProtocol, PlanOptions } from './plan.js';
export { execaConntrack, NO_CONNECTION_TO_DELETE, runConntrackCleanup } from './run.js';
export type { ConntrackExec, ConntrackExecResult, ConntrackRunOptions, ConntrackRunResult } from './run.js';
