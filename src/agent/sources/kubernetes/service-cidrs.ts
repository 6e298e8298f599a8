/** Overlap between the pods' clusterCIDR and the service ranges (ServiceCIDR objects). Pure. */
import ipaddr from 'ipaddr.js';
import { parseCIDR } from '../../util/addr.js';
import type { ServiceCIDRInfo } from './source.js';

function overlaps(a: string, b: string): boolean {
  const pa = parseCIDR(a);
  const pb = parseCIDR(b);
  if (!pa || !pb || pa.family !== pb.family) return false;
  const [na] = ipaddr.parseCIDR(pa.cidr);
  const [nb] = ipaddr.parseCIDR(pb.cidr);
  // Two prefixes overlap exactly when the shorter one contains the other's network address.
  const shorter = Math.min(pa.prefix, pb.prefix);
  return na.match(nb, shorter);
}

export function overlappingServiceCIDRs(clusterCIDR: string, serviceCIDRs: ServiceCIDRInfo[]): { name: string; cidr: string }[] {
  const pods = clusterCIDR.split(',').map((c) => c.trim()).filter((c) => c !== '');
  const out: { name: string; cidr: string }[] = [];
  for (const sc of serviceCIDRs) for (const cidr of sc.cidrs) if (pods.some((p) => overlaps(p, cidr))) out.push({ name: sc.name, cidr });
  return out;
}
