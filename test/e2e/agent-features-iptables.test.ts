/** The agent-features e2e suite (test/e2e/suites/agent-features.ts) in iptables mode. */
import { run } from './suites/agent-features.js';

await run('iptables');
