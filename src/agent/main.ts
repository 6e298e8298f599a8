#!/usr/bin/env node
/** The kube-proxy-ts command. */
import { runOneShot, startAgent } from './agent.js';
import { createLogger } from './log.js';
import { parseArgs } from './options.js';

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed.kind === 'exit') {
    (parsed.code === 0 ? process.stdout : process.stderr).write(parsed.output);
    return parsed.code;
  }
  const opts = parsed.options;
  const log = createLogger(opts.verbosity);
  if (opts.cleanup || opts.once || opts.dryRun) {
    try {
      return await runOneShot(opts, { log, out: (s) => process.stdout.write(s) });
    } catch (err) {
      process.stderr.write(`kube-proxy-ts: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
  }
  const agent = await startAgent(opts, { log, out: (s) => process.stdout.write(s) });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string): void => {
      log.info(0, 'shutting down; rules stay in place', { signal });
      void agent.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kube-proxy-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
