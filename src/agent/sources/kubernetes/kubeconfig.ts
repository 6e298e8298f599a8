/**
 * How the agent finds its API server, as upstream: --kubeconfig, else
 * --master alone, else the in-cluster service account. --master overrides the
 * kubeconfig's server when both are given.
 */
import { KubeConfig } from '@kubernetes/client-node';

export class KubeConfigError extends Error {}

export function loadKubeConfig(opts: { kubeconfig?: string; master?: string }): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) {
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (err) {
      throw new KubeConfigError(`--kubeconfig: cannot load ${opts.kubeconfig}: ${(err as Error).message}`);
    }
    if (!kc.getCurrentCluster()) throw new KubeConfigError(`--kubeconfig: ${opts.kubeconfig} has no current cluster`);
    if (opts.master) {
      const cluster = kc.getCurrentCluster()!;
      const clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: opts.master! } : c));
      kc.loadFromOptions({ clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
    }
    return kc;
  }
  if (opts.master) {
    let url: URL;
    try {
      url = new URL(opts.master);
    } catch {
      throw new KubeConfigError(`--master: ${JSON.stringify(opts.master)} is not a URL (e.g. https://10.0.0.1:6443)`);
    }
    kc.loadFromOptions({
      // client-node refuses plain http unless TLS verification is "skipped": there is no TLS to verify.
      clusters: [{ name: 'master', server: url.toString().replace(/\/$/, ''), skipTLSVerify: url.protocol === 'http:' }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'master', cluster: 'master', user: 'anonymous' }],
      currentContext: 'master',
    });
    return kc;
  }
  if (process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT) {
    kc.loadFromCluster();
    return kc;
  }
  throw new KubeConfigError('no API server to watch: give --kubeconfig or --master, run in a pod (in-cluster config), or use --manifests DIR');
}
