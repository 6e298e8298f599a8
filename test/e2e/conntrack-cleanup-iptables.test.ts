/** The conntrack-cleanup e2e suite (test/e2e/suites/conntrack-cleanup.ts) with iptables DNAT rules. */
import { run } from './suites/conntrack-cleanup.js';

await run('iptables');
