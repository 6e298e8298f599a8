/**
 * Upstream's validation of a defaulted KubeProxyConfiguration
 * (pkg/proxy/apis/config/validation), reported with the v1alpha1 field paths.
 */
import { parseCIDR, parseIP } from '../util/addr.js';
import type { ConfigProblem, KubeProxyConfig } from './config-types.js';
import { bindAddressProblem, formatGoDuration, parseClusterCIDRs } from './config-values.js';


const PROXY_MODES = ['', 'iptables', 'ipvs', 'nftables'];
const LOCAL_MODES = ['', 'ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'];

/**
 * Upstream's validation of a defaulted configuration, with v1alpha1 field
 * paths. Returns the problems (empty when valid). An empty healthz or metrics
 * bind address means "disabled" (only the command line can say so: in a file,
 * defaulting turns "" into the default address).
 */
export function validateKubeProxyConfig(c: KubeProxyConfig): ConfigProblem[] {
  const p: ConfigProblem[] = [];
  const add = (field: string, message: string): void => void p.push({ field, message });

  if (!PROXY_MODES.includes(c.mode)) {
    const hint = (c.mode as string) === 'kernelspace' ? ' (kernelspace is the Windows mode)' : '';
    add('mode', `must be iptables, ipvs, nftables or blank (blank means iptables), got ${JSON.stringify(c.mode)}${hint}`);
  } else if (c.mode === 'ipvs') {
    add('mode', `${JSON.stringify(c.mode)} is an upstream proxy mode that kube-proxy-ts has not implemented yet (iptables and nftables are)`);
  }

  const bit = c.iptables.masqueradeBit;
  if (bit !== null && (bit < 0 || bit > 31)) add('iptables.masqueradeBit', `must be 0-31, got ${bit}`);
  const nbit = c.nftables.masqueradeBit;
  if (nbit !== null && (nbit < 0 || nbit > 31)) add('nftables.masqueradeBit', `must be 0-31, got ${nbit}`);
  // As upstream's v1alpha1 conversion: the periods of the section of the mode in use.
  const sec = c.mode === 'nftables' ? 'nftables' : 'iptables';
  const periods = c[sec];
  if (periods.syncPeriod <= 0) add(`${sec}.syncPeriod`, `must be greater than 0, got ${formatGoDuration(periods.syncPeriod)}`);
  if (periods.minSyncPeriod < 0) add(`${sec}.minSyncPeriod`, `must be 0 or more, got ${formatGoDuration(periods.minSyncPeriod)}`);
  else if (periods.syncPeriod > 0 && periods.minSyncPeriod > periods.syncPeriod) {
    add(`${sec}.syncPeriod`, `must be at least the minimum sync period (${formatGoDuration(periods.minSyncPeriod)}), got ${formatGoDuration(periods.syncPeriod)}`);
  }
  if (c.configSyncPeriod <= 0) add('configSyncPeriod', `must be greater than 0, got ${formatGoDuration(c.configSyncPeriod)}`);

  if (!parseIP(c.bindAddress)) add('bindAddress', `must be an IP address, got ${JSON.stringify(c.bindAddress)}`);
  if (c.healthzBindAddress !== '') {
    const problem = bindAddressProblem(c.healthzBindAddress);
    if (problem) add('healthzBindAddress', problem);
  }
  if (c.metricsBindAddress !== '') {
    const problem = bindAddressProblem(c.metricsBindAddress);
    if (problem) add('metricsBindAddress', problem);
  }
  if (c.hostnameOverride !== '' && c.hostnameOverride.trim() === '') add('hostnameOverride', 'must not be blank');

  if (c.clientConnection.burst < 0) add('clientConnection.burst', `must be 0 or more, got ${c.clientConnection.burst}`);
  if (c.oomScoreAdj !== null && (c.oomScoreAdj < -1000 || c.oomScoreAdj > 1000)) add('oomScoreAdj', `must be -1000 to 1000, got ${c.oomScoreAdj}`);

  const ct = c.conntrack;
  if (ct.maxPerCore !== null && ct.maxPerCore < 0) add('conntrack.maxPerCore', `must be 0 or more, got ${ct.maxPerCore}`);
  if (ct.min !== null && ct.min < 0) add('conntrack.min', `must be 0 or more, got ${ct.min}`);
  for (const k of ['tcpEstablishedTimeout', 'tcpCloseWaitTimeout', 'udpTimeout', 'udpStreamTimeout'] as const) {
    const d = ct[k];
    if (d !== null && d < 0) add(`conntrack.${k}`, `must be 0 or more, got ${formatGoDuration(d)}`);
  }

  if (c.clusterCIDR !== '') {
    const r = parseClusterCIDRs(c.clusterCIDR);
    if ('problem' in r) add('clusterCIDR', r.problem);
  }

  const npa = c.nodePortAddresses ?? [];
  npa.forEach((entry, i) => {
    if (entry === 'primary') {
      if (npa.length !== 1) add(`nodePortAddresses[${i}]`, `"primary" cannot be combined with CIDRs`);
    } else if (!parseCIDR(entry)) {
      add(`nodePortAddresses[${i}]`, `must be a CIDR (e.g. 192.168.0.0/24) or "primary", got ${JSON.stringify(entry)}`);
    }
  });

  if (!LOCAL_MODES.includes(c.detectLocalMode)) {
    add('detectLocalMode', `must be ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix or blank, got ${JSON.stringify(c.detectLocalMode)}`);
  } else if (c.detectLocalMode === 'BridgeInterface' && c.detectLocal.bridgeInterface === '') {
    add('detectLocal.bridgeInterface', 'must be set when detectLocalMode is BridgeInterface');
  } else if (c.detectLocalMode === 'InterfaceNamePrefix' && c.detectLocal.interfaceNamePrefix === '') {
    add('detectLocal.interfaceNamePrefix', 'must be set when detectLocalMode is InterfaceNamePrefix');
  }

  if (c.portRange !== '' && !/^(\d+(-\d+|\+\d+)?)$/.test(c.portRange)) add('portRange', `must be a port range (e.g. 300-2000), got ${JSON.stringify(c.portRange)}`);
  if (c.showHiddenMetricsForVersion !== '' && !/^\d+\.\d+$/.test(c.showHiddenMetricsForVersion)) {
    add('showHiddenMetricsForVersion', `must be a version major.minor (e.g. 1.33), got ${JSON.stringify(c.showHiddenMetricsForVersion)}`);
  }
  if (c.logging.format !== 'text' && c.logging.format !== 'json') add('logging.format', `must be text or json, got ${JSON.stringify(c.logging.format)}`);
  c.logging.vmodule.forEach((item, i) => {
    if (item.filePattern === '' || /[,=]/.test(item.filePattern)) add(`logging.vmodule[${i}].filePattern`, `must be a non-empty file pattern without "," or "=", got ${JSON.stringify(item.filePattern)}`);
  });
  return p;
}
