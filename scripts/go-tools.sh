# Shared by build-tools.sh and build-bench-tools.sh: builds pinned Go tools into a cache outside the
# work tree, keyed by the pins (go.mod, go.sum, the calling script and this file), and links them into
# .tools/bin. Source it after setting `label` (for messages).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/bin"
cache="${TIDEMARK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidemark-tools}"
mkdir -p "$bin" "$cache"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

stamp_of() { cat "$1/go.mod" "$1/go.sum" "$0" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16; }

build_module() { # dir, extra ldflags, then "output=package" pairs
  local dir=$1 ldflags=$2; shift 2
  local built="$cache/$(basename "$dir")-$(stamp_of "$dir")"
  if [ ! -f "$built/.complete" ]; then
    mkdir -p "$built"
    for pair in "$@"; do
      local out=${pair%%=*} pkg=${pair#*=}
      echo "$label: building $out ($pkg)"
      (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$built/$out" "$pkg")
    done
    touch "$built/.complete"
  else
    echo "$label: $(basename "$dir") up to date"
  fi
  for pair in "$@"; do ln -sfn "$built/${pair%%=*}" "$bin/${pair%%=*}"; done
}
