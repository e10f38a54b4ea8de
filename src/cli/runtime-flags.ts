/**
 * The V8 flags every Tidemark process runs with: the image's ENTRYPOINT and `bin/` pass them (a unit test holds
 * the Dockerfile and `bin/` to this list), and so do the benchmarks and the test harness's agent. V8 sizes a
 * heap once, when the isolate is made, so they cannot be set from inside the process.
 *
 * `--max-semi-space-size=8`: the young generation's two semi-spaces stop growing at 8 MiB each instead of V8's
 * default for a machine of this size (32 MiB each). A backup allocates fast, so the young generation grows to
 * its limit: measured on the 200,000-file first backup, 334 → 280 MiB peak RSS at the same wall time; 4 MiB
 * cost ~30% more time in scavenges (docs/decisions.md, "Memory bound of a backup").
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
