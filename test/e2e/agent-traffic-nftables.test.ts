/** The agent-traffic e2e suite (test/e2e/suites/agent-traffic.ts) in nftables mode. */
import { run } from './suites/agent-traffic.js';

await run('nftables');
