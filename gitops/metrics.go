package gitops

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are what /metrics serves: syncs and their duration, the last successful sync, fetches,
// heals, drift, and every app's status (read from the status board at scrape time).
type metrics struct {
	reg         *prometheus.Registry
	syncs       *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	fetches     *prometheus.CounterVec
	heals       prometheus.Counter
	driftApps   prometheus.Gauge
}

func newMetrics(b *statusBoard) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appfleet_watch_syncs_total",
			Help: "Applies the daemon ran (commits and heals), by result: ok, failed, refused."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "appfleet_watch_sync_duration_seconds",
			Help: "How long an apply of the daemon took.", Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "appfleet_watch_last_success_timestamp_seconds",
			Help: "When a commit was last applied successfully (unix time)."}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "appfleet_watch_fetches_total",
			Help: "Fetches of the git branch, by result: ok, error."}, []string{"result"}),
		heals: prometheus.NewCounter(prometheus.CounterOpts{Name: "appfleet_watch_heals_total",
			Help: "Addresses whose drift the daemon put back."}),
		driftApps: prometheus.NewGauge(prometheus.GaugeOpts{Name: "appfleet_watch_drift",
			Help: "Addresses that differ from the applied commit at the last check (ignored ones not counted)."}),
	}
	m.reg.MustRegister(m.syncs, m.duration, m.lastSuccess, m.fetches, m.heals, m.driftApps, appStatusCollector{b},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeSync(err error, took time.Duration) {
	m.syncs.WithLabelValues(map[bool]string{true: "ok", false: "failed"}[err == nil]).Inc()
	m.duration.Observe(took.Seconds())
}

var descAppStatus = prometheus.NewDesc("appfleet_watch_app_status", "1 for each app's status as the daemon last saw it.", []string{"app", "environment", "status"}, nil)

// appStatusCollector reads the apps' statuses at scrape time.
type appStatusCollector struct{ b *statusBoard }

func (c appStatusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAppStatus }

func (c appStatusCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	for _, a := range c.b.apps {
		ch <- prometheus.MustNewConstMetric(descAppStatus, prometheus.GaugeValue, 1, a.Name, a.Environment, a.Status)
	}
}
