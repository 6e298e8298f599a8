/** The apiserver-agent e2e suite (test/e2e/suites/apiserver-agent.ts) in iptables mode. */
import { run } from './suites/apiserver-agent.js';

await run('iptables');
