import t from 'tap';
import { nodePortAddressesProblem, resolveNodePortAddresses } from '../../src/agent/model/node-port-addresses.js';

const LOCAL = ['127.0.0.1', '203.0.113.1', '192.0.2.1', '10.0.5.7', '::1', '2001:db8::1', 'fe80::1'];

t.test('no list, or no CIDR of this family: every local address', async (t) => {
  t.equal(resolveNodePortAddresses([], 'IPv4', LOCAL), undefined);
  t.equal(resolveNodePortAddresses(['2001:db8::/64'], 'IPv4', LOCAL), undefined, 'IPv6 CIDRs only: IPv4 matches all');
  t.equal(resolveNodePortAddresses(['0.0.0.0/0'], 'IPv4', LOCAL), undefined);
  t.equal(resolveNodePortAddresses(['192.0.2.0/24', '::/0'], 'IPv6', LOCAL), undefined);
});

t.test('CIDRs: the local addresses of the family inside them, in interface order', async (t) => {
  t.same(resolveNodePortAddresses(['203.0.113.0/24', '10.0.0.0/8'], 'IPv4', LOCAL), ['203.0.113.1', '10.0.5.7']);
  t.same(resolveNodePortAddresses(['127.0.0.0/8', '192.0.2.1/32'], 'IPv4', LOCAL), ['127.0.0.1', '192.0.2.1']);
  t.same(resolveNodePortAddresses(['203.0.113.0/24', '2001:db8::/32'], 'IPv6', LOCAL), ['2001:db8::1']);
  t.same(resolveNodePortAddresses(['198.51.100.0/24'], 'IPv4', LOCAL), [], 'a CIDR with no local address: none at all');
  t.same(resolveNodePortAddresses(['2001:db8::/32'], 'IPv6', ['2001:0db8:0::1', '2001:db8::1']), ['2001:db8::1'], 'normalised and de-duplicated');
});

t.test('"primary": the node\'s primary IP of the family', async (t) => {
  const primary = { IPv4: '203.0.113.1', IPv6: '2001:db8::1' };
  t.same(resolveNodePortAddresses(['primary'], 'IPv4', LOCAL, primary), ['203.0.113.1']);
  t.same(resolveNodePortAddresses(['primary'], 'IPv6', LOCAL, primary), ['2001:db8::1']);
  t.equal(resolveNodePortAddresses(['primary'], 'IPv6', LOCAL, { IPv4: '203.0.113.1' }), undefined, 'no IPv6 primary: every IPv6 address, as upstream');
  t.equal(resolveNodePortAddresses(['primary'], 'IPv4', LOCAL, { IPv4: '127.0.0.1' }), undefined, 'a loopback primary is not used');
});

t.test('bad specs are refused with a reason', async (t) => {
  t.equal(nodePortAddressesProblem(['10.0.0.0/8', 'primary']), '"primary" must be the only value');
  t.match(nodePortAddressesProblem(['10.0.0.1']), /"10\.0\.0\.1" is not a CIDR/);
  t.match(nodePortAddressesProblem(['10.0.0.0/33']), /not a CIDR/);
  t.equal(nodePortAddressesProblem(['10.0.0.0/8', 'fd00::/8']), undefined);
  t.throws(() => resolveNodePortAddresses(['nope'], 'IPv4', LOCAL), /nodePortAddresses: "nope" is not a CIDR/);
});
