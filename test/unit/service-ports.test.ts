/** buildServicePorts: what the model hands every backend. */
import t from 'tap';
import { buildServicePorts } from '../../src/agent/model/service-ports.js';
import { service } from '../helpers/model.js';

t.test('loadBalancerSourceRanges: trimmed, only valid CIDRs of the family, as upstream MapCIDRsByIPFamily', async (t) => {
  const svc = service({
    name: 'lb',
    type: 'LoadBalancer',
    clusterIPs: ['10.96.0.10', 'fd00:96::10'],
    loadBalancerIPs: ['198.51.100.10'],
    loadBalancerSourceRanges: [' 203.0.113.0/25 ', 'nonsense', '', '10.0.0.0/33', 'fd00::/64', '192.0.2.7/24'],
  });
  const [v4] = buildServicePorts(svc, [], 'node-1', 'IPv4');
  const [v6] = buildServicePorts(svc, [], 'node-1', 'IPv6');
  t.same(v4!.loadBalancerSourceRanges, ['203.0.113.0/25', '192.0.2.7/24'], 'blanks trimmed, garbage and bad prefixes dropped, host bits kept as written');
  t.same(v6!.loadBalancerSourceRanges, ['fd00::/64']);
});
