package ingress

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingress's Prometheus series.
type metrics struct {
	requests       *prometheus.CounterVec
	duplicates     *prometheus.CounterVec
	publishSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veo4k_ingress_callbacks_total",
			Help: "Callback requests by outcome (accepted, duplicate, bad_request, unauthorized, too_large, unsupported_media_type, unavailable).",
		}, []string{"outcome"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veo4k_ingress_duplicates_total",
			Help: "Callbacks JetStream already held, by the layer that recognised them (msg_id window, per_subject guard).",
		}, []string{"layer"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "veo4k_ingress_publish_duration_seconds",
			Help:    "Time from publishing a callback to JetStream's answer (PubAck, refusal or timeout).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duplicates, m.publishSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ingress metrics: %w", err)
		}
	}
	return m, nil
}
