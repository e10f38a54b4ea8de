// Package types makes the Prometheus Operator's API types a dependency of this module, so that
// controller-gen can generate their CRDs (scripts/generate-monitoring-crds.sh).
package types

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
