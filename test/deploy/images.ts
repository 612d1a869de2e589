// Where a container image reference is pulled from, as Docker, containerd and CRI-O resolve
// it: a first path component with a dot or a port, or `localhost`, is a registry host; any
// other reference (`fhirguard/agent`, `node:22`) is a Docker Hub name.

/** The registry host an image reference resolves to. */
export function registryHost(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = ref.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** The repository path, without host, tag or digest (`library/` spelt out on Docker Hub). */
export function repository(ref: string): string {
  const host = registryHost(ref);
  const rest = ref.startsWith(`${host}/`) ? ref.slice(host.length + 1) : ref;
  const path = rest.split('@')[0].replace(/:[^/]*$/, '');
  return host === 'docker.io' && !path.includes('/') ? `library/${path}` : path;
}

/**
 * Registries where anyone can publish under a name nobody here controls: a reference that
 * resolves to one of them pulls whatever its namespace's owner pushed.
 */
const PUBLIC_HOSTS = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
  'ghcr.io',
  'docker.pkg.github.com',
  'quay.io',
  'gcr.io',
  'registry.k8s.io',
  'k8s.gcr.io',
  'public.ecr.aws',
  'mcr.microsoft.com',
  'registry.gitlab.com',
  'nvcr.io',
  'cgr.dev',
  'lscr.io',
  'docker.elastic.co',
  'registry.redhat.io',
  'registry.access.redhat.com',
  'container-registry.oracle.com',
]);
const PUBLIC_SUFFIXES = ['.gcr.io', '.pkg.dev', '.azurecr.io', '.amazonaws.com', '.ocir.io'];

export function isPublicRegistry(host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, '');
  return PUBLIC_HOSTS.has(h) || PUBLIC_SUFFIXES.some((s) => h.endsWith(s));
}

/** Every string under an `image` key in a parsed YAML document (pod specs, compose services). */
export function imageFields(doc: unknown, out: string[] = []): string[] {
  if (Array.isArray(doc)) for (const v of doc) imageFields(v, out);
  else if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'image' && typeof v === 'string') out.push(v);
      else imageFields(v, out);
    }
  }
  return out;
}
