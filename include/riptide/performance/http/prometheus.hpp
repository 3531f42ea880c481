#pragma once
// The Prometheus text writer lives in core (cache and limits write their families with it too); these
// names keep the http:: spelling the routes and hosts use.
#include "riptide/performance/core/prometheus_writer.hpp"

namespace riptide::performance::http {

using riptide::performance::escape_label_value;
using riptide::performance::Label;
using riptide::performance::MetricType;
using riptide::performance::PrometheusWriter;

}  // namespace riptide::performance::http
