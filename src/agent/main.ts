#!/usr/bin/env node
/** The kube-proxy-ts command. The subcommands load only what they use (the agent pulls in the Kubernetes client). */

async function main(): Promise<number> {
  if (process.argv[2] === 'trace') {
    const { runTraceCommand } = await import('./trace-command.js');
    return runTraceCommand(process.argv.slice(3));
  }
  // `bench`: the sync benchmark (src/bench/bench-command.ts), loaded only when asked for.
  if (process.argv[2] === 'bench') return (await import('../bench/bench-command.js')).runBenchCommand(process.argv.slice(3));
  const [{ runOneShot, startAgent, StartupError }, { createLogger }, { parseArgs }, { KubeConfigError }, { BindAddressError }] = await Promise.all([
    import('./agent.js'),
    import('./log.js'),
    import('./options.js'),
    import('./sources/kubernetes/kubeconfig.js'),
    import('./server/listen.js'),
  ]);
  /** Errors that are the user's setup, not a bug: print the message, exit 1, no stack. */
  const isExpected = (err: unknown): err is Error => err instanceof StartupError || err instanceof KubeConfigError || err instanceof BindAddressError;
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed.kind === 'exit') {
    (parsed.code === 0 ? process.stdout : process.stderr).write(parsed.output);
    return parsed.code;
  }
  const opts = parsed.options;
  const log = createLogger(opts.verbosity);
  for (const w of parsed.warnings) log.warn(w);
  const deps = { log, out: (s: string) => process.stdout.write(s) };
  if (opts.cleanup || opts.once || opts.dryRun) {
    try {
      return await runOneShot(opts, deps);
    } catch (err) {
      process.stderr.write(`kube-proxy-ts: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
  }
  let agent;
  try {
    agent = await startAgent(opts, deps);
  } catch (err) {
    if (!isExpected(err)) throw err;
    process.stderr.write(`kube-proxy-ts: ${err.message}\n`);
    return 1;
  }
  const running = agent;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(0, 'shutting down; rules stay in place', { signal });
      // Each sync is one atomic transaction in its own process, so leaving while one is
      // in flight loses nothing: give a clean stop 2 s, then exit regardless.
      const deadline = new Promise<void>((r) => setTimeout(r, 2000).unref());
      void Promise.race([running.stop(), deadline]).then(() => resolve(0), () => resolve(0));
    };
    // `on`, not `once`: while an execa child runs, signal-exit also listens and re-raises the
    // signal (killing us mid-shutdown) when it finds itself the only listener left.
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kube-proxy-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
