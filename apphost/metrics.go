package apphost

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// latencyBuckets are the upper bounds (seconds) of the per-app histograms: request latency and the
// wait for a turn.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5}

// histogram is a fixed-bucket latency histogram of a few atomics: an app pays for its metrics with
// about a hundred bytes, and nothing at all until a scrape reads them.
type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
}

func (h *histogram) snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += h.counts[i].Load()
		buckets[ub] = cum
	}
	cum += h.counts[len(latencyBuckets)].Load()
	return cum, float64(h.sumNs.Load()) / 1e9, buckets
}

var (
	descRequests = prometheus.NewDesc("appfleet_app_requests_total", "Requests an app answered (any status).", []string{"app"}, nil)
	descErrors   = prometheus.NewDesc("appfleet_app_errors_total", "Requests an app answered with a 5xx status.", []string{"app"}, nil)
	descPanics   = prometheus.NewDesc("appfleet_app_panics_total", "Panics recovered in an app's requests.", []string{"app"}, nil)
	descRejected = prometheus.NewDesc("appfleet_app_rejected_total", "Requests of an app turned away before its handler ran, by cause: max_in_flight (limits.maxInFlight), rate (limits.requestsPerSecond), queue_full and queue_timeout (the wait for a turn).", []string{"app", "cause"}, nil)
	descQueued   = prometheus.NewDesc("appfleet_app_queued", "Requests of an app waiting for a turn now.", []string{"app"}, nil)
	descWait     = prometheus.NewDesc("appfleet_app_queue_wait_seconds", "How long an app's requests waited for a turn to run (0 for those that did not wait).", []string{"app"}, nil)
	descInFlight = prometheus.NewDesc("appfleet_app_in_flight", "Requests of an app being served now.", []string{"app"}, nil)
	descStatus   = prometheus.NewDesc("appfleet_app_status", "1 for the app's current lifecycle status.", []string{"app", "status"}, nil)
	descOpen     = prometheus.NewDesc("appfleet_app_database_open", "1 when the app's database is open, 0 while it hibernates or is stopped.", []string{"app"}, nil)
	descLatency  = prometheus.NewDesc("appfleet_app_request_duration_seconds", "Latency of an app's requests.", []string{"app"}, nil)
	descApps     = prometheus.NewDesc("appfleet_apps", "Apps in the runtime by status.", []string{"status"}, nil)
	descPanicsRT = prometheus.NewDesc("appfleet_runtime_panics_total", "Panics recovered in all apps' requests.", nil, nil)
)

// appCollector reads every app's counters at scrape time.
type appCollector struct{ rt *Runtime }

func (c appCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descPanics, descRejected, descQueued, descWait, descInFlight, descStatus, descOpen, descLatency, descApps, descPanicsRT} {
		ch <- d
	}
}

func (c appCollector) Collect(ch chan<- prometheus.Metric) {
	byStatus := map[string]int{}
	for _, a := range c.rt.snapshot() {
		st := a.current()
		if st.entry.Generation == 0 {
			continue
		}
		byStatus[st.status]++
		ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, 1, a.name, st.status)
		open := 0.0
		if a.dbOpen.Load() {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, open, a.name)
		req := a.stats.requests.Load()
		if req == 0 {
			continue // an app that never served keeps its series count at two
		}
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(req), a.name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(a.stats.errors.Load()), a.name)
		ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(a.stats.panics.Load()), a.name)
		for cause := range numRefusals {
			ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(a.stats.rejectedBy[cause].Load()), a.name, cause.String())
		}
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(c.rt.sched.queued(&a.turns)), a.name)
		if n, sum, buckets := a.stats.queueWait.snapshot(); n > 0 && !math.IsNaN(sum) {
			ch <- prometheus.MustNewConstHistogram(descWait, n, sum, buckets, a.name)
		}
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(a.inFlight.Load()), a.name)
		if n, sum, buckets := a.stats.latency.snapshot(); n > 0 && !math.IsNaN(sum) {
			ch <- prometheus.MustNewConstHistogram(descLatency, n, sum, buckets, a.name)
		}
	}
	for s, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(descApps, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(descPanicsRT, prometheus.CounterValue, float64(c.rt.panics.Load()))
}

func newMetrics(rt *Runtime) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		appCollector{rt},
	)
	return reg
}
