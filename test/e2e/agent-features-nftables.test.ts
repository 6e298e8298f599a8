/** The agent-features e2e suite (test/e2e/suites/agent-features.ts) in nftables mode. */
import { run } from './suites/agent-features.js';

await run('nftables');
