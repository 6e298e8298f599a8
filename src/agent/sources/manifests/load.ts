/**
 * Loads a directory of manifests (*.yaml, *.yml, *.json; multi-document YAML;
 * v1 List) into validated objects. A file that fails to parse, or an object
 * that fails validation, is reported with the file, the object and the
 * reason, and skipped; everything else loads.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describeObject, validateEndpointSlice, validateNode, validateService } from '../validate.js';
import type { EndpointSlice, NodeInfo, Service } from '../../model/types.js';

export interface ManifestProblem {
  file: string;
  object?: string;
  reason: string;
}

export interface ManifestSet {
  services: Service[];
  slices: EndpointSlice[];
  nodes: NodeInfo[];
  problems: ManifestProblem[];
  /** The file each loaded object came from. */
  fileOf: WeakMap<object, string>;
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

export async function listManifestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && EXTENSIONS.test(e.name) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** Parses one file's text into raw objects; YAML (multi-document) or JSON. */
export function parseManifestText(text: string): { objects: unknown[]; errors: string[] } {
  const objects: unknown[] = [];
  const errors: string[] = [];
  // JSON is YAML, so one parser serves both; errors carry line numbers.
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      errors.push(doc.errors.map((e) => e.message.split('\n')[0]).join('; '));
      continue;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value);
  }
  return { objects, errors };
}

function expandLists(objects: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const o of objects) {
    if (typeof o === 'object' && o !== null && (o as { kind?: unknown }).kind === 'List') {
      const items = (o as { items?: unknown }).items;
      if (Array.isArray(items)) out.push(...expandLists(items));
    } else out.push(o);
  }
  return out;
}

export function classify(set: ManifestSet, file: string, objects: unknown[]): void {
  for (const o of expandLists(objects)) {
    const rec = (typeof o === 'object' && o !== null ? o : {}) as { apiVersion?: unknown; kind?: unknown };
    const what = describeObject(o);
    const kind = `${String(rec.apiVersion)}/${String(rec.kind)}`;
    if (kind === 'v1/Service') {
      const r = validateService(o);
      if (r.ok) {
        set.fileOf.set(r.value, file);
        set.services.push(r.value);
      }
      else set.problems.push({ file, object: what, reason: r.reason });
    } else if (kind === 'discovery.k8s.io/v1/EndpointSlice') {
      const r = validateEndpointSlice(o);
      if (r.ok) {
        set.fileOf.set(r.value, file);
        set.slices.push(r.value);
      }
      else set.problems.push({ file, object: what, reason: r.reason });
    } else if (kind === 'v1/Node') {
      const r = validateNode(o);
      if (r.ok) {
        set.fileOf.set(r.value, file);
        set.nodes.push(r.value);
      }
      else set.problems.push({ file, object: what, reason: r.reason });
    } else {
      set.problems.push({ file, object: what, reason: `unsupported kind ${kind} (want v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Node or v1 List)` });
    }
  }
}

export async function loadManifests(dir: string): Promise<ManifestSet> {
  const set: ManifestSet = { services: [], slices: [], nodes: [], problems: [], fileOf: new WeakMap() };
  for (const name of await listManifestFiles(dir)) {
    const file = join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // A file removed between listing and reading is simply gone.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') set.problems.push({ file, reason: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const { objects, errors } = parseManifestText(text);
    for (const e of errors) set.problems.push({ file, reason: `cannot parse: ${e}` });
    classify(set, file, objects);
  }
  dropDuplicatesAndOrphans(set);
  return set;
}

function dropDuplicatesAndOrphans(set: ManifestSet): void {
  const seenSvc = new Set<string>();
  set.services = set.services.filter((s) => {
    const k = `${s.namespace}/${s.name}`;
    if (seenSvc.has(k)) {
      set.problems.push({ file: set.fileOf.get(s) ?? '', object: `Service ${k}`, reason: 'defined more than once; the first definition is used' });
      return false;
    }
    seenSvc.add(k);
    return true;
  });
  const seenSlice = new Set<string>();
  set.slices = set.slices.filter((s) => {
    const k = `${s.namespace}/${s.name}`;
    if (seenSlice.has(k)) {
      set.problems.push({ file: set.fileOf.get(s) ?? '', object: `EndpointSlice ${k}`, reason: 'defined more than once; the first definition is used' });
      return false;
    }
    seenSlice.add(k);
    if (!seenSvc.has(`${s.namespace}/${s.serviceName}`)) {
      set.problems.push({ file: set.fileOf.get(s) ?? '', object: `EndpointSlice ${k}`, reason: `its service ${s.namespace}/${s.serviceName} does not exist; skipped` });
      return false;
    }
    return true;
  });
}
