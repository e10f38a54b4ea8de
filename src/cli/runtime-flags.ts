/**
 * The V8 flags every Tidemark process runs with: the image's ENTRYPOINT and `bin/` pass them (a unit test holds
 * the Dockerfile and `bin/` to this list), and so do the benchmarks and the test harness's agent. V8 sizes a
 * heap once, when the isolate is made, so they cannot be set from inside the process.
 *
 * `--max-semi-space-size=8`: the young generation's two semi-spaces stop growing at 8 MiB each instead of V8's
 * default for a machine of this size (32 MiB each), which a backup's allocation rate reaches: ~50 MiB less peak
 * RSS at the same speed (docs/decisions.md, "Backing up many files").
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** `node` with the runtime flags, as a command line reads (the image's, the `bin/` shebangs', the benchmarks' text). */
export const NODE_COMMAND = ['node', ...NODE_RUNTIME_FLAGS].join(' ');

/**
 * NODE_OPTIONS of the operator's container (deploy/deployment.yaml and the chart; a unit test holds them to
 * it): its heap holds the cached Backup history, and Node's default heap is about half the container's memory
 * limit. 70% leaves the rest to Node itself (~200 MiB resident besides the heap; with 75% the operator peaked
 * at 971 MiB under 1Gi). At 200,000 Backups the live heap is ~500 MB: under 1Gi the default heap (536 MiB)
 * ran out, this one (740 MiB) holds it
 * (docs/decisions.md, "The operator with history"). Not for the agent, whose memory is mostly buffers
 * outside the heap.
 */
export const OPERATOR_NODE_OPTIONS = '--max-old-space-size-percentage=70';
