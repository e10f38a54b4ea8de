# Source this (`source scripts/node-env.sh`) to put the pinned Node LTS first on PATH in this shell,
# installing it from the npm registry when the machine's node is another major (scripts/install-node.sh).
# npm, npx and everything they start (tests, demo, agents) then run on it.
tidemark_node_bin=$(bash "$(dirname "${BASH_SOURCE[0]}")/install-node.sh") || return 1
case ":$PATH:" in
  *":$tidemark_node_bin:"*) ;;
  *) export PATH="$tidemark_node_bin:$PATH" ;;
esac
unset tidemark_node_bin
