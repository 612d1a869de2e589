# fhirguard images, one Dockerfile:
#
#   builder  compiles everything: npm dependencies (better-sqlite3 is native), the
#            TypeScript, the eBPF programs and their loader (clang, libbpf, bpftool).
#   worker   the reference FHIR worker alone (docker build --target worker): non-root.
#   agent    the privileged agent (docker build --target agent): runc and the eBPF loader.
#   bridge   socat, serving a Kubernetes worker pod's TCP port from the worker's Unix socket.
#   proxy    the FHIR front door, the default target (docker build .): non-root.
#
# The builder and the runtime stages use the same Node major so the native SQLite binding
# built here loads there: Node 26, the active LTS line (docs/deploy.md lists the Node
# versions fhirguard supports and which ones the tests run on). Base images are named with
# their registry, Docker Hub's official node and debian images.
# test/deploy/dockerfile.test.ts runs the builder's steps in a clean clone and checks every
# COPY source, since these machines have no Docker engine.
ARG NODE_VERSION=26

FROM docker.io/library/node:${NODE_VERSION}-bookworm AS builder
# python3, make, g++: better-sqlite3 builds from source when no prebuilt binary fits.
# clang, llvm, libbpf-dev, bpftool, libelf-dev, zlib1g-dev, pkg-config: bpf/Makefile (CO-RE
# object, skeleton, loader). The kernel's BTF (/sys/kernel/btf/vmlinux, visible in the
# build container) gives vmlinux.h; the object then relocates on any BTF kernel.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json
# The R4 model the validator reads at start is made from the compiled generator.
RUN node dist/src/fhir/validate/model/generate.js
COPY bpf ./bpf
RUN make -C bpf
# The runtime stages get production dependencies only.
RUN npm prune --omit=dev --no-audit --no-fund

# What every runtime stage holds: the compiled CLI, its dependencies, the shipped policy and
# profiles, and the R4 model the validator reads at start (dist/model, made by the build).
FROM docker.io/library/node:${NODE_VERSION}-bookworm-slim AS app
ENV NODE_ENV=production
WORKDIR /opt/fhirguard
COPY --from=builder /build/package.json ./package.json
COPY --from=builder /build/node_modules ./node_modules
COPY --from=builder /build/dist ./dist
COPY bin ./bin
COPY profiles ./profiles
# The unprivileged identity of the proxy and worker images (no login, no home of use).
RUN groupadd --system --gid 10001 fhirguard \
 && useradd --system --uid 10001 --gid fhirguard --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fhirguard
ENTRYPOINT ["/opt/fhirguard/bin/fhirguard"]

# The reference worker alone, for orchestrators that run workers themselves (Kubernetes:
# deploy/kubernetes/worker-*.yaml, under the tier's seccomp profile). Writes only to the
# database directory (read tiers mount it read-only) and serves on a Unix socket, the only
# socket family the tier profiles allow (the bridge target serves it over TCP).
FROM app AS worker
RUN mkdir -p /var/lib/fhirguard/data /run/fhirguard \
 && chown fhirguard:fhirguard /var/lib/fhirguard/data /run/fhirguard
VOLUME ["/var/lib/fhirguard/data", "/run/fhirguard"]
USER 10001:10001
CMD ["worker", "--tier", "write", "--db", "/var/lib/fhirguard/data/fhirguard.db", "--listen", "unix:/run/fhirguard/worker.sock"]

# The agent: the only privileged process. It starts each worker as a runc container with the
# tier's seccomp profile, puts the tier's eBPF policy on the worker's cgroup, and restarts
# workers. It runs as root and needs, and only needs:
#   CAP_SYS_ADMIN   runc: namespaces (unshare, setns), mounts, pivot_root, cgroup setup;
#                   the bpf() commands that pin maps and links in bpffs
#   CAP_BPF         load the eBPF programs and maps (Linux >= 5.8)
#   CAP_PERFMON     attach raw_tracepoint/sys_enter and use bpf_send_signal (tracing programs)
#   CAP_NET_ADMIN   attach cgroup/connect4 and connect6; bring up lo in a worker's netns
#   CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL,
#   CAP_MKNOD, CAP_SYS_CHROOT
#                   runc: switch to the worker identity, drop the bounding set, own the
#                   bundle and database directories, signal workers, create /dev nodes
#   mounts          /sys/fs/cgroup read-write (the host's: cgroup namespace "host"), /sys/fs/bpf
#                   (bpffs, shared with the host so pinned maps survive agent restarts),
#                   /sys/kernel/btf read-only (CO-RE relocation)
#   seccomp and AppArmor unconfined: the default Docker profile refuses keyctl (runc joins a
#                   session keyring) and mount; the agent applies its own filters to workers
#   RLIMIT_MEMLOCK unlimited (ulimit, no capability): kernels before 5.11 charge BPF maps
#                   to it
# deploy/compose.yaml grants exactly this. deploy/kubernetes/agent.yaml runs the agent in node
# mode (--adopt-pods: no runc, no workers of its own) and grants only the eBPF part: CAP_BPF,
# CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN, bpffs, the cgroup tree and BTF, under the
# runtime's default seccomp profile.
FROM app AS agent
RUN apt-get update \
 && apt-get install -y --no-install-recommends runc libbpf1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /build/bpf/.output/fhirguard-bpf ./bpf/.output/fhirguard-bpf
ENV FHIRGUARD_BPF_LOADER=/opt/fhirguard/bpf/.output/fhirguard-bpf
USER root
CMD ["agent"]

# A TCP-to-Unix-socket bridge for Kubernetes worker pods (deploy/kubernetes/worker-*.yaml):
# a tier's seccomp profile lets its worker create Unix sockets only, so the worker serves on
# a socket in a volume shared with this container, which serves the pod's TCP port. It runs
# under the runtime's default profile, non-root, and holds nothing but socat.
FROM docker.io/library/debian:bookworm-slim AS bridge
RUN apt-get update \
 && apt-get install -y --no-install-recommends socat \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fhirguard \
 && useradd --system --uid 10001 --gid fhirguard --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fhirguard
USER 10001:10001
ENTRYPOINT ["socat"]
CMD ["TCP-LISTEN:8080,fork,reuseaddr", "UNIX-CONNECT:/run/fhirguard/worker.sock"]

# The proxy: the FHIR listener and the admin listener (/metrics, /healthz, /readyz) on all
# interfaces of its container; never root.
FROM app AS proxy
USER 10001:10001
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["proxy", "--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9464"]
