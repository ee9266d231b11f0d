package fetcher

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the fetcher's Prometheus metrics.
type Metrics struct {
	processed *prometheus.CounterVec
	duration  prometheus.Histogram
	events    *prometheus.CounterVec
	files     *prometheus.CounterVec
	bytes     prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veo4k_fetcher_callbacks_total", Help: "Callbacks processed, by result (done, retry, already_ready).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "veo4k_fetcher_process_seconds", Help: "Time to settle one callback.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veo4k_fetcher_events_published_total", Help: "Completion events published, by entry status.",
		}, []string{"status"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veo4k_fetcher_files_total", Help: "Files handled, by kind and result (downloaded, reused, error).",
		}, []string{"kind", "result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "veo4k_fetcher_downloaded_bytes_total", Help: "Bytes of files downloaded and verified.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.processed, m.duration, m.events, m.files, m.bytes)
	}
	return m
}
