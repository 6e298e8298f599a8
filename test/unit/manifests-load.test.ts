import t from 'tap';
import { loadManifests, parseManifestText } from '../../src/agent/sources/manifests/load.js';

t.test('multi-document YAML, JSON and v1 List all load; other files are ignored', async (t) => {
  const dir = t.testdir({
    'a.yaml': `apiVersion: v1
kind: Service
metadata: { namespace: ns, name: web }
spec: { clusterIP: 10.96.0.10, ports: [{ name: http, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { namespace: ns, name: web-1, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [10.244.1.2] }]
`,
    'b.json': JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name: 'dns' }, spec: { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } },
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' } },
      ],
    }),
    'c.yml': '',
    'notes.txt': 'not a manifest',
  });
  const set = await loadManifests(dir);
  t.same(set.services.map((s) => s.name).sort(), ['dns', 'web']);
  t.same(set.slices.map((s) => s.name), ['web-1']);
  t.same(set.nodes.map((n) => n.name), ['node-1']);
  t.same(set.problems, []);
});

t.test('bad input is skipped with the file, the object and the reason; the rest loads', async (t) => {
  const dir = t.testdir({
    'broken.yaml': 'apiVersion: v1\nkind: Service\nmetadata: { name: x\n  bad: [',
    'mixed.yaml': `apiVersion: v1
kind: Service
metadata: { namespace: ns, name: bad }
spec: { clusterIP: 10.96.0.999, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { namespace: ns, name: good }
spec: { clusterIP: 10.96.0.11, ports: [{ name: http, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { namespace: ns, name: orphan-1, labels: { kubernetes.io/service-name: ghost } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [10.244.1.2] }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { namespace: ns, name: app }
`,
  });
  const set = await loadManifests(dir);
  t.same(set.services.map((s) => s.name), ['good']);
  t.same(set.slices, []);
  const byObject = new Map(set.problems.map((p) => [p.object ?? p.file, p]));
  t.match(set.problems.find((p) => p.file.endsWith('broken.yaml'))?.reason, /cannot parse/);
  t.match(byObject.get('Service ns/bad'), { file: /mixed\.yaml$/, reason: /spec\.clusterIP.*10\.96\.0\.999/ });
  t.match(byObject.get('EndpointSlice ns/orphan-1'), { file: /mixed\.yaml$/, reason: /service ns\/ghost does not exist/ });
  t.match(byObject.get('Deployment ns/app'), { reason: /unsupported kind apps\/v1\/Deployment/ });
});

t.test('duplicate keys are a parse error, not a silent override', async (t) => {
  const r = parseManifestText('a: 1\na: 2\n');
  t.equal(r.objects.length, 0);
  t.equal(r.errors.length, 1);
});
