#!/usr/bin/env bash
# Builds the pinned Go tools of the test control plane and links them into .tools/bin (git-ignored).
# Binaries are kept in a cache outside the work tree, keyed by the pins (go.mod, go.sum, this script),
# so a fresh clone links them in seconds; a changed pin builds anew. Go's own build cache makes
# rebuilds after a pin change incremental.
set -euo pipefail
label="tools"
# shellcheck source=go-tools.sh
source "$(dirname "$0")/go-tools.sh"

kver=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$root/test/tools/kubernetes/go.mod")
kminor=$(echo "$kver" | cut -d. -f2)
kflags="-X k8s.io/component-base/version.gitVersion=$kver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kminor -X k8s.io/client-go/pkg/version.gitVersion=$kver -X k8s.io/component-base/version.gitTreeState=clean"

build_module "$root/test/tools/kubernetes" "$kflags" \
  etcd=go.etcd.io/etcd/server/v3 \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kubectl=k8s.io/kubernetes/cmd/kubectl
build_module "$root/test/tools/versitygw" "" versitygw=github.com/versity/versitygw/cmd/versitygw
build_module "$root/test/tools/helm" "" helm=helm.sh/helm/v3/cmd/helm
